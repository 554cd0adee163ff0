"""The ``nmt`` command line. Each command parses its options, builds a config and
calls one library function; user mistakes surface as one-line errors."""
from __future__ import annotations

import json
import logging
import signal
import sys

import click

from nmt import __version__
from nmt.cli_util import decoding_options, friendly_errors, options_from, usage_error_line  # shared with nmt.evaluate.cli and nmt.wmt.cli
from nmt.data.clean import FilterConfig
from nmt.data.prepare import PrepareConfig
from nmt.errors import NmtError
from nmt.export import QUANTIZATIONS
from nmt.romanize import Romanization
from nmt.translate.options import QualityOptions


def _setup_logging(verbose: bool) -> None:
    if not verbose:  # fairseq, torch and lightning warn a lot about their own internals
        import warnings

        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("fairseq", "fairseq_cli", "torch", "matplotlib", "pytorch_lightning", "lightning"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nmt")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (also fairseq's own).")
def main(verbose: bool) -> None:
    """Multilingual NMT: prepare, train, translate, evaluate, package."""
    _setup_logging(verbose)


# nmt prepare's option defaults are its configuration's
_P, _F, _R = PrepareConfig, FilterConfig, Romanization


@main.command()
@click.option("--raw", multiple=True, type=click.Path(), help="Directory in the ML50 raw layout (repeatable).")
@click.option("--manifest", type=click.Path(),
              help="YAML manifest listing corpora per pair, and synthetic (back-translated, distilled) corpora "
                   "per direction; combinable with --raw.")
@click.option("--synthetic-ratio", type=float,
              help="At most this many synthetic pairs per real pair in a direction (a uniform sample; "
                   "default: the manifest's synthetic_ratio, else all).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Prepared-data directory to write.")
@click.option("--pairs", default=_P.pairs, show_default=True,
              help="Directions: all | to-en | from-en | a list like de_DE-en_XX,en_XX-de_DE.")
@click.option("--normalization", default=_F.normalization, show_default=True,
              type=click.Choice(["NFC", "NFKC", "none"]))
@click.option("--min-len", default=_F.min_len, show_default=True,
              help="Minimum length (words; characters for CJK/Thai).")
@click.option("--max-len", default=_F.max_len, show_default=True, help="Maximum length (same unit).")
@click.option("--max-ratio", default=_F.max_ratio, show_default=True, help="Maximum length ratio between the sides.")
@click.option("--lid/--no-lid", default=_F.lid, show_default=True,
              help="Drop pairs whose source or target is confidently in another language (fastText lid.176).")
@click.option("--lid-threshold", default=_F.lid_threshold, show_default=True,
              help="Probability from which the language identifier counts as confident (lines under 4 words are not judged).")
@click.option("--valid-size", default=_P.valid_size, show_default=True,
              help="Pairs held out per language pair when it has no valid split (at most 10%).")
@click.option("--eval-set", "eval_sets", multiple=True, type=click.Path(),
              help="File or directory of evaluation text (e.g. FLORES) to keep out of training (repeatable).")
@click.option("--on-bad-utf8", default=_P.on_bad_utf8, show_default=True, type=click.Choice(["error", "skip"]))
@click.option("--vocab-size", default=_P.vocab_size, show_default=True, help="Shared sentencepiece vocabulary size.")
@click.option("--spm-model-type", default=_P.spm_model_type, show_default=True,
              type=click.Choice(["unigram", "bpe", "char", "word"]))
@click.option("--character-coverage", default=_P.character_coverage, show_default=True)
@click.option("--byte-fallback/--no-byte-fallback", default=_P.byte_fallback, show_default=True)
@click.option("--spm-temperature", default=_P.spm_temperature, show_default=True,
              help="Temperature for mixing languages in the sentencepiece sample.")
@click.option("--spm-sample-size", default=_P.spm_sample_size, show_default=True,
              help="Sentences to train sentencepiece on.")
