"""Paragraphs in, sentences to the model, paragraphs out.

Models are trained on sentences; people send paragraphs. With ``split_sentences``
``auto`` (the default) or ``always``, every input line is cut into sentences by
sentencex (Wikimedia's rule-based splitter, ~300 languages; chosen by measurement
over 21 ML50 languages, see docs/PARAGRAPHS.md), the sentences of all lines are
translated together (batched as whole lines are), and each line's translations are
joined back with the target language's separator (``nmt.langs``: a space, none
for Japanese and Chinese).

- ``never``: the whole line is one input, as before.
- ``auto``: a line is split only when it holds more than one sentence; pieces
  without two letters or digits (a stray ``.``, a list number ``1.``) stay with
  the sentence before them (the first one: with the one after), so a line the
  splitter cuts into one real sentence is translated exactly as with ``never``.
- ``always``: every piece the splitter finds is translated on its own.

The contract is the translator's: one result per input line, in order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sentencex import segment

from nmt import langs

SPLIT_MODES = ("auto", "always", "never")
_WORD_CHAR = re.compile(r"\w")


def _substantial(piece: str) -> bool:
    return len(_WORD_CHAR.findall(piece)) >= 2


def split_line(text: str, iso: str, mode: str) -> list[str]:
    """The sentences of ``text`` (stripped), or ``[text]`` when it is not to be split."""
    if mode == "never" or not text.strip():
        return [text]
    pieces = list(segment(iso, text))
    if mode == "auto":
        merged: list[str] = []
        for piece in pieces:
            if merged and (not _substantial(piece) or not _substantial(merged[-1])):
                merged[-1] += piece
            else:
                merged.append(piece)
        pieces = merged
    pieces = [p.strip() for p in pieces if p.strip()]
    if len(pieces) <= 1:
        return [text]
    return pieces


@dataclass
class Segmented:
    """Lines cut into the units sent to the model: line i owns ``units[starts[i]:starts[i + 1]]``."""

    units: list
    starts: list[int]

    @property
    def split_any(self) -> bool:
        return len(self.units) != len(self.starts) - 1

    def owned(self, results: list, line: int) -> list:
        return results[self.starts[line]:self.starts[line + 1]]


def segment_lines(lines, src: str, mode: str) -> Segmented:
    """Cut every line (``None`` for an undecodable one stays one unit) into sentences."""
    iso = langs.get(src).iso if src in langs.LANGUAGES else src.split("_")[0]
    units: list = []
    starts = [0]
    for line in lines:
        units.extend([line] if line is None else split_line(line, iso, mode))
        starts.append(len(units))
    return Segmented(units, starts)


def joiner(tgt: str) -> str:
    """What goes between two translated sentences of one line in ``tgt``."""
    return langs.get(tgt).sentence_joiner if tgt in langs.LANGUAGES else " "
