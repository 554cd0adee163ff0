"""Fixed-size keys for exact-duplicate and evaluation-overlap detection.

Every normalised line, and every normalised (source, target) pair, is reduced
to a 64-bit xxHash (XXH3) key; only keys are kept, never text. Keys live in
sorted numpy arrays, 8 bytes per distinct training pair of the pair being
cleaned (so a 40M-pair language needs 320 MB of keys, whatever its text length).

Collisions: two different pairs share a key with probability 2**-64. With n
distinct pairs in one language pair, the chance that any collision happens
at all is about n**2 / 2**65: 4e-5 for n = 40 million (one pair would then be
wrongly dropped as a duplicate). For evaluation overlap with m evaluation lines
and n training lines it is about n * m / 2**64 (2e-7 for n = 40M, m = 100k).
"""
from __future__ import annotations

import numpy as np
import xxhash

_KEY = np.uint64


def line_keys(lines) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(x.encode("utf-8")) for x in lines), dtype=_KEY,
                       count=len(lines))


def pair_keys(src_lines, tgt_lines) -> np.ndarray:
    """Keys of (source, target) pairs; normalised text holds no tab, so the tab joins unambiguously."""
    return np.fromiter((xxhash.xxh3_64_intdigest(f"{x}\t{y}".encode("utf-8"))
                        for x, y in zip(src_lines, tgt_lines)), dtype=_KEY, count=len(src_lines))


def contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``keys`` occur in the sorted array ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos[pos == len(sorted_keys)] = 0
    return sorted_keys[pos] == keys


class KeySet:
    """Keys seen so far, as a few sorted runs (merged like a log-structured tree).

    A new run is merged into the previous one while that one is less than twice
    its size, so there are O(log n) runs and each key is re-sorted O(log n) times.
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def first_occurrences(self, keys: np.ndarray) -> np.ndarray:
        """Mask of the keys seen for the first time (earlier in ``keys`` or in earlier calls); adds them."""
        unique, first = np.unique(keys, return_index=True)
        old = np.zeros(len(unique), dtype=bool)
        for run in self.runs:
            old |= contains(run, unique)
        mask = np.zeros(len(keys), dtype=bool)
        mask[first[~old]] = True
        new = unique[~old]
        if len(new):
            self.runs.append(new)
            while len(self.runs) > 1 and len(self.runs[-2]) < 2 * len(self.runs[-1]):
                last = self.runs.pop()
                self.runs[-1] = np.sort(np.concatenate([self.runs[-1], last]))
        return mask


def sorted_unique(arrays) -> np.ndarray:
    arrays = [np.asarray(a, dtype=_KEY) for a in arrays]
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=_KEY)