@click.option("--spm-model", type=click.Path(exists=True, dir_okay=False),
              help="Use this sentencepiece model instead of training one (with --dict).")
@click.option("--dict", "dictionary", type=click.Path(exists=True, dir_okay=False),
              help="fairseq dict.txt that goes with --spm-model.")
@click.option("--lang-list", type=click.Path(exists=True, dir_okay=False),
              help="Language order for the language tokens (e.g. mBART-50's list).")
@click.option("--lang-tok-style", default=_P.lang_tok_style, show_default=True,
              type=click.Choice(["multilingual", "mbart"]))
@click.option("--seed", default=_P.seed, show_default=True)
@click.option("--romanize", metavar="LANG[,LANG]", default=",".join(_R.languages),
              help="Write these languages' text in Latin letters (uroman): for scripts the model's vocabulary "
                   "has not seen. Recorded in the manifest and the bundle; translation romanizes their input "
                   "itself. Only as sources, unless --romanize-target.")
@click.option("--romanize-target", is_flag=True, default=_R.target,
              help="Allow a --romanize language as a target too: the model then writes it romanized, which "
                   "cannot be turned back into its script (for analysis only).")
@click.option("--shards", default=_P.shards, show_default=True, type=click.IntRange(min=1),
              help="Split the training data into N fairseq shards (bin/shard0, ...), one per epoch.")
@click.option("--chunk-lines", default=_P.chunk_lines, show_default=True, type=click.IntRange(min=1),
              help="Line pairs read and cleaned at once (bounds memory; the output does not depend on it).")
@click.option("--workers", default=_P.workers, show_default=True, help="Processes/threads (0: all cores).")
@click.option("--force", is_flag=True, help="Redo every stage even if it is up to date.")
@friendly_errors
def prepare(raw, manifest, synthetic_ratio, out, pairs, normalization, min_len, max_len, max_ratio, lid, lid_threshold, valid_size,
            eval_sets, on_bad_utf8, vocab_size, spm_model_type, character_coverage, byte_fallback, spm_temperature,
            spm_sample_size, spm_model, dictionary, lang_list, lang_tok_style, seed, romanize, romanize_target, shards,
            chunk_lines, workers, force):
    """Validate, clean, split, learn a shared sentencepiece model and binarize bitext."""
    from nmt.data.prepare import prepare as run_prepare

    cfg = PrepareConfig(
        out=out, raw=list(raw), manifest=manifest, synthetic_ratio=synthetic_ratio, pairs=pairs,
        filters=FilterConfig(normalization=normalization, min_len=min_len, max_len=max_len, max_ratio=max_ratio,
                             lid=lid, lid_threshold=lid_threshold),
        valid_size=valid_size, eval_sets=list(eval_sets), on_bad_utf8=on_bad_utf8, vocab_size=vocab_size,
        spm_model_type=spm_model_type, character_coverage=character_coverage, byte_fallback=byte_fallback,
        spm_temperature=spm_temperature, spm_sample_size=spm_sample_size, spm_model=spm_model,
        dictionary=dictionary, lang_list=lang_list, lang_tok_style=lang_tok_style, seed=seed,
        romanize=Romanization.parse(romanize, romanize_target), shards=shards, chunk_lines=chunk_lines, workers=workers, force=force,
    )
    manifest_out = run_prepare(cfg)
    mixed = any("train_synthetic" in info for info in manifest_out["directions"].values())
    extra = f" {'real':>8} {'synthetic':>9}" if mixed else ""
    rows = [f"{'direction':<14} {'train':>8} {'valid':>6} {'test':>6}{extra}"]
    for direction, info in manifest_out["directions"].items():
        split = (f" {info.get('train_real', info['train']):>8} {info.get('train_synthetic', 0):>9}" if mixed else "")
        rows.append(f"{direction:<14} {info['train']:>8} {info['valid']:>6} {info['test']:>6}{split}")
    click.echo("\n".join(rows), err=True)
    click.echo(f"prepared data: {out} (manifest: {out}/manifest.json)", err=True)


