"""Choosing among candidate translations with a model: COMET as the MBR utility, a
reference-free COMET model (COMET-Kiwi style) for QE reranking, and a cheap built-in
reranker that needs no model beyond the translation model itself.

Every chooser takes, per line, the source and its candidates (in generation order,
duplicates included) and returns one utility per *distinct* candidate, in order of
first appearance, plus the distinct candidates it rejects outright (ranked last).

COMET models are found and loaded by ``nmt.comet`` with the rules of ``nmt evaluate``
(a local directory, or a hub name already in the local Hugging Face cache; nothing is
downloaded); their segment scores are kept in memory only.

- ``CometMbr``: MBR with COMET(source, candidate, pseudo-reference) as the utility.
  For COMET's ``RegressionMetric`` models (wmt22-comet-da and the like) every distinct
  sentence is embedded once and only the small estimator runs per (candidate,
  reference) pair, as unbabel-comet's own ``comet-mbr`` does; other model classes
  (unified models) score every triple with ``predict``.
- ``QeReranker``: the reference-free model's score of (source, candidate).
- ``BuiltinReranker``: no extra model. The utility is the mean of the translation
  model's own mean log-probability per token of the candidate given the source
  (forward) and of the source given the candidate (reverse: the same many-to-many
  model, target to source), both by forced decoding. Candidates that fail a sanity check rank last: empty,
  confidently in another language than the target (fastText lid.176, the policy of
  ``nmt.data.lid``), or more than ``MAX_RATIO`` times longer or shorter than the
  source (sources of at least ``MIN_RATIO_WORDS`` words).
"""
from __future__ import annotations

import logging
from typing import Sequence

from nmt import langs
from nmt.comet import CometScorer, CometUnavailable, Flags, quiet
from nmt.data import lid
from nmt.errors import NmtError
from nmt.translate.mbr import distinct, expected_utilities

log = logging.getLogger("nmt.translate")

MAX_RATIO = 3.0  # the ratio nmt prepare's cleaning uses by default (FilterConfig.max_ratio)
MIN_RATIO_WORDS = 4


def open_comet(model: str, encoder: str | None, batch_size: int, gpus: int, flags: Flags,
               reference_free: bool) -> CometScorer:
    """A COMET scorer for decoding; NmtError with the one-line reason when it cannot be used."""
    what = "--rerank qe" if reference_free else "--mbr comet"
    try:
        scorer = CometScorer(model, batch_size, gpus, encoder=encoder, persistent=False, flags=flags)
    except CometUnavailable as exc:
        raise NmtError(f"{what}: n/a: {exc}") from None
    if scorer.model.reference_free != reference_free:
        scorer.close()
        raise NmtError(f"{what}: {flags.model} {model} is {'not ' if reference_free else ''}a reference-free "
                       f"(quality estimation) model; {what} needs " +
                       ("one such as COMET-Kiwi" if reference_free else "a reference-based one such as "
                        "wmt22-comet-da"))
    return scorer


