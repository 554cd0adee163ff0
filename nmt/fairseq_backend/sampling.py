"""Sampling searches for fairseq's ``SequenceGenerator``: fairseq's own top-k / top-p
``Sampling``, and epsilon sampling on top of it.

Epsilon sampling (Hewitt et al. 2022, "Truncation Sampling as Language Model
Desmoothing"; recommended for MBR candidates by Freitag et al. 2023) drops every
token whose probability is below ``epsilon`` before sampling, so the long tail of
unlikely tokens is never drawn. The most likely token always stays, so a step
never runs out of choices. fairseq has top-k and top-p but no epsilon cut; the
cut here is applied to the log-probabilities that fairseq's ``Sampling.step`` then
samples from, so everything else (temperature, top-k, top-p, scores) is fairseq's.
"""
from __future__ import annotations

import math


def sampling_search(dictionary, sampling_topk: int = -1, sampling_topp: float = 1.0, epsilon: float = 0.0):
    """A fairseq search strategy that samples (top-k, top-p as fairseq, and an epsilon cut when > 0)."""
    from fairseq import search

    topp = sampling_topp if sampling_topp < 1.0 else -1.0  # fairseq: <= 0 means off
    if epsilon <= 0:
        return search.Sampling(dictionary, sampling_topk=sampling_topk, sampling_topp=topp)

    class EpsilonSampling(search.Sampling):
        def step(self, step, lprobs, scores, prev_output_tokens=None, original_batch_idxs=None):
            best = lprobs.max(dim=-1, keepdim=True).values
            cut = (lprobs < math.log(epsilon)) & (lprobs < best)
            return super().step(step, lprobs.masked_fill(cut, -math.inf), scores, prev_output_tokens,
                                original_batch_idxs)

    return EpsilonSampling(dictionary, sampling_topk=sampling_topk, sampling_topp=topp)