@main.command()
@click.option("--config", "-c", "config_path", type=click.Path(), help="YAML training config.")
@click.option("--output", "-o", required=True, type=click.Path(), help="Run directory = model bundle.")
@click.option("--data", help="Prepared-data directory (overrides the config's 'data').")
@click.option("--preset", help="Model preset (overrides model.preset): tiny, small, base, big.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set training.max_updates=500 (repeatable).")
@click.option("--reset", is_flag=True, help="Discard an existing run in --output and start over.")
@click.option("--print-fairseq-args", is_flag=True,
              help="Print the equivalent fairseq-train arguments and exit (nothing is trained).")
@friendly_errors
def train(config_path, output, data, preset, overrides, reset, print_fairseq_args):
    """Train (or resume) a shared many-to-many model; the output directory is the model bundle."""
    import shlex

    from nmt.config import load_train_config
    from nmt.training.translation import train as run_train

    extra = list(overrides)
    if data:
        extra.append(f"data={data}")
    if preset:
        extra.append(f"model.preset={preset}")
    cfg = load_train_config(config_path, extra)
    if print_fairseq_args:
        click.echo("fairseq-train " + " ".join(shlex.quote(a) for a in run_train(cfg, output, dry_run=True)))
        return
    result = run_train(cfg, output, reset=reset)
    best = result.get("best", {})
    click.echo(f"model bundle: {output} | updates {result.get('updates')} | best {best.get('metric')} "
               f"{best.get('score')} at update {best.get('update')} | stopped: {result.get('stop_reason')}",
               err=True)


@main.command()
@click.option("--model", "-m", required=True, type=click.Path(), help="Model bundle directory.")
@click.option("--src", "-s", help="Source language (ML50 code), e.g. de_DE.")
@click.option("--tgt", "-t", help="Target language(s), comma-separated: one output per target.")
@click.option("--input", "-i", "input_path", default="-", show_default=True, help="Input file, or - for stdin.")
@click.option("--output", "-o", "output_path", default="-", show_default=True,
              help="Output file or - for stdout; with several targets, {tgt} in the name or a .TGT suffix.")
@click.option("--tsv", is_flag=True, help="Input lines are 'src<TAB>tgt<TAB>text' (mixed directions).")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl", "html"]), default="text", show_default=True,
              help="text: a line in, a line out; jsonl: a JSON object out per line (scores, n-best); html: each "
                   "line is HTML, its text translated and its markup kept.")
@decoding_options(sampling=True)
@options_from(QualityOptions, "quality")
@click.option("--too-long", type=click.Choice(["skip", "truncate"]), default="skip", show_default=True,
              help="A line longer than the model's limit: empty output + warning, or truncate it.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False),
              help="Use this checkpoint instead of the bundle's (fairseq backend).")
@friendly_errors
def translate(model, src, tgt, input_path, output_path, tsv, fmt, decode, engine, quality, too_long, checkpoint):
    """Translate line by line: N input lines give N output lines, always.

    \b
    Decoding for quality (any translating command has these options):
    nmt translate -m B -s de_DE -t en_XX --mbr chrf --candidates 16 --sampling --sampling-topp 0.9
    nmt translate -m B -s de_DE -t en_XX --rerank builtin --candidates 8
    nmt translate -m B -s de_DE -t ja_XX --pivot en_XX       # through English
    """
    from nmt.translate.cli_run import TranslateRun, run_translate

    engine.checkpoint = checkpoint
    run_translate(TranslateRun(model=model, src=src, tgt=tgt, input_path=input_path, output_path=output_path,
                               tsv=tsv, fmt=fmt, decode=decode, engine=engine, too_long=too_long, quality=quality))


