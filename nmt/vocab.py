"""The shared vocabulary: one sentencepiece model, one fairseq dictionary, and text <-> ids.

* Specials: fairseq's dictionary starts with ``<s> <pad> </s> <unk>`` (ids 0-3);
  nmt's sentencepiece models use the same ids for them (``nmt.data.spm``).
* ``dict.txt``: one ``piece count`` line per symbol after the specials (fairseq adds
  the specials in front when it loads it; language tokens and mBART's ``<mask>`` are
  appended by the model, after ``dict.txt``'s symbols).
* The subword-to-dictionary table maps every sentencepiece id to its dictionary id
  (``<unk>`` for a piece the dictionary lacks, e.g. a trimmed vocabulary's).
* ``SubwordCodec`` encodes text to dictionary ids and decodes ids back to text, with
  the normalisation ``nmt prepare`` applied to the training data.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nmt.data import clean
from nmt.errors import NmtError
from nmt.fileio import atomic_path

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BOS, PAD, EOS, UNK = 0, 1, 2, 3


# -- dict.txt -------------------------------------------------------------------

def write_dictionary(path, pieces, counts=None) -> None:
    """Write a fairseq ``dict.txt`` (symbols after the four specials)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as out:
            for i, piece in enumerate(pieces):
                count = 1 if counts is None else int(counts[i])
                out.write(f"{piece} {count}\n")


def read_dictionary(path) -> list[str]:
    """Symbols of a fairseq ``dict.txt`` in id order, specials included (ids 0-3)."""
    symbols = list(SPECIALS)
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n")
                if not line:
                    continue
                piece, _, rest = line.rpartition(" ")
                if rest == "#fairseq:overwrite":
                    piece, _, rest = piece.rpartition(" ")
                if not piece:
                    raise NmtError(f"{path}: line {number} is not 'symbol count', so this is not a fairseq dict.txt")
                symbols.append(piece)
    except FileNotFoundError:
        raise NmtError(f"missing dictionary {path}") from None
    except UnicodeDecodeError as exc:
        raise NmtError(f"{path} is not a UTF-8 fairseq dict.txt (byte {exc.start})") from None
    return symbols


def check_dictionary_file(path) -> None:
    """A one-line error unless ``path`` is a readable, non-empty fairseq dictionary."""
    if len(read_dictionary(path)) == len(SPECIALS):
        raise NmtError(f"dictionary {path} is empty; give the dict.txt that goes with the sentencepiece model")


# -- the sentencepiece model ------------------------------------------------------

