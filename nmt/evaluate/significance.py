"""Paired significance tests of systems against a baseline, per direction.

BLEU, chrF and chrF++ go through sacrebleu's own ``PairedTest`` (paired
bootstrap resampling, Koehn 2004, as in ``sacrebleu --paired-bs``; and paired
approximate randomization, Riezler & Maxwell 2005, as in ``--paired-ar``),
so p-values match what ``sacrebleu`` prints for the same files and seed.

COMET has no sufficient statistics: its system score is the mean of segment
scores, so the same two tests run here on the segment scores, with the same
p-value definition as sacrebleu (bootstrap: resample segments with replacement,
count how often the centred resampled difference exceeds the observed one;
AR: swap the two systems' segment scores with probability 1/2 per segment),
and the same seed (``SACREBLEU_SEED``, default 12345).

The tests are two-sided and uncorrected for multiple comparisons: with many
directions, some differences will be "significant" by chance at p < 0.05.

One correction to sacrebleu: it counts resampled differences strictly greater
than the observed one, so when the observed difference is exactly zero (e.g.
two checkpoints that produce identical output for a direction) it reports
p = 1/(n+1), "significant". A zero difference is no evidence of a difference:
we report p = 1 there (``PairedResult.zero_difference`` says so).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

TESTS = {"bs": "paired bootstrap resampling", "ar": "paired approximate randomization"}
DEFAULT_SAMPLES = {"bs": 1000, "ar": 10000}
SACREBLEU_NAMES = {"BLEU": "BLEU", "chrF2": "chrF", "chrF2++": "chrF++"}


@dataclass
class PairedResult:
    score: float
    p_value: float | None = None  # None for the baseline
    mean: float | None = None  # bootstrap mean (bs only)
    ci: float | None = None  # half-width of the 95% interval (bs only)
    zero_difference: bool = False  # observed difference 0: p set to 1 (see the module docstring)

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and v is not False}


@dataclass
class PairedOutcome:
    """Results of one test type for one direction: metric -> one result per system."""

    test: str
    n_samples: int
    results: dict = field(default_factory=dict)  # metric -> [PairedResult per system, baseline first]
    signatures: dict = field(default_factory=dict)  # metric -> signature string


def seed() -> int | None:
    value = os.environ.get("SACREBLEU_SEED", "12345")
    return None if value.lower() == "none" else int(value)


def sacrebleu_paired(hyps: Sequence[Sequence[str]], names: Sequence[str], refs: Sequence[str], metrics: dict,
                     test: str, n_samples: int = 0) -> PairedOutcome:
    """Run sacrebleu's ``PairedTest``; ``metrics`` maps our names to sacrebleu metric objects."""
    import logging

    from sacrebleu.significance import PairedTest

    n_samples = n_samples or DEFAULT_SAMPLES[test]
    sacre_log = logging.getLogger("sacrebleu")
    level = sacre_log.level
    sacre_log.setLevel(logging.WARNING)  # it logs every step at INFO
    try:
        paired = PairedTest(list(zip(names, [list(h) for h in hyps])), dict(metrics), references=[list(refs)],
                            test_type=test, n_samples=n_samples)
        signatures, scores = paired()
    finally:
        sacre_log.setLevel(level)
    outcome = PairedOutcome(test, n_samples)
    for key, column in scores.items():
        if key == "System":
            continue
        name = SACREBLEU_NAMES.get(key, key)
        results = [PairedResult(r.score, r.p_value, r.mean, r.ci) for r in column]
        for result in results[1:]:
            if result.score == results[0].score:
                result.p_value, result.zero_difference = 1.0, True
        outcome.results[name] = results
        outcome.signatures[name] = str(signatures[key])
    return outcome


def _p_value(stats: np.ndarray, observed: float) -> float:
    """sacrebleu's p-value: (count(stats > observed) + 1) / (n + 1)."""
    return float((np.sum(stats > observed) + 1) / (len(stats) + 1))


def _ci(values: np.ndarray) -> tuple[float, float]:
    values = np.sort(values)
    lower = len(values) // 40
    return float(values.mean()), float(0.5 * (values[len(values) - lower - 1] - values[lower]))


def segment_paired(segment_scores: Sequence[Sequence[float]], test: str, n_samples: int = 0,
                   scale: float = 1.0) -> list[PairedResult]:
    """Paired test on mean segment scores (COMET); baseline first, one result per system."""
    n_samples = n_samples or DEFAULT_SAMPLES[test]
    base = np.asarray(segment_scores[0], dtype=np.float64) * scale
    n = len(base)
    rng = np.random.default_rng(seed())
    idx = rng.choice(n, size=(n_samples, n), replace=True) if test == "bs" else None
    swap = rng.integers(2, size=(n_samples, n), dtype=bool) if test == "ar" else None
    results = []
    base_mean = float(base.mean())
    if test == "bs":
        results.append(PairedResult(base_mean, None, *_ci(base[idx].mean(axis=1))))
    else:
        results.append(PairedResult(base_mean))
    for other in segment_scores[1:]:
        sys_ = np.asarray(other, dtype=np.float64) * scale
        observed = abs(float(sys_.mean()) - base_mean)
        if observed == 0.0:
            results.append(PairedResult(float(sys_.mean()), 1.0, zero_difference=True))
            continue
        if test == "bs":
            sys_means = sys_[idx].mean(axis=1)
            diffs = np.abs(sys_means - base[idx].mean(axis=1))
            p = _p_value(diffs - diffs.mean(), observed)
            results.append(PairedResult(float(sys_.mean()), p, *_ci(sys_means)))
        else:
            a = np.where(swap, sys_, base).mean(axis=1)
            b = np.where(swap, base, sys_).mean(axis=1)
            results.append(PairedResult(float(sys_.mean()), _p_value(np.abs(a - b), observed)))
    return results


def segment_signature(test: str, n_samples: int) -> str:
    return f"paired-{test}|unit:segment-mean|{test}:{n_samples or DEFAULT_SAMPLES[test]}|seed:{str(seed()).lower()}"