@main.command()
@click.option("--model", "-m", required=True, type=click.Path(), help="Model bundle directory.")
@click.option("--format", "fmt", type=click.Choice(["ctranslate2"]), default="ctranslate2", show_default=True)
@click.option("--quantization", default="int8", show_default=True, type=click.Choice(QUANTIZATIONS))
@click.option("--force", is_flag=True, help="Replace an existing export.")
@click.option("--shortlist", type=click.Path(file_okay=False),
              help="Data directory of nmt prepare: restrict each target language's output to the tokens of its "
                   "training text (faster CPU decoding; nmt translate --no-shortlist switches it off).")
@click.option("--shortlist-min-count", default=1, show_default=True,
              help="Occurrences in the target language's training text for a token to be kept.")
@click.option("--shortlist-max-lines", default=1_000_000, show_default=True,
              help="Training lines read per corpus file.")
@friendly_errors
def export(model, fmt, quantization, force, shortlist, shortlist_min_count, shortlist_max_lines):
    """Convert the bundle's checkpoint for a fast inference engine (written into the bundle)."""
    from nmt.export import export_ctranslate2
    from nmt.translate.shortlist import ShortlistOptions

    options = ShortlistOptions(min_count=shortlist_min_count, max_lines=shortlist_max_lines)
    out = export_ctranslate2(model, quantization, force, shortlist=shortlist, shortlist_options=options)
    click.echo(f"exported {out}" + (" with vocabulary shortlists" if shortlist else ""), err=True)


@main.command()
@click.option("--model", "-m", required=True, type=click.Path(), help="Model bundle directory.")
@click.option("--last", default=5, show_default=True, type=click.IntRange(min=2),
              help="Average the last N numbered checkpoints (N >= 2).")
@click.option("--output", "-o", type=click.Path(), help="Output checkpoint (default checkpoints/checkpoint_avgN.pt).")
@click.option("--make-default", is_flag=True, help="Make the averaged checkpoint the bundle's default.")
@friendly_errors
def average(model, last, output, make_default):
    """Average the weights of the last N checkpoints."""
    from nmt.export import average_last

    out = average_last(model, last, output, make_default)
    click.echo(f"averaged checkpoint: {out}{' (now the bundle default)' if make_default else ''}", err=True)


# The ML50 recipe's fine-tuning settings (Tang et al. 2020, fairseq examples/multilingual).
ML50_FINETUNE_DEFAULTS = {
    "training": {"lr": 3e-05, "warmup_updates": 2500, "label_smoothing": 0.2, "sampling_temperature": 1.5,
                 "max_tokens": 1024, "update_freq": 2, "max_updates": 40000, "seed": 222},
    "model": {"dropout": 0.3, "attention_dropout": 0.1},
}


@main.command()
@click.option("--pretrained", "-p", required=True, type=click.Path(), help="mBART bundle (nmt download / pretrain).")
@click.option("--data", required=True, type=click.Path(), help="Data prepared with the pretrained vocabulary.")
@click.option("--output", "-o", required=True, type=click.Path(), help="Run directory = model bundle.")
@click.option("--mode", type=click.Choice(["many-to-many", "one-to-many", "many-to-one"]), default="many-to-many",
              show_default=True, help="Which prepared directions to fine-tune on (English-centric).")
@click.option("--config", "-c", "config_path", type=click.Path(), help="YAML config (over the ML50 defaults).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable).")
@click.option("--reset", is_flag=True, help="Discard an existing run in --output and start over.")
@friendly_errors
def finetune(pretrained, data, output, mode, config_path, overrides, reset):
    """Fine-tune a pretrained mBART on many directions at once (ML50 recipe defaults)."""
    from nmt.config import load_train_config
    from nmt.data.manifest import PreparedData
    from nmt.training.translation import train as run_train

    prepared = list(PreparedData.load(data).directions)
    english = "en_XX"
    chosen = {"many-to-many": prepared,
              "one-to-many": [d for d in prepared if d.startswith(english + "-")],
              "many-to-one": [d for d in prepared if d.endswith("-" + english)]}[mode]
    if not chosen:
        raise NmtError(f"--mode {mode}: the prepared data has no such direction ({', '.join(prepared)})")
    base = {**ML50_FINETUNE_DEFAULTS, "directions": chosen, "init": {"pretrained": pretrained}, "data": data}
    cfg = load_train_config(config_path, overrides, base=base)
    result = run_train(cfg, output, reset=reset)
    best = result.get("best", {})
    click.echo(f"fine-tuned bundle: {output} | updates {result.get('updates')} | best {best.get('metric')} "
               f"{best.get('score')} at update {best.get('update')}", err=True)


