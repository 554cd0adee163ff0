"""The commands that make and change models (registered by nmt.cli): ``nmt train``, ``finetune``,
``pretrain``, ``average``, ``download``, ``extend-langs`` and ``trim-vocab``. Each calls one library
function and prints its typed result; the engines are imported inside the commands (nmt.cli loads
every command module at start-up)."""
from __future__ import annotations

import dataclasses
import json
import shlex
import sys

import click

from nmt.cli_util import friendly_errors, opt, option, stop_on_signals, typed_options
from nmt.errors import NmtError
from nmt.export import average_last
from nmt.pretrained import MODELS, download as run_download
from nmt.romanize import Romanization
from nmt.training.finetune import FINETUNE_MODES, finetune as run_finetune
from nmt.vocab import NewPieces
from nmt.vocab_surgery import trim_vocabulary

_CONFIG = click.option("--config", "-c", "config_path", type=click.Path(), help="YAML training config.")
_OVERRIDES = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a config key, e.g. --set training.max_updates=500 (repeatable).")
_RESET = click.option("--reset", is_flag=True, help="Discard an existing run in --output and start over.")


def _report(what: str, result) -> None:
    """One line about the run; a run stopped by a signal (after saving) ends the process with 128 + it
    (130 for Ctrl-C, 143 for SIGTERM), as if the signal had come just after the save."""
    best = f"best {result.best_metric} {result.best_score} at update {result.best_update}"
    if result.best_metric == "loss" and result.best_score is not None:
        best = f"best valid loss {-result.best_score:.3f} at update {result.best_update}"
    click.echo(f"{what}: {result.bundle} | updates {result.updates} | {best} | stopped: {result.stop_reason}",
               err=True)
    if result.signal is not None:
        click.echo(f"nmt: {result.stop_reason} (a checkpoint was saved; the same command resumes)", err=True)
        sys.exit(128 + result.signal)


@click.command()
@_CONFIG
@click.option("--output", "-o", required=True, type=click.Path(), help="Run directory = model bundle.")
@click.option("--data", help="Prepared-data directory (overrides the config's 'data').")
@click.option("--preset", help="Model preset (overrides model.preset): tiny, small, base, big.")
@_OVERRIDES
@_RESET
@click.option("--print-fairseq-args", is_flag=True,
              help="Print the equivalent fairseq-train arguments and exit (nothing is trained).")
@friendly_errors
def train(config_path, output, data, preset, overrides, reset, print_fairseq_args):
    """Train (or resume) a shared many-to-many model; the output directory is the model bundle."""
    from nmt.config import load_train_config
    from nmt.training.translation import fairseq_arguments, train as run_train

    extra = list(overrides) + ([f"data={data}"] if data else []) + ([f"model.preset={preset}"] if preset else [])
    cfg = load_train_config(config_path, extra)
    if print_fairseq_args:
        click.echo("fairseq-train " + " ".join(shlex.quote(a) for a in fairseq_arguments(cfg, output)))
        return
    with stop_on_signals() as stop:
        result = run_train(cfg, output, reset=reset, stop=stop)
    _report("model bundle", result)


@click.command()
@option(run_finetune, "pretrained", "--pretrained", "-p", required=True, type=click.Path(),
        help="mBART bundle (nmt download / pretrain).")
@option(run_finetune, "data", "--data", required=True, type=click.Path(),
        help="Data prepared with the pretrained vocabulary.")
@option(run_finetune, "output", "--output", "-o", required=True, type=click.Path(),
        help="Run directory = model bundle.")
@option(run_finetune, "mode", "--mode", type=click.Choice(FINETUNE_MODES),
        help="Which prepared directions to fine-tune on (English-centric).")
@click.option("--config", "-c", "config_path", type=click.Path(), help="YAML config (over the ML50 defaults).")
@_OVERRIDES
@_RESET
@friendly_errors
def finetune(pretrained, data, output, mode, config_path, overrides, reset):
    """Fine-tune a pretrained mBART on many directions at once (ML50 recipe defaults)."""
    with stop_on_signals() as stop:
        result = run_finetune(pretrained, data, output, mode, config_path, overrides, reset, stop)
    _report("fine-tuned bundle", result)


