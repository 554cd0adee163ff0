"""The data commands: ``nmt prepare`` and ``nmt data get|report|filter-translations`` (registered by
nmt.cli). Each parses its options into the typed config of the function it calls and prints the result.
The engines are imported inside the commands: nmt.cli loads every command module at start-up."""
from __future__ import annotations

import click

from nmt.cli_util import friendly_errors, opt, option, typed_options
from nmt.data.clean import FilterConfig
from nmt.data.filter_synthetic import filter_translations as run_filter
from nmt.data.get import LAYOUTS, GetConfig
from nmt.data.prepare import PrepareConfig
from nmt.data.report import report as run_report
from nmt.romanize import Romanization
from nmt.text import NORMALIZATION_FORMS


@click.command()
@typed_options(
    PrepareConfig, "cfg",
    opt("raw", "--raw", multiple=True, type=click.Path(), help="Directory in the ML50 raw layout (repeatable)."),
    opt("manifest", "--manifest", type=click.Path(),
        help="YAML manifest listing corpora per pair, and synthetic (back-translated, distilled) corpora "
             "per direction; combinable with --raw."),
    opt("synthetic_ratio", "--synthetic-ratio", type=float,
        help="At most this many synthetic pairs per real pair in a direction (a uniform sample; "
             "default: the manifest's synthetic_ratio, else all)."),
    opt("out", "--out", "-o", required=True, type=click.Path(), help="Prepared-data directory to write."),
    opt("pairs", "--pairs", help="Directions: all | to-en | from-en | a list like de_DE-en_XX,en_XX-de_DE."),
    opt("valid_size", "--valid-size",
        help="Pairs held out per language pair when it has no valid split (at most 10%)."),
    opt("eval_sets", "--eval-set", multiple=True, type=click.Path(),
        help="File or directory of evaluation text (e.g. FLORES) to keep out of training (repeatable)."),
    opt("on_bad_utf8", "--on-bad-utf8", type=click.Choice(["error", "skip"])),
    opt("vocab_size", "--vocab-size", help="Shared sentencepiece vocabulary size."),
    opt("spm_model_type", "--spm-model-type", type=click.Choice(["unigram", "bpe", "char", "word"])),
    opt("character_coverage", "--character-coverage"),
    opt("byte_fallback", "--byte-fallback/--no-byte-fallback"),
    opt("spm_temperature", "--spm-temperature", help="Temperature for mixing languages in the sentencepiece sample."),
    opt("spm_sample_size", "--spm-sample-size", help="Sentences to train sentencepiece on."),
    opt("spm_model", "--spm-model", type=click.Path(exists=True, dir_okay=False),
        help="Use this sentencepiece model instead of training one (with --dict)."),
    opt("dictionary", "--dict", type=click.Path(exists=True, dir_okay=False),
        help="fairseq dict.txt that goes with --spm-model."),
    opt("lang_list", "--lang-list", type=click.Path(exists=True, dir_okay=False),
        help="Language order for the language tokens (e.g. mBART-50's list)."),
    opt("lang_tok_style", "--lang-tok-style", type=click.Choice(["multilingual", "mbart"])),
    opt("seed", "--seed"),
    opt("shards", "--shards", type=click.IntRange(min=1),
        help="Split the training data into N fairseq shards (bin/shard0, ...), one per epoch."),
    opt("chunk_lines", "--chunk-lines", type=click.IntRange(min=1),
        help="Line pairs read and cleaned at once (bounds memory; the output does not depend on it)."),
    opt("workers", "--workers", help="Processes/threads (0: all cores)."),
    opt("force", "--force", is_flag=True, help="Redo every stage even if it is up to date."),
)
@typed_options(
    FilterConfig, "filters",
    opt("normalization", "--normalization", type=click.Choice(NORMALIZATION_FORMS)),
    opt("min_len", "--min-len", help="Minimum length (words; characters for CJK/Thai)."),
    opt("max_len", "--max-len", help="Maximum length (same unit)."),
    opt("max_ratio", "--max-ratio", help="Maximum length ratio between the sides."),
    opt("lid", "--lid/--no-lid",
        help="Drop pairs whose source or target is confidently in another language (fastText lid.176)."),
    opt("lid_threshold", "--lid-threshold", help="Probability from which the language identifier counts as "
                                                  "confident (lines under 4 words are not judged)."),
)
@click.option("--romanize", metavar="LANG[,LANG]",
              help="Write these languages' text in Latin letters (uroman): for scripts the model's vocabulary "
                   "has not seen. Recorded in the manifest and the bundle; translation romanizes their input "
                   "itself. Only as sources, unless --romanize-target.")
@option(Romanization, "target", "--romanize-target", "romanize_target", is_flag=True,
        help="Allow a --romanize language as a target too: the model then writes it romanized, which cannot be "
             "turned back into its script (for analysis only).")
