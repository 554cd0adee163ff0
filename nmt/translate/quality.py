"""Decoding for quality: choose among several candidates (MBR, QE or built-in reranking),
and pivot through a third language, behind the ``Translator`` interface.

``QualityTranslator(translator, QualityOptions(...)).translate(lines, src, tgt, options)``
takes and returns what ``Translator.translate`` does (one ``Translation`` per line, in
order), so every command that translates (translate, translate-corpus, evaluate,
package, serve) gets the same behaviour from one place. With default options it is
``Translator.translate`` itself.

- **Candidates**: ``--candidates N`` per line, from the decoding options: N samples with
  ``--sampling`` (top-k, top-p, temperature through CTranslate2; epsilon sampling through
  the fairseq checkpoint, ``--seed`` for reproducible draws), else beam search's N-best
  list (the beam widened to N when it is narrower).
- **Choosing**: ``--mbr chrf|bleu|comet`` (``nmt.translate.mbr``, ``nmt.translate.rerank``)
  or ``--rerank qe|builtin`` (``nmt.translate.rerank``). The chosen candidate comes first
  in ``Translation.hypotheses``; with ``options.nbest`` > 1, that many of the distinct
  candidates, in order of utility, each with its ``utility``. A line with one candidate
  has nothing to choose. Lines that ``--split-sentences`` splits are chosen sentence by
  sentence, then joined (the joined best hypothesis' ``utility`` is the mean of its
  sentences').
- **Pivoting**: ``--pivot en_XX`` translates source -> pivot -> target in one call: every
  line to the pivot language (batched, with the same options), then the results to the
  target; ``Translation.pivot`` keeps the pivot text. Directions from or into the pivot
  language are translated directly. It is exactly two chained ``translate`` calls.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

from nmt.comet import DEFAULT_MODEL, Flags
from nmt.translate import sentences
from nmt.translate.backends import DecodeOptions, EngineOptions
from nmt.translate.mbr import NgramMbr, distinct
from nmt.translate.options import DEFAULT_QE_MODEL, QualityOptions
from nmt.translate.translator import Translation, Translator, join_sentences

# the options that name the models (nmt evaluate names the MBR model --mbr-comet-model: see nmt.evaluate.cli)
MBR_FLAGS = Flags("--comet-model", "--comet-encoder", download=None, skip=None)
QE_FLAGS = Flags("--qe-model", "--qe-encoder", download=None, skip=None)


class Chooser(Protocol):
    """What scores the candidates (``NgramMbr``, ``rerank.CometMbr``, ``rerank.QeReranker``,
    ``rerank.BuiltinReranker``)."""

    name: str
    signature: str

    def utilities(self, sources: Sequence[str], candidates: Sequence[Sequence[str]], n_refs: int, src: str,
                  tgt: str) -> list[tuple[list[float], set]]:
        """Per line: one utility per distinct candidate (in order of first appearance), and the distinct
        candidates rejected outright."""

    def close(self) -> None: ...


class QualityTranslator:
    """``Translator.translate`` with candidates, a chooser and pivoting (see the module docstring)."""

    def __init__(self, translator: Translator, quality: QualityOptions | None = None, mbr_flags: Flags = MBR_FLAGS):
        """``mbr_flags``: the options that name the MBR COMET model in this command's messages."""
        self.translator = translator
        self.mbr_flags = mbr_flags
        self.quality = quality or QualityOptions()
        self.quality.check()
        if self.quality.pivot:
            self.translator.bundle.check_language(self.quality.pivot, "--pivot language")
        self._choosers: dict = {}
        if self.quality.selecting:  # a COMET model that cannot be used fails now, not at the first line
            self.chooser(self.quality)

    def __getattr__(self, name: str):
        """Everything else is the Translator's (``prepare``, ``plan``, ``finish``, ``score``, ...)."""
        if name == "translator":  # not set yet
            raise AttributeError(name)
        return getattr(self.translator, name)

    # the Translator's own attributes, for callers that hold either
    @property
    def bundle(self):
        return self.translator.bundle

    @property
    def languages(self) -> list:
        return self.translator.languages

    @property
    def backend(self):
        return self.translator.backend

    @property
    def backend_name(self) -> str:
        return self.translator.backend_name

    @property
    def device(self) -> str:
        return self.translator.device

    @property
    def threads(self) -> int:
        return self.translator.threads

    def translate(self, lines, src: str, tgt: str, options: DecodeOptions | None = None,
                  batch_tokens: int = EngineOptions.batch_tokens, max_batch_sentences: int | None = None,
                  too_long: str = "skip", first_line_number: int = 1, progress=None,
                  quality: QualityOptions | None = None) -> list[Translation]:
        """One ``Translation`` per line, in order, as ``Translator.translate``; ``quality`` overrides the
        translator's own options for this call."""
        quality = quality or self.quality
        quality.check()
        options = options or DecodeOptions()
        kwargs = dict(batch_tokens=batch_tokens, max_batch_sentences=max_batch_sentences, too_long=too_long,
                      first_line_number=first_line_number)
        pivot = quality.pivot
        if not pivot or pivot in (src, tgt):
            return self._leg(lines, src, tgt, options, quality, dict(kwargs, progress=progress))
        self.translator.bundle.check_language(pivot, "--pivot language")
        self.translator.bundle.check_language(tgt, "target language")
        first = self._leg(lines, src, pivot, options, quality, kwargs)
        second = self._leg([r.text for r in first], pivot, tgt, options, quality, dict(kwargs, progress=progress))
        for before, after in zip(first, second):
            after.pivot = before.text if before.hypotheses else None
            after.warning = before.warning or after.warning
        return second

    def _leg(self, lines, src, tgt, options, quality: QualityOptions, kwargs) -> list[Translation]:
        if not quality.selecting:
            return self.translator.translate(lines, src, tgt, options, **kwargs)
        if options.split_sentences != "never":  # choose sentence by sentence, then join as the Translator does
            self.translator.bundle.check_language(src, "source language")
            cut = sentences.segment_lines(lines, src, options.split_sentences)
            if cut.split_any:
                whole = dataclasses.replace(options, split_sentences="never")
                inner = dict(kwargs, first_line_number=1, progress=None)
                units = self._choose(cut.units, src, tgt, whole, quality, inner)
                first = kwargs.get("first_line_number", 1)
                joined = []
                for i in range(len(lines)):
                    parts = cut.owned(units, i)
                    result = join_sentences(parts, sentences.joiner(tgt), first + i)
                    chosen = [p.hypotheses[0].utility for p in parts if p.hypotheses]
                    if result.hypotheses and chosen and None not in chosen:
                        result.hypotheses[0].utility = sum(chosen) / len(chosen)  # the sentences' mean
                    joined.append(result)
                if kwargs.get("progress") is not None:
                    kwargs["progress"].update(len(lines))
                return joined
        return self._choose(lines, src, tgt, options, quality, kwargs)

    def _choose(self, lines, src, tgt, options, quality: QualityOptions, kwargs) -> list[Translation]:
        """Candidates for each line, best first by ``quality``'s chooser."""
        results = self.translator.translate(lines, src, tgt, quality.candidate_options(options), **kwargs)
        return self.select(lines, results, src, tgt, options, quality)

    def select(self, lines, results: list[Translation], src: str, tgt: str, options: DecodeOptions,
               quality: QualityOptions) -> list[Translation]:
        """``results`` (decoded with ``quality.candidate_options(options)``) with each line's distinct
        candidates ordered by ``quality``'s chooser, best first, at most ``options.nbest`` kept (nmt serve
        decodes the candidates through its batcher, then calls this)."""
        todo = [i for i, r in enumerate(results) if len(r.hypotheses) > 1]
        if not todo:
            return results
        chooser = self.chooser(quality)
        sources = [lines[i] for i in todo]
        candidates = [[h.text for h in results[i].hypotheses] for i in todo]
        n_refs = quality.pseudo_refs or quality.n_candidates
        for i, (utilities, rejected) in zip(todo, chooser.utilities(sources, candidates, n_refs, src, tgt)):
            hypotheses = results[i].hypotheses
            kept = [hypotheses[p] for p in distinct([h.text for h in hypotheses])[1]]
            for hypothesis, utility in zip(kept, utilities):
                hypothesis.utility = utility
            order = sorted(range(len(kept)), key=lambda k: (k in rejected, -utilities[k], k))
            results[i].hypotheses = [kept[k] for k in order][:max(1, options.nbest)]
        return results

    def chooser(self, quality: QualityOptions) -> Chooser:
        """The object that scores candidates for ``quality`` (COMET models are loaded once)."""
        from nmt.translate import rerank

        key = (quality.mbr, quality.rerank, quality.comet_model, quality.comet_encoder, quality.qe_model,
               quality.qe_encoder, quality.comet_batch_size, quality.comet_gpus)
        if key not in self._choosers:
            if quality.mbr in ("chrf", "bleu"):
                chooser = NgramMbr(quality.mbr)
            elif quality.mbr == "comet":
                chooser = rerank.CometMbr(rerank.open_comet(
                    quality.comet_model or DEFAULT_MODEL, quality.comet_encoder, quality.comet_batch_size,
                    quality.comet_gpus, self.mbr_flags, reference_free=False))
            elif quality.rerank == "qe":
                chooser = rerank.QeReranker(rerank.open_comet(
                    quality.qe_model or DEFAULT_QE_MODEL, quality.qe_encoder, quality.comet_batch_size,
                    quality.comet_gpus, QE_FLAGS, reference_free=True))
            else:
                chooser = rerank.BuiltinReranker(self.translator)
            self._choosers[key] = chooser
        return self._choosers[key]

    def describe(self, options: DecodeOptions | None = None, quality: QualityOptions | None = None) -> dict:
        """What quality decoding did, for reports and metadata (loads the chooser's model)."""
        quality = quality or self.quality
        out: dict = {"pivot": quality.pivot}
        if quality.selecting:
            options = options or DecodeOptions()
            if options.sampling:
                how = (f"sampling (top-k {options.sampling_topk}, top-p {options.sampling_topp}, epsilon "
                       f"{options.epsilon}, temperature {options.temperature}, seed {options.seed})")
            else:
                how = f"beam search n-best (beam {max(options.beam, quality.n_candidates)})"
            chooser = self.chooser(quality)
            out.update(mbr=quality.mbr, rerank=quality.rerank, candidates=quality.n_candidates,
                       candidates_from=how, pseudo_refs=(quality.pseudo_refs or quality.n_candidates)
                       if quality.mbr else None, utility=chooser.name, signature=chooser.signature)
        return out

    def close(self) -> None:
        for chooser in self._choosers.values():
            chooser.close()