@click.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared-data directory: its text, all languages.")
@click.option("--output", "-o", required=True, type=click.Path(), help="Output bundle (official mBART layout).")
@click.option("--mono", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Extra monolingual text: a directory of {lang}.txt files (repeatable).")
@click.option("--config", "-c", "config_path", type=click.Path(), help="YAML config (model, training, denoising).")
@click.option("--preset", help="Model preset (default: the config's, else tiny).")
@_OVERRIDES
@click.option("--reset", is_flag=True, help="Start over.")
@friendly_errors
def pretrain(data, output, mono, config_path, preset, overrides, reset):
    """Pretrain an mBART-style model by multilingual denoising (span masking, language tokens)."""
    from nmt.config import load_train_config
    from nmt.training.denoising import pretrain as run_pretrain

    extra = list(overrides) + [f"data={data}"] + ([f"model.preset={preset}"] if preset else [])
    cfg = load_train_config(config_path, extra)
    with stop_on_signals() as stop:
        result = run_pretrain(cfg, output, mono, reset=reset, stop=stop)
    _report("pretrained bundle", result)


@click.command()
@option(average_last, "model", "--model", "-m", required=True, type=click.Path(), help="Model bundle directory.")
@option(average_last, "last", "--last", type=click.IntRange(min=2),
        help="Average the last N numbered checkpoints (N >= 2).")
@option(average_last, "output", "--output", "-o", type=click.Path(),
        help="Output checkpoint (default checkpoints/checkpoint_avgN.pt).")
@option(average_last, "make_default", "--make-default", is_flag=True,
        help="Make the averaged checkpoint the bundle's default.")
@friendly_errors
def average(model, last, output, make_default):
    """Average the weights of the last N checkpoints."""
    out = average_last(model, last, output, make_default)
    click.echo(f"averaged checkpoint: {out}{' (now the bundle default)' if make_default else ''}", err=True)


@click.command()
@click.argument("name", type=click.Choice([*MODELS, "url"]))
@option(run_download, "dest", "--dest", required=True, type=click.Path(), help="Directory for the bundle.")
@option(run_download, "url", "--url", help="Download from this URL instead (http(s):// or file://).")
@option(run_download, "sha256", "--sha256", help="Expected SHA-256 of the tarball.")
@option(run_download, "force", "--force", is_flag=True, help="Replace an existing bundle in --dest.")
@friendly_errors
def download(name, dest, url, sha256, force):
    """Fetch a published mBART-50 checkpoint (resumable, checksummed, safely extracted) as a bundle."""
    if name == "url" and not url:
        raise NmtError("'nmt download url' needs --url")
    bundle = run_download(name, dest, url=url, sha256=sha256, force=force)
    click.echo(f"bundle: {bundle.path} ({len(bundle.languages)} languages, kind {bundle.kind})", err=True)


@click.command("extend-langs")
@click.option("--model", "-m", required=True, type=click.Path())
@click.option("--add", required=True, help="Languages to add, comma-separated (ML50 codes).")
@click.option("--init-from", multiple=True, metavar="NEW=EXISTING",
              help="Start a new language token from an existing one, e.g. gl_ES=es_XX (repeatable).")
@click.option("--romanize", metavar="LANG[,LANG]",
              help="Mark languages as read romanized (uroman): fine-tuning data must be prepared with "
                   "--romanize for them, and translation romanizes their input.")
@typed_options(
    NewPieces, "pieces",
    opt("texts", "--new-pieces-from", multiple=True, type=click.Path(), metavar="[LANG=]PATH",
        help="Text in the added languages (repeatable): learn subword pieces for their script from it and add "
             "those the vocabulary lacks."),
    opt("vocab_size", "--new-pieces", help="Size of the sentencepiece model learnt on --new-pieces-from."),
    opt("max_lines", "--new-pieces-max-lines", help="Lines read from --new-pieces-from, all files together."),
)
@click.option("--output", "-o", required=True, type=click.Path())
@friendly_errors
def extend_langs(model, add, init_from, romanize, pieces: NewPieces, output):
    """Add languages to a pretrained model (new language tokens and embedding rows)."""
    from nmt.vocab_surgery import extend_languages, text_language

    pairs = {}
    for item in init_from:
        if "=" not in item:
            raise NmtError(f"bad --init-from {item!r}: write NEW=EXISTING, e.g. gl_ES=es_XX")
        new, old = item.split("=", 1)
        pairs[new.strip()] = old.strip()
    for spec in pieces.texts:
        if not text_language(spec)[1].is_file():
            raise NmtError(f"--new-pieces-from {spec}: no such file")
    result = extend_languages(model, [x.strip() for x in add.split(",") if x.strip()], output, pairs,
                              romanize=Romanization.parse(romanize).languages, pieces=pieces)
    click.echo(json.dumps(dataclasses.asdict(result)), err=True)  # one JSON line: scripts read it


@click.command("trim-vocab")
@option(trim_vocabulary, "model", "--model", "-m", required=True, type=click.Path())
@option(trim_vocabulary, "corpora", "--text", multiple=True, required=True, metavar="[LANG=]PATH",
        help="Text in the languages to keep (repeatable); pieces it uses are kept. LANG= says its language "
             "(needed for a model that reads some languages romanized, unless the file name ends in the code, "
             "e.g. train.bn_IN-en_XX.bn_IN).")
@option(trim_vocabulary, "min_count", "--min-count")
@option(trim_vocabulary, "output", "--output", "-o", required=True, type=click.Path())
@friendly_errors
def trim_vocab(model, corpora, min_count, output):
    """Shrink a multilingual model's vocabulary to the pieces some text uses."""
    from nmt.vocab_surgery import text_language

    for spec in corpora:
        if not text_language(spec)[1].is_file():
            raise NmtError(f"--text {spec}: no such file")
    result = trim_vocabulary(model, corpora, output, min_count)
    click.echo(f"dictionary {result.dictionary_before} -> {result.dictionary_after} pieces; parameters "
               f"{result.parameters_before:,} -> {result.parameters_after:,}", err=True)


COMMANDS = [train, finetune, pretrain, average, download, extend_langs, trim_vocab]