@main.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared-data directory: its text, all languages.")
@click.option("--output", "-o", required=True, type=click.Path(), help="Output bundle (official mBART layout).")
@click.option("--mono", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Extra monolingual text: a directory of {lang}.txt files (repeatable).")
@click.option("--config", "-c", "config_path", type=click.Path(), help="YAML config (model, training, denoising).")
@click.option("--preset", help="Model preset (default: the config's, else tiny).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable).")
@click.option("--reset", is_flag=True, help="Start over.")
@friendly_errors
def pretrain(data, output, mono, config_path, preset, overrides, reset):
    """Pretrain an mBART-style model by multilingual denoising (span masking, language tokens)."""
    from nmt.config import load_train_config
    from nmt.training.denoising import pretrain as run_pretrain

    extra = list(overrides) + [f"data={data}"] + ([f"model.preset={preset}"] if preset else [])
    cfg = load_train_config(config_path, extra)
    result = run_pretrain(cfg, output, mono, reset=reset)
    click.echo(f"pretrained bundle: {output} | updates {result.get('updates')} | best valid loss "
               f"{-(result.get('best', {}).get('score') or 0):.3f}", err=True)


@main.command()
@click.argument("name", type=click.Choice(["mbart50", "mbart50-m2m", "mbart50-o2m", "mbart50-m2o", "url"]))
@click.option("--dest", required=True, type=click.Path(), help="Directory for the bundle.")
@click.option("--url", help="Download from this URL instead (http(s):// or file://).")
@click.option("--sha256", help="Expected SHA-256 of the tarball.")
@click.option("--force", is_flag=True, help="Replace an existing bundle in --dest.")
@friendly_errors
def download(name, dest, url, sha256, force):
    """Fetch a published mBART-50 checkpoint (resumable, checksummed, safely extracted) as a bundle."""
    from nmt.pretrained import download as run_download

    if name == "url" and not url:
        raise NmtError("'nmt download url' needs --url")
    bundle = run_download(name, dest, url=url, sha256=sha256, force=force)
    click.echo(f"bundle: {bundle.path} ({len(bundle.languages)} languages, kind {bundle.kind})", err=True)


def _register_subpackage_commands() -> None:
    from nmt.cli_vocab import COMMANDS as vocab_commands
    from nmt.data.cli import COMMANDS as data_commands
    from nmt.evaluate.cli import COMMANDS as evaluate_commands
    from nmt.serve.cli import COMMANDS as serve_commands
    from nmt.translate.cli import COMMANDS as translate_commands
    from nmt.wmt.cli import COMMANDS as wmt_commands

    for command in (data_commands + evaluate_commands + translate_commands + serve_commands + wmt_commands
                    + vocab_commands):
        main.add_command(command)


_register_subpackage_commands()


def _terminate(signum, frame) -> None:
    click.echo("nmt: terminated", err=True)
    sys.exit(128 + signum)


def run() -> None:  # console-script entry point
    """Run the CLI; a usage error (unknown option, bad value) is one line, exit status 2.

    SIGTERM unwinds like Ctrl-C (temporary files removed, exit 143) unless a command installs
    its own handler (training saves a checkpoint first)."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        status = main.main(prog_name="nmt", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `nmt`: the help as help, not as one error line
        click.echo(exc.ctx.get_help(), err=True)
        sys.exit(2)
    except click.UsageError as exc:
        click.echo(usage_error_line(exc), err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("nmt: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"nmt: error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    run()