def load_spm(path):
    """A loaded ``sentencepiece.SentencePieceProcessor``; a one-line error for a file that is not one."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor()
    try:
        processor.load(str(path))
    except (OSError, RuntimeError) as exc:
        raise NmtError(f"cannot load sentencepiece model {path}: {exc}") from None
    return processor


def check_spm_file(path) -> None:
    """A one-line error unless ``path`` is a sentencepiece model that loads (a 0-byte or foreign file
    would otherwise be copied into a finished spm/ stage)."""
    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        raise NmtError(f"sentencepiece model {path} is missing or empty; give a trained .model file")
    if load_spm(path).get_piece_size() < len(SPECIALS):
        raise NmtError(f"sentencepiece model {path} has fewer pieces than its specials; is it the right file?")


def check_pair(spm_path, dict_path, max_missing: float = 0.01) -> None:
    """A one-line error when the dictionary lacks more than ``max_missing`` of the sentencepiece model's
    pieces: they would all become ``<unk>`` (a dict.txt made with another model)."""
    processor = load_spm(spm_path)
    symbols = set(read_dictionary(dict_path))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())
              if not (processor.is_control(i) or processor.is_unknown(i) or processor.is_unused(i))]
    missing = [p for p in pieces if p not in symbols]
    if pieces and len(missing) > max_missing * len(pieces):
        raise NmtError(f"the dictionary {dict_path} lacks {len(missing):,} of the {len(pieces):,} pieces of "
                       f"{spm_path} ({100 * len(missing) / len(pieces):.0f}%, e.g. {missing[0]!r}): text would "
                       "become <unk>; give the dict.txt made with this sentencepiece model")


def spm_pieces(processor) -> list[str]:
    """Every piece of a sentencepiece model, in id order."""
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def piece_table(processor, symbols: Sequence[str]) -> np.ndarray:
    """Map every sentencepiece id to its dictionary id (``<unk>`` when the dictionary lacks it)."""
    index = {s: i for i, s in enumerate(symbols)}
    table = np.fromiter((index.get(processor.id_to_piece(i), UNK) for i in range(processor.get_piece_size())),
                        dtype=np.int64, count=processor.get_piece_size())
    table[processor.unk_id()] = UNK
    return table


@dataclass(frozen=True)
class NewPieces:
    """Subword pieces for a new script (``nmt extend-langs --new-pieces-from``): a sentencepiece model is
    learnt on text in the added languages, and its pieces the vocabulary lacks are added to it."""

    texts: tuple = ()  # files ([LANG=]PATH) of text in the added languages
    vocab_size: int = 4000  # size of the sentencepiece model learnt on them
    max_lines: int = 1_000_000  # lines read from the texts, all files together

    def check(self) -> None:
        if self.texts and (self.vocab_size < 16 or self.max_lines < 1):
            raise NmtError(f"--new-pieces must be >= 16 (got {self.vocab_size}) and --new-pieces-max-lines >= 1")


# -- text <-> ids -----------------------------------------------------------------

class SubwordCodec:
    """Encode text to fairseq dictionary ids and decode ids (or pieces) back to text.

    Input text gets the same normalisation as ``nmt prepare`` applied to the
    training data (control characters, Unicode form, whitespace). Ids of
    language tokens and other symbols beyond ``dict.txt`` are dropped on decode,
    and so are the reserved ``tags`` (e.g. the back-translation tag).
    """

    def __init__(self, spm_path, dict_path, normalization: str = "NFC", threads: int = 1, tags=()):
        self.processor = load_spm(spm_path)
        self.symbols = read_dictionary(dict_path)
        self.tags = frozenset(tags)
        self.normalization = normalization
        self.threads = max(1, threads)
        # sentencepiece id -> dictionary id, and back
        self.to_dict = piece_table(self.processor, self.symbols)
        unk = self.processor.unk_id()
        self.to_spm = np.array([self.processor.piece_to_id(s) if i >= len(SPECIALS) else unk
                                for i, s in enumerate(self.symbols)], dtype=np.int64)
        self.piece_index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def for_bundle(cls, bundle, threads: int = 1) -> "SubwordCodec":
        """The codec of a model bundle (its sentencepiece model, dictionary and normalisation)."""
        return cls(bundle.spm_path, bundle.dict_path, bundle.normalization, threads=threads, tags=bundle.tags)

    def normalize(self, line: str) -> str:
        return clean.normalize(line, self.normalization)

    def encode(self, lines: Sequence[str]) -> list[list[int]]:
        """Normalised lines -> dictionary ids (no </s>, no language token)."""
        if not lines:
            return []
        spm_ids = self.processor.encode(list(lines), out_type=int, num_threads=self.threads)
        table = self.to_dict
        return [table[np.asarray(ids, dtype=np.int64)].tolist() if ids else [] for ids in spm_ids]

    def ids_to_pieces(self, ids: Sequence[int]) -> list[str]:
        n = len(self.symbols)
        return [self.symbols[i] for i in ids if i < n]

    def output_ids(self, ids: Sequence[int]) -> list[int]:
        """``ids`` without the reserved tags (an output never contains them)."""
        if not self.tags:
            return list(ids)
        n = len(self.symbols)
        return [i for i in ids if i >= n or self.symbols[i] not in self.tags]

    def pieces_to_ids(self, pieces: Sequence[str]) -> list[int]:
        return [self.piece_index.get(p, UNK) for p in pieces]

    def decode(self, ids: Sequence[int]) -> str:
        n = len(self.symbols)
        spm_ids = [int(self.to_spm[i]) for i in self.output_ids(ids)
                   if i < n and (i >= len(SPECIALS) or i == UNK)]
        return self.processor.decode_ids(spm_ids)

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        return self.decode(self.pieces_to_ids(pieces))
