"""The ``nmt data`` commands: get corpora, report on prepared data, filter machine translations
(registered by nmt.cli)."""
from __future__ import annotations

import click

from nmt.cli_util import friendly_errors


@click.group()
def data():
    """Get parallel corpora (mtdata) and report on prepared data."""


@data.command("get")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Directory to write the data into.")
@click.option("--langs", default="all", show_default=True,
              help="ML50 codes paired with English, comma-separated (e.g. de_DE,ja_XX), or all.")
@click.option("--list", "dataset_list", type=click.Path(dir_okay=False),
              help="Dataset list (YAML; default: recipes/data/ml50.yaml).")
@click.option("--datasets", default="all", show_default=True, help="all, or dataset IDs from the list, comma-separated.")
@click.option("--exclude", default="", help="Dataset IDs to leave out, comma-separated.")
@click.option("--max-pairs", default=0, show_default=True, help="Take at most this many pairs from each corpus (0: all).")
@click.option("--layout", default="ml50", show_default=True, type=click.Choice(["ml50", "manifest"]),
              help="ml50: train.xx-en_XX.xx files for nmt prepare --raw; manifest: manifest.yaml for --manifest.")
@click.option("--cache", type=click.Path(file_okay=False), help="mtdata cache and index directory (default: $MTDATA or ~/.mtdata).")
@friendly_errors
def data_get(out, langs, dataset_list, datasets, exclude, max_pairs, layout, cache):
    """Download parallel corpora through mtdata into the ML50 raw layout (resumable, with provenance.json)."""
    from nmt.data.get import DEFAULT_LIST, GetConfig, get

    cfg = GetConfig(out=out, dataset_list=dataset_list or str(DEFAULT_LIST), langs=langs, datasets=datasets,
                    exclude=exclude, max_pairs=max_pairs, layout=layout, cache=cache)
    provenance = get(cfg)
    for did, info in provenance["datasets"].items():
        click.echo(f"{info['pair']:<12} {info['pairs']:>10,}  {did}", err=True)
    click.echo(f"data: {out} ({len(provenance['datasets'])} datasets; provenance: {out}/provenance.json)", err=True)


@data.command("report")
@click.argument("data_dir", metavar="DATA", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Report directory (default: DATA/report).")
@click.option("--top", default=5, show_default=True, help="Most repeated lines to list per side.")
@click.option("--samples", default=5, show_default=True, help="Sample pairs to show per pair.")
@friendly_errors
def data_report(data_dir, out, top, samples):
    """Per pair: counts through each filter, length and ratio distributions, repeated lines, samples (Markdown + PNG)."""
    from nmt.data.report import report

    path = report(data_dir, out, top=top, samples=samples)
    click.echo(f"data report: {path}", err=True)


@data.command("filter-translations")
@click.option("--src", "src_file", required=True, type=click.Path(dir_okay=False), help="Source text that was translated.")
@click.option("--hyp", "hyp_file", required=True, type=click.Path(dir_okay=False),
              help="Its translations, line-aligned (nmt translate-corpus output).")
@click.option("--src-lang", required=True, help="Source language (ML50 code).")
@click.option("--tgt-lang", required=True, help="Language of the translations (ML50 code).")
@click.option("--scores", type=click.Path(dir_okay=False),
              help="Per-line scores of the translations (nmt translate-corpus --scores).")
@click.option("--drop-worst", default=0.0, show_default=True, type=float,
              help="Share of pairs with the lowest scores to drop (needs --scores), e.g. 0.1.")
@click.option("--max-ratio", type=float, help="Drop pairs whose length ratio exceeds this (e.g. 2.0).")
@click.option("--out", "-o", "out_prefix", required=True, type=click.Path(),
              help="Output prefix: writes PREFIX.SRC_LANG, PREFIX.TGT_LANG and PREFIX.filter.json.")
@friendly_errors
def filter_translations(src_file, hyp_file, src_lang, tgt_lang, scores, drop_worst, max_ratio, out_prefix):
    """Filter machine translations (distillation, back-translation) before they become training data."""
    from nmt.data.filter_synthetic import filter_translations as run_filter

    info = run_filter(src_file, hyp_file, src_lang, tgt_lang, out_prefix, scores=scores, drop_worst=drop_worst,
                      max_ratio=max_ratio)
    click.echo(f"kept {info['kept']:,} of {info['lines']:,} pairs (dropped: "
               + ", ".join(f"{k} {v:,}" for k, v in info["dropped"].items()) + f"): {out_prefix}.*", err=True)


COMMANDS = [data]
