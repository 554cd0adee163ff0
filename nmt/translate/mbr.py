"""Minimum Bayes risk (MBR) selection: of N candidate translations, the one with the highest
expected utility against M pseudo-references (Kumar & Byrne 2004; with neural metrics,
Freitag et al. 2022).

The pseudo-references are the first M candidates (all N by default), in the order they
were generated: independent samples when the candidates were sampled, the top of the
n-best list otherwise. A candidate is never its own reference: its expected utility is
the mean of ``u(candidate, reference_j)`` over the references at other positions (as
unbabel-comet's ``comet-mbr`` does); an identical text at another position is another
sample and does count. The highest expected utility wins; ties go to the earlier
candidate. With one candidate there is nothing to choose.

Utilities:

- ``chrF`` / ``BLEU``: sacrebleu's sentence chrF (``CHRF()``) and sentence BLEU
  (``BLEU(effective_order=True)``, the target language's tokenizer), computed from
  sacrebleu's own n-gram extraction, done once per distinct text instead of twice per
  pair; the matched n-grams of every two candidates come from one dense count matrix
  per n-gram order (numpy: ``sum(min(a, b))`` over the columns). The scores are
  sacrebleu's to the last bit: the same integers go through sacrebleu's own
  ``_compute_f_score`` / ``_compute_score_from_stats`` (tests compare with
  ``sentence_score``; benchmarks/bench_decoding.py --utility-only times it against the
  naive N^2 loop).
- ``COMET``: ``nmt.translate.rerank.CometMbr``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from nmt import langs


def expected_utilities(pair_score, n_candidates: int, n_refs: int, first: Sequence[int]) -> list[float]:
    """Expected utility of each distinct candidate ``k`` (first seen at position ``first[k]``):
    the mean of ``pair_score(k, j)`` over the reference positions ``j < n_refs``, ``j != first[k]``."""
    out = []
    for k, own in enumerate(first):
        values = [pair_score(k, j) for j in range(n_refs) if j != own]
        out.append(sum(values) / len(values) if values else 0.0)
    return out


def distinct(texts: Sequence[str]) -> tuple[list[str], list[int], list[int]]:
    """(distinct texts in order, the position each first appears at, the distinct index of every position)."""
    index: dict[str, int] = {}
    first, of = [], []
    for position, text in enumerate(texts):
        if text not in index:
            index[text] = len(index)
            first.append(position)
        of.append(index[text])
    return list(index), first, of


@dataclass
class Grams:
    """One text's n-gram counts per order (sacrebleu's own extraction) and their totals."""

    counts: list  # one Counter per order
    totals: list  # sum of each Counter
    length: int = 0  # BLEU: the tokenized length


class NgramUtility:
    """A sacrebleu sentence metric between candidates, from n-gram statistics cached per text."""

    name = ""

    def __init__(self, metric):
        self.metric = metric
        metric.num_refs = 1  # one pseudo-reference per utility call (sacrebleu's signature says nrefs:1)
        self.signature = f"{self.name}|" + metric.get_signature().format(short=False)

    def grams(self, text: str) -> Grams:
        raise NotImplementedError

    def _stats(self, hyp: Grams, ref: Grams, match: list[int]) -> list[int]:
        """sacrebleu's statistics of ``hyp`` against ``ref``, given the matches per order."""
        raise NotImplementedError

    def _score(self, stats: list[int]) -> float:
        raise NotImplementedError

    def utilities(self, candidates: Sequence[str], n_refs: int) -> list[float]:
        """Expected utility of each distinct candidate (in order of first appearance)."""
        texts, first, of = distinct(candidates)
        grams = [self.grams(text) for text in texts]
        matches = match_matrices([g.counts for g in grams])
        cache: dict = {}

        def pair_score(k: int, j: int) -> float:
            r = of[j]
            if (k, r) not in cache:
                match = [int(m[k, r]) for m in matches]
                cache[(k, r)] = self._score(self._stats(grams[k], grams[r], match))
            return cache[(k, r)]

        return expected_utilities(pair_score, len(candidates), n_refs, first)

    def pair(self, hypothesis: str, reference: str) -> float:
        """The utility of one hypothesis against one reference."""
        hyp, ref = self.grams(hypothesis), self.grams(reference)
        match = [sum(min(c, r[g]) for g, c in h.items() if g in r) for h, r in zip(hyp.counts, ref.counts)]
        return self._score(self._stats(hyp, ref, match))