class CometMbr:
    name = "COMET"

    def __init__(self, scorer: CometScorer):
        self.scorer = scorer
        self.signature = scorer.signature()

    def close(self) -> None:
        self.scorer.close()

    def utilities(self, sources: Sequence[str], candidates: Sequence[Sequence[str]], n_refs: int,
                  src: str, tgt: str) -> list[tuple[list[float], set]]:
        try:
            model = self.scorer.load()
            if hasattr(model, "estimate") and hasattr(model, "get_sentence_embedding"):
                return self._by_embeddings(model, sources, candidates, n_refs)
            return self._by_triples(sources, candidates, n_refs)
        except CometUnavailable as exc:
            raise NmtError(f"--mbr comet: n/a: {exc}") from None

    def _by_triples(self, sources, candidates, n_refs):
        triples, spans = [], []
        for source, cands in zip(sources, candidates):
            texts, first, _ = distinct(cands)
            start = len(triples)
            for k, own in enumerate(first):
                triples += [(source, texts[k], cands[j]) for j in range(min(n_refs, len(cands))) if j != own]
            spans.append((start, texts, first, len(cands)))
        scores = self.scorer.score([t[0] for t in triples], [t[1] for t in triples], [t[2] for t in triples])
        out = []
        for start, texts, first, n in spans:
            it = iter(scores[start:])
            table = {(k, j): next(it) for k, own in enumerate(first) for j in range(min(n_refs, n)) if j != own}
            out.append((expected_utilities(lambda k, j: table[(k, j)], n, min(n_refs, n), first), set()))
        return out

    def _by_embeddings(self, model, sources, candidates, n_refs):
        import torch

        device = "cuda" if self.scorer.gpus else "cpu"
        model.eval()
        model.to(device)
        texts = list(dict.fromkeys([*sources, *(c for cands in candidates for c in cands)]))
        row = {text: i for i, text in enumerate(texts)}
        size = self.scorer.batch_size
        with torch.no_grad(), quiet():
            parts = []
            for start in range(0, len(texts), size):
                batch = model.encoder.prepare_sample(texts[start:start + size])
                parts.append(model.get_sentence_embedding(batch["input_ids"].to(device),
                                                          batch["attention_mask"].to(device)))
            embeddings = torch.vstack(parts)
            out = []
            for source, cands in zip(sources, candidates):
                distinct_texts, first, _ = distinct(cands)
                refs = min(n_refs, len(cands))
                ref_rows = embeddings[[row[c] for c in cands[:refs]]]
                src_rows = embeddings[row[source]].expand(refs, -1)
                table = {}
                for k, text in enumerate(distinct_texts):
                    scores = model.estimate(src_rows, embeddings[row[text]].expand(refs, -1), ref_rows).score
                    for j, value in enumerate(scores.tolist()):
                        table[(k, j)] = float(value)
                out.append((expected_utilities(lambda k, j: table[(k, j)], len(cands), refs, first), set()))
        return out


class QeReranker:
    name = "QE"

    def __init__(self, scorer: CometScorer):
        self.scorer = scorer
        self.signature = scorer.signature()

    def close(self) -> None:
        self.scorer.close()

    def utilities(self, sources, candidates, n_refs, src, tgt):
        pairs, spans = [], []
        for source, cands in zip(sources, candidates):
            texts = distinct(cands)[0]
            spans.append((len(pairs), len(texts)))
            pairs += [(source, text) for text in texts]
        try:
            scores = self.scorer.score([p[0] for p in pairs], [p[1] for p in pairs], [""] * len(pairs))
        except CometUnavailable as exc:
            raise NmtError(f"--rerank qe: n/a: {exc}") from None
        return [(scores[start:start + n], set()) for start, n in spans]


class BuiltinReranker:
    name = "builtin"
    signature = (f"builtin|forward+reverse:mean-logprob|lid:fasttext-lid.176.ftz|threshold:{lid.DEFAULT_THRESHOLD}"
                 f"|max-ratio:{MAX_RATIO}")

    def __init__(self, translator):
        self.translator = translator

    def close(self) -> None:
        pass

    def utilities(self, sources, candidates, n_refs, src, tgt):
        items, spans = [], []
        for source, cands in zip(sources, candidates):
            texts = distinct(cands)[0]
            spans.append((len(items), len(texts)))
            items += [(source, text) for text in texts]
        # both by forced decoding, so that every candidate is judged alike whatever search made it
        forward = self.translator.score([it[0] for it in items], [it[1] for it in items], src, tgt)
        reverse = self.translator.score([it[1] for it in items], [it[0] for it in items], tgt, src)
        judge_language = lid.supports(tgt)
        out = []
        for start, n in spans:
            utilities, rejected = [], set()
            for k in range(n):
                source, text = items[start + k]
                utilities.append((forward[start + k] + reverse[start + k]) / 2)
                if self._fails(source, text, src, tgt, judge_language):
                    rejected.add(k)
            out.append((utilities, rejected))
        return out

    @staticmethod
    def _fails(source: str, text: str, src: str, tgt: str, judge_language: bool) -> bool:
        if not text.strip():
            return True
        if judge_language and lid.off_target(text, tgt):
            return True
        n_src, n_hyp = langs.get(src).length(source.strip()), langs.get(tgt).length(text.strip())
        return n_src >= MIN_RATIO_WORDS and max(n_src, n_hyp) > MAX_RATIO * max(1, min(n_src, n_hyp))