@friendly_errors
def prepare(cfg: PrepareConfig, filters: FilterConfig, romanize, romanize_target):
    """Validate, clean, split, learn a shared sentencepiece model and binarize bitext."""
    from nmt.data.prepare import prepare as run_prepare

    cfg.filters = filters
    cfg.romanize = Romanization.parse(romanize, romanize_target)
    prepared = run_prepare(cfg)
    mixed = any(d.synthetic is not None for d in prepared.directions.values())
    extra = f" {'real':>8} {'synthetic':>9}" if mixed else ""
    rows = [f"{'direction':<14} {'train':>8} {'valid':>6} {'test':>6}{extra}"]
    for name, d in prepared.directions.items():
        split = f" {d.train_real if d.train_real is not None else d.train:>8} {d.train_synthetic or 0:>9}" \
            if mixed else ""
        rows.append(f"{name:<14} {d.train:>8} {d.valid:>6} {d.test:>6}{split}")
    click.echo("\n".join(rows), err=True)
    click.echo(f"prepared data: {cfg.out} (manifest: {cfg.out}/manifest.json)", err=True)


@click.group()
def data():
    """Get parallel corpora (mtdata), report on prepared data, filter machine translations."""


@data.command("get")
@typed_options(
    GetConfig, "cfg",
    opt("out", "--out", "-o", required=True, type=click.Path(file_okay=False), help="Directory to write the data into."),
    opt("langs", "--langs", help="ML50 codes paired with English, comma-separated (e.g. de_DE,ja_XX), or all."),
    opt("dataset_list", "--list", type=click.Path(dir_okay=False), help="Dataset list (YAML)."),
    opt("datasets", "--datasets", help="all, or dataset IDs from the list, comma-separated."),
    opt("exclude", "--exclude", help="Dataset IDs to leave out, comma-separated."),
    opt("max_pairs", "--max-pairs", help="Take at most this many pairs from each corpus (0: all)."),
    opt("layout", "--layout", type=click.Choice(LAYOUTS),
        help="ml50: train.xx-en_XX.xx files for nmt prepare --raw; manifest: manifest.yaml for --manifest."),
    opt("cache", "--cache", type=click.Path(file_okay=False),
        help="mtdata cache and index directory (default: $MTDATA or ~/.mtdata)."),
)
@friendly_errors
def data_get(cfg: GetConfig):
    """Download parallel corpora through mtdata into the ML50 raw layout (resumable, with provenance.json)."""
    from nmt.data.get import get

    result = get(cfg)
    for fetched in result.datasets:
        click.echo(f"{fetched.pair:<12} {fetched.pairs:>10,}  {fetched.dataset}", err=True)
    click.echo(f"data: {result.out} ({len(result.datasets)} datasets; provenance: {result.provenance})", err=True)


@data.command("report")
@click.argument("data_dir", metavar="DATA", type=click.Path(exists=True, file_okay=False))
@option(run_report, "out", "--out", "-o", type=click.Path(file_okay=False),
        help="Report directory (default: DATA/report).")
@option(run_report, "top", "--top", help="Most repeated lines to list per side.")
@option(run_report, "samples", "--samples", help="Sample pairs to show per pair.")
@friendly_errors
def data_report(data_dir, out, top, samples):
    """Per pair: counts through each filter, length and ratio distributions, repeated lines, samples (Markdown + PNG)."""
    click.echo(f"data report: {run_report(data_dir, out, top=top, samples=samples)}", err=True)


@data.command("filter-translations")
@option(run_filter, "src", "--src", required=True, type=click.Path(dir_okay=False),
        help="Source text that was translated.")
@option(run_filter, "hyp", "--hyp", required=True, type=click.Path(dir_okay=False),
        help="Its translations, line-aligned (nmt translate-corpus output).")
@option(run_filter, "src_lang", "--src-lang", required=True, help="Source language (ML50 code).")
@option(run_filter, "tgt_lang", "--tgt-lang", required=True, help="Language of the translations (ML50 code).")
@option(run_filter, "scores", "--scores", type=click.Path(dir_okay=False),
        help="Per-line scores of the translations (nmt translate-corpus --scores).")
@option(run_filter, "drop_worst", "--drop-worst", type=float,
        help="Share of pairs with the lowest scores to drop (needs --scores), e.g. 0.1.")
@option(run_filter, "max_ratio", "--max-ratio", type=float, help="Drop pairs whose length ratio exceeds this (e.g. 2.0).")
@option(run_filter, "out_prefix", "--out", "-o", required=True, type=click.Path(),
        help="Output prefix: writes PREFIX.SRC_LANG, PREFIX.TGT_LANG and PREFIX.filter.json.")
@friendly_errors
def filter_translations(**kwargs):
    """Filter machine translations (distillation, back-translation) before they become training data."""
    result = run_filter(**kwargs)
    click.echo(f"kept {result.kept:,} of {result.lines:,} pairs (dropped: "
               + ", ".join(f"{k} {v:,}" for k, v in result.dropped.items()) + f"): {kwargs['out_prefix']}.*", err=True)


COMMANDS = [prepare, data]
