"""Uniform samples of a stream in one pass, with memory bounded by the sample size.

``Reservoir`` is reservoir sampling with geometric skips (Li's "Algorithm L"):
it keeps ``k`` items of a stream of unknown length, each subset of size ``k``
equally likely, and draws only O(k log(n/k)) random numbers, so skipping over
millions of lines costs no Python work per line. Same seed, same stream: same sample.
"""
from __future__ import annotations

import math
import random


class Reservoir:
    def __init__(self, k: int, seed) -> None:
        self.k = k
        self.rng = random.Random(str(seed))
        self.items: list = []
        self.indices: list[int] = []
        self.seen = 0
        self._w = 1.0
        self._next = k  # stream index of the next item to take after the reservoir is full
        if k > 0:
            self._advance()
            self._next = k - 1 + self._gap()

    def _random(self) -> float:
        return self.rng.random() or 1e-300  # log(0) guard

    def _advance(self) -> None:
        self._w *= math.exp(math.log(self._random()) / self.k)

    def _gap(self) -> int:
        if self._w >= 1.0:
            return 1
        return int(math.floor(math.log(self._random()) / math.log1p(-self._w))) + 1

    def offer(self, items) -> None:
        """Offer the next ``len(items)`` items of the stream (any sequence)."""
        start, n = self.seen, len(items)
        self.seen += n
        if self.k <= 0:
            return
        i = start
        while i < start + n and len(self.items) < self.k:  # filling
            self.items.append(items[i - start])
            self.indices.append(i)
            i += 1
        while self._next < start + n:
            slot = self.rng.randrange(self.k)
            self.items[slot] = items[self._next - start]
            self.indices[slot] = self._next
            self._advance()
            self._next += self._gap()

    def sample(self) -> list[tuple[int, object]]:
        """``(stream index, item)`` in stream order."""
        return sorted(zip(self.indices, self.items), key=lambda pair: pair[0])
