"""Vocabulary shortlists: restrict CTranslate2's output layer to a target language's tokens.

At every decoding step the output layer scores the whole vocabulary, and the softmax and
the beam's top-k run over all of it. A multilingual model shares one vocabulary among
all its languages, so most of those scores go to tokens of other languages and scripts.
``nmt export --shortlist DATA`` stores, for each target language, the tokens that occur
in that language's side of the training bitext (at least ``min_count`` times); ``nmt
translate`` then runs the output layer over that list only (``--no-shortlist`` to switch
it off). A token outside the list cannot be produced; a token that never occurred in the
target language's training text is one the model has practically never learnt to emit.
``benchmarks/bench_shortlist.py`` measures the coverage of reference tokens, BLEU and speed.

The list is the same for every sentence (CTranslate2's vocabulary-map format, a single
line with an empty key). Lists conditioned on the source sentence (CTranslate2's per-token
rules) were tried and are not used: CTranslate2 4.8.5 keeps its original-to-restricted
id table from earlier batches when the candidate set changes (``_to_output_word_id``
is only added to), so the forced target-language token maps to a stale position: the
decoder either fails ("vector::_M_range_check") or silently starts from a wrong token.
With one fixed list per target language the table never changes.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nmt import langs
from nmt.data.corpus import discover_raw
from nmt.errors import NmtError
from nmt.fileio import iter_lines_bytes, write_lines
from nmt.romanize import romanize_lines
from nmt.vocab import SPECIALS, SubwordCodec

log = logging.getLogger("nmt.shortlist")

SHORTLIST_DIR = "shortlist"


@dataclass
class ShortlistOptions:
    min_count: int = 1  # occurrences in the target language's training text for a token to be kept
    max_lines: int = 1_000_000  # training lines read per corpus file

    def check(self) -> None:
        if self.min_count < 1 or self.max_lines < 1:
            raise NmtError("--shortlist-min-count and --shortlist-max-lines must be >= 1")


def _target_files(data: Path, bundle) -> dict[str, list[Path]]:
    """For each target language of the bundle's directions, its side of the training bitext
    under a prepared data directory (its ``clean/`` stage) or an ML50-layout directory."""
    root = data / "clean" if (data / "clean").is_dir() else data
    if not root.is_dir():
        raise NmtError(f"--shortlist {data}: not a directory; give the data directory of nmt prepare "
                       "(or a directory of train.xx_XX-yy_YY.* files)")
    languages = set(bundle.languages)
    wanted = set(bundle.direction_pairs()) or {(a, b) for a in languages for b in languages if a != b}
    files: dict[str, list[Path]] = {}
    for pair in discover_raw([root]).values():
        for x, y in ((pair.src, pair.tgt), (pair.tgt, pair.src)):
            if (x, y) in wanted:
                for corpus in pair.splits["train"]:
                    if corpus.path(y) not in files.setdefault(y, []):
                        files[y].append(corpus.path(y))
    if not files:
        raise NmtError(f"--shortlist {data}: no training bitext for any of the model's directions "
                       f"({', '.join(sorted(f'{x}-{y}' for x, y in wanted))})")
    missing = sorted({y for _, y in wanted} - set(files))
    if missing:
        log.warning("no training text under %s for target language(s) %s: they get no shortlist",
                    data, ", ".join(missing))
    return files


def _count(codec, path: Path, max_lines: int, vocab: int, romanize_as: str | None = None) -> tuple[np.ndarray, int]:
    counts = np.zeros(vocab, dtype=np.int64)
    chunk: list[str] = []
    read = 0

    def flush():
        lines = [codec.normalize(x) for x in chunk]
        ids = codec.encode(romanize_lines(lines, romanize_as) if romanize_as else lines)
        flat = np.fromiter((i for row in ids for i in row), dtype=np.int64)
        counts[:] += np.bincount(flat, minlength=vocab)[:vocab]
        chunk.clear()

    for raw in iter_lines_bytes(path):
        if read >= max_lines:
            break
        read += 1
        try:
            chunk.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        if len(chunk) >= 50_000:
            flush()
    if chunk:
        flush()
    return counts, read


def build_shortlists(bundle, data: str | os.PathLike, options: ShortlistOptions | None = None) -> tuple[dict, dict]:
    """Per target language, the lines of a CTranslate2 vocabulary map; and a summary."""
    options = options or ShortlistOptions()
    options.check()
    data = Path(data)
    files = _target_files(data, bundle)
    codec = SubwordCodec.for_bundle(bundle, threads=os.cpu_count() or 1)
    symbols = codec.symbols
    # specials are CTranslate2's own fixed candidates; a token with whitespace cannot be written
    usable = np.array([i >= len(SPECIALS) and not any(ch.isspace() for ch in s) for i, s in enumerate(symbols)])
    maps, summary = {}, {"data": str(data.resolve()), **asdict(options), "vocabulary": len(symbols), "targets": {}}
    # a model that writes a language romanized (--romanize-target) learnt it from romanized text: the text
    # of nmt prepare's clean/ stage is, an ML50-layout directory's is not yet
    raw_text = not (data / "clean").is_dir()
    for lang, paths in sorted(files.items()):
        counts = np.zeros(len(symbols), dtype=np.int64)
        lines = 0
        romanize_as = lang if raw_text and bundle.romanized.output(lang) else None
        for path in paths:
            c, n = _count(codec, path, options.max_lines, len(symbols), romanize_as)
            counts += c
            lines += n
        keep = np.flatnonzero((counts >= options.min_count) & usable)
        # the target-language token is forced as the decoder's first token: it must be a candidate
        maps[lang] = ["\t" + " ".join([langs.lang_token(lang, bundle.lang_tok_style)] + [symbols[i] for i in keep])]
        summary["targets"][lang] = {"training_lines": lines, "tokens": int(len(keep))}
    return maps, summary


def write_shortlists(maps: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for lang, lines in maps.items():
        write_lines(directory / f"{lang}.txt", lines)


def read_shortlist(path: Path, symbols_index: dict) -> set:
    """The dictionary ids a shortlist file allows (besides CTranslate2's fixed specials)."""
    allowed = set()
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        key, tab, values = line.partition("\t")
        if tab and key == "":
            allowed |= {symbols_index[v] for v in values.split(" ") if v in symbols_index}
    return allowed
