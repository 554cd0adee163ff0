"""Text <-> dictionary ids, through the bundle's sentencepiece model and dictionary."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nmt.data import clean
from nmt.data import spm as spm_lib
from nmt.fairseq_backend import binarize


class SubwordCodec:
    """Encode text to fairseq dictionary ids and decode ids (or pieces) back to text.

    Input text gets the same normalisation as ``nmt prepare`` applied to the
    training data (control characters, Unicode form, whitespace). Ids of
    language tokens and other symbols beyond ``dict.txt`` are dropped on decode,
    and so are the reserved ``tags`` (e.g. the back-translation tag).
    """

    def __init__(self, spm_path, dict_path, normalization: str = "NFC", threads: int = 1, tags=()):
        self.processor = spm_lib.load(spm_path)
        self.symbols = binarize.read_dictionary(dict_path)
        self.tags = frozenset(tags)
        self.normalization = normalization
        self.threads = max(1, threads)
        # sentencepiece id -> dictionary id, and back
        index = {s: i for i, s in enumerate(self.symbols)}
        n = self.processor.get_piece_size()
        self.to_dict = np.array([index.get(self.processor.id_to_piece(i), binarize.UNK) for i in range(n)],
                                dtype=np.int64)
        self.to_dict[self.processor.unk_id()] = binarize.UNK
        unk = self.processor.unk_id()
        self.to_spm = np.array([self.processor.piece_to_id(s) if i >= len(binarize.SPECIALS) else unk
                                for i, s in enumerate(self.symbols)], dtype=np.int64)
        self.piece_index = index

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
        return [self.piece_index.get(p, binarize.UNK) for p in pieces]

    def decode(self, ids: Sequence[int]) -> str:
        n = len(self.symbols)
        spm_ids = [int(self.to_spm[i]) for i in self.output_ids(ids)
                   if i < n and (i >= len(binarize.SPECIALS) or i == binarize.UNK)]
        return self.processor.decode_ids(spm_ids)

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        return self.decode(self.pieces_to_ids(pieces))