def match_matrices(counts: list[list]) -> list:
    """Per n-gram order, the matrix of matched n-grams between every two texts:
    ``M[a, b] = sum over n-grams of min(count in a, count in b)`` (symmetric, exact integers), each
    text's counts laid out once as a row of a dense count matrix."""
    import numpy as np

    out = []
    for order in range(len(counts[0]) if counts else 0):
        index: dict = {}
        rows = [[(index.setdefault(gram, len(index)), count) for gram, count in text[order].items()] for text in counts]
        table = np.zeros((len(counts), max(1, len(index))), dtype=np.int64)
        for i, row in enumerate(rows):
            if row:
                columns, values = zip(*row)
                table[i, list(columns)] = values
        out.append(np.stack([np.minimum(table[i], table).sum(axis=1) for i in range(len(counts))]))
    return out


class ChrfUtility(NgramUtility):
    """sacrebleu's sentence chrF: character n-grams (and word n-grams for chrF++) per text."""

    name = "chrF"

    def __init__(self, word_order: int = 0):
        from sacrebleu.metrics import CHRF

        super().__init__(CHRF(word_order=word_order))

    def grams(self, text: str) -> Grams:
        m = self.metric
        counts = m._extract_reference_info([m._preprocess_segment(text)])["ref_ngrams"][0]
        return Grams(counts, [sum(c.values()) for c in counts])

    def _stats(self, hyp, ref, match):
        # sacrebleu's CHRF._get_match_statistics per order: [hyp count (0 without reference n-grams), ref count, match]
        stats = []
        for order, common in enumerate(match):
            stats += [hyp.totals[order] if ref.counts[order] else 0, ref.totals[order], common]
        return stats

    def _score(self, stats) -> float:
        return self.metric._compute_f_score(stats)


class BleuUtility(NgramUtility):
    """sacrebleu's sentence BLEU (effective order, exp smoothing) with the target language's tokenizer
    (``flores200``, which needs a download, becomes ``char``)."""

    name = "BLEU"

    def __init__(self, tgt: str):
        from sacrebleu.metrics import BLEU

        tokenizer = langs.get(tgt).bleu_tokenizer
        if tokenizer.startswith("flores"):
            tokenizer = langs.FLORES_FALLBACK_TOKENIZER
        super().__init__(BLEU(tokenize=tokenizer, effective_order=True))

    def grams(self, text: str) -> Grams:
        from collections import Counter

        from sacrebleu.metrics.helpers import extract_all_word_ngrams

        m = self.metric
        found, length = extract_all_word_ngrams(m._preprocess_segment(text), 1, m.max_ngram_order)
        counts = [Counter() for _ in range(m.max_ngram_order)]
        for gram, count in found.items():
            counts[len(gram) - 1][gram] = count
        return Grams(counts, [sum(c.values()) for c in counts], length)

    def _stats(self, hyp, ref, match):
        # sacrebleu's BLEU._compute_segment_statistics: [hyp_len, ref_len] + correct + total
        return [hyp.length, ref.length] + list(match) + list(hyp.totals)

    def _score(self, stats) -> float:
        return self.metric._compute_score_from_stats(stats).score


class NgramMbr:
    """MBR with chrF or BLEU as the utility (a chooser, as those of ``nmt.translate.rerank``)."""

    def __init__(self, kind: str):
        if kind not in ("chrf", "bleu"):
            raise ValueError(f"no n-gram utility {kind!r}")
        self.kind = kind
        self.name = "chrF" if kind == "chrf" else "BLEU"
        self._by_target: dict[str, NgramUtility] = {}

    def utility(self, tgt: str) -> NgramUtility:
        if tgt not in self._by_target:
            self._by_target[tgt] = ChrfUtility() if self.kind == "chrf" else BleuUtility(tgt)
        return self._by_target[tgt]

    def close(self) -> None:
        pass

    @property
    def signature(self) -> str:
        """The utility's sacrebleu signature (BLEU: one per tokenizer used so far)."""
        seen = sorted({u.signature for u in self._by_target.values()}) or [self.utility(langs.ENGLISH).signature]
        return "; ".join(seen)

    def utilities(self, sources, candidates, n_refs: int, src: str, tgt: str) -> list[tuple[list[float], set]]:
        utility = self.utility(tgt)
        return [(utility.utilities(cands, min(n_refs, len(cands))), set()) for cands in candidates]
