"""``nmt extend-langs`` and ``nmt trim-vocab``: vocabulary surgery on a model bundle (``nmt.vocab_surgery``)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from nmt.cli_util import friendly_errors
from nmt.errors import NmtError
from nmt.romanize import Romanization
from nmt.vocab import NewPieces


@click.command("extend-langs")
@click.option("--model", "-m", required=True, type=click.Path())
@click.option("--add", required=True, help="Languages to add, comma-separated (ML50 codes).")
@click.option("--init-from", multiple=True, metavar="NEW=EXISTING",
              help="Start a new language token from an existing one, e.g. gl_ES=es_XX (repeatable).")
@click.option("--romanize", metavar="LANG[,LANG]", default="",
              help="Mark languages as read romanized (uroman): fine-tuning data must be prepared with "
                   "--romanize for them, and translation romanizes their input.")
@click.option("--new-pieces-from", "piece_texts", multiple=True, type=click.Path(),
              help="Text in the added languages ([LANG=]PATH, repeatable): learn subword pieces for their "
                   "script from it and add those the vocabulary lacks.")
@click.option("--new-pieces", default=NewPieces.vocab_size, show_default=True,
              help="Size of the sentencepiece model learnt on --new-pieces-from.")
@click.option("--new-pieces-max-lines", default=NewPieces.max_lines, show_default=True,
              help="Lines read from --new-pieces-from, all files together.")
@click.option("--output", "-o", required=True, type=click.Path())
@friendly_errors
def extend_langs(model, add, init_from, romanize, piece_texts, new_pieces, new_pieces_max_lines, output):
    """Add languages to a pretrained model (new language tokens and embedding rows)."""
    from nmt.vocab_surgery import extend_languages

    pairs = {}
    for item in init_from:
        if "=" not in item:
            raise NmtError(f"bad --init-from {item!r}: write NEW=EXISTING, e.g. gl_ES=es_XX")
        new, old = item.split("=", 1)
        pairs[new.strip()] = old.strip()
    for path in piece_texts:
        if not Path(path.split("=", 1)[-1]).is_file():
            raise NmtError(f"--new-pieces-from {path}: no such file")
    info = extend_languages(model, [x.strip() for x in add.split(",") if x.strip()], output, pairs,
                            romanize=Romanization.parse(romanize).languages,
                            pieces=NewPieces(tuple(piece_texts), new_pieces, new_pieces_max_lines))
    click.echo(json.dumps(info), err=True)


@click.command("trim-vocab")
@click.option("--model", "-m", required=True, type=click.Path())
@click.option("--text", "texts", multiple=True, required=True, metavar="[LANG=]PATH",
              help="Text in the languages to keep (repeatable); pieces it uses are kept. LANG= says its "
                   "language (needed for a model that reads some languages romanized, unless the file name "
                   "ends in the code, e.g. train.bn_IN-en_XX.bn_IN).")
@click.option("--min-count", default=1, show_default=True)
@click.option("--output", "-o", required=True, type=click.Path())
@friendly_errors
def trim_vocab(model, texts, min_count, output):
    """Shrink a multilingual model's vocabulary to the pieces some text uses."""
    from nmt.vocab_surgery import text_language, trim_vocabulary

    for spec in texts:
        if not text_language(spec)[1].is_file():
            raise NmtError(f"--text {spec}: no such file")
    info = trim_vocabulary(model, texts, output, min_count)
    click.echo(f"dictionary {info['dictionary_before']} -> {info['dictionary_after']} pieces; parameters "
               f"{info['parameters_before']:,} -> {info['parameters_after']:,}", err=True)


COMMANDS = [extend_langs, trim_vocab]
