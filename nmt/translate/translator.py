"""``nmt.Translator``: the Python API that ``nmt translate``, evaluation and packaging use.

Line alignment is the contract: ``translate(lines)`` returns exactly one result
per input line, in order. An empty line gives an empty translation; a line the
model cannot take (``None`` for undecodable input, or longer than the model's
maximum source length) gives an empty translation and a warning naming the
line, never an exception that would lose the other lines. Lines with several
sentences are split, translated sentence by sentence and joined back, as
``options.split_sentences`` says (``nmt.translate.sentences``).

Input gets what the training text got: the bundle's normalization and, for a
language the model was trained on romanized (``nmt prepare --romanize``), uroman
(``nmt.romanize``), so a user types the native script (or Latin letters).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fileio import one_line
from nmt.romanize import Romanization, romanize_lines
from nmt.translate import sentences
from nmt.translate.backends import CTranslate2Backend, DecodeOptions, FairseqBackend
from nmt.vocab import SubwordCodec

log = logging.getLogger("nmt.translate")

BACKENDS = ("auto", "fairseq", "ctranslate2")
MAX_THREADS_PER_CORE = 4


@dataclass
class Hypothesis:
    text: str
    score: float
    tokens: list = field(default_factory=list)  # subword pieces
    utility: float | None = None  # quality decoding: what the hypothesis was chosen by (MBR / reranking)


@dataclass
class Translation:
    hypotheses: list  # n-best, best first; empty when the line was skipped
    warning: str | None = None
    pivot: str | None = None  # pivot translation: the text in the pivot language

    @property
    def text(self) -> str:
        return self.hypotheses[0].text if self.hypotheses else ""


@dataclass(frozen=True)
class Engine:
    """What a ``Translator`` loads: the backend, the CTranslate2 quantization (None for fairseq) and the
    checkpoint file or export directory."""

    backend: str
    quantization: str | None
    path: Path

    def files(self) -> list[Path]:
        """The files whose content decides the translations (the checkpoint, or every file of the export)."""
        return sorted(p for p in self.path.rglob("*") if p.is_file()) if self.path.is_dir() else [self.path]


def resolve_engine(bundle: Bundle, backend: str = "auto", quantization: str | None = None,
                   checkpoint: str | None = None) -> Engine:
    """The engine ``Translator(bundle, backend, quantization=..., checkpoint=...)`` loads, without loading it:
    ``auto`` is CTranslate2 when a current export exists, else fairseq."""
    if backend not in BACKENDS:
        raise NmtError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    converted = bundle.ctranslate2_exports()
    if backend == "auto":
        stale = [q for q, d in converted.items() if not bundle.export_is_current(d)]
        if stale and checkpoint is None:
            log.warning("CTranslate2 export(s) %s are older than %s: using fairseq; re-run nmt export",
                        ", ".join(stale), bundle.checkpoint)
        fresh = {q: d for q, d in converted.items() if q not in stale}
        backend = "ctranslate2" if fresh and checkpoint is None else "fairseq"
        converted = fresh or converted
    if backend == "ctranslate2":
        if not converted:
            raise NmtError(f"bundle {bundle.path} has no CTranslate2 model; run "
                           f"nmt export --model {bundle.path} --format ctranslate2 first")
        if checkpoint is not None:
            raise NmtError("--checkpoint picks a fairseq checkpoint: use it with --backend fairseq "
                           "(a CTranslate2 export is made from the bundle's own checkpoint)")
        if quantization is None:
            quantization = next(iter(converted))
        if quantization not in converted:
            raise NmtError(f"no CTranslate2 export with quantization {quantization}; "
                           f"available: {', '.join(converted)}")
        if not bundle.export_is_current(converted[quantization]):
            raise NmtError(f"the CTranslate2 export {converted[quantization].name} was made from another "
                           f"checkpoint than {bundle.checkpoint}; re-run nmt export --force")
        return Engine("ctranslate2", quantization, Path(converted[quantization]))
    ckpt = Path(checkpoint) if checkpoint else bundle.checkpoint_path
    if not ckpt.is_file():
        raise NmtError(f"missing checkpoint {ckpt}")
    return Engine("fairseq", None, ckpt)


def check_threads(threads: int) -> None:
    """0 (all cores) up to ``MAX_THREADS_PER_CORE`` threads per core: more only slows decoding down, and
    far more (100,000) crashes the thread pools of CTranslate2 and torch."""
    limit = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
    if not 0 <= threads <= limit:
        raise NmtError(f"--threads must be between 0 (all cores) and {limit} ({MAX_THREADS_PER_CORE} per core of "
                       f"this machine), got {threads}")


def _resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise NmtError("--device cuda: no CUDA GPU is visible; use --device cpu")
    return device


class Translator:
    def __init__(self, model: str | os.PathLike | Bundle, backend: str = "auto", device: str = "cpu",
                 threads: int = 0, checkpoint: str | None = None, quantization: str | None = None,
                 precision: str = "fp32", shortlist: bool = True):
        self.bundle = model if isinstance(model, Bundle) else Bundle.load(model, need_checkpoint=False)
        if backend not in BACKENDS:
            raise NmtError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.requested_backend = backend
        self.device = _resolve_device(device)
        check_threads(threads)
        self.threads = threads or (os.cpu_count() or 1)
        if self.device == "cpu":
            import torch

            torch.set_num_threads(self.threads)
        self.codec = SubwordCodec.for_bundle(self.bundle, threads=self.threads)
        self.romanization = self.bundle.romanized
        if self.romanization:
            self.romanization.warn_if_other_romanizer(f"model {self.bundle.path}")
        self._announced: set = set()
        engine = resolve_engine(self.bundle, backend, quantization, checkpoint)
        if engine.backend == "ctranslate2":
            # "default": CTranslate2 runs the export's type, or the nearest one the device supports
            # (an int8_float16 export still runs on a CPU)
            self.backend = CTranslate2Backend(self.bundle, engine.path, self.codec, self.device,
                                              self.threads, compute_type="default", shortlist=shortlist)
        else:
            self.backend = FairseqBackend(self.bundle, engine.path, self.device, precision)
        self.engine = engine
        self.backend_name = self.backend.name
        self._fallback = None  # the fairseq backend, for options the chosen backend cannot decode with
        self._precision = precision

    @classmethod
    def from_backend(cls, bundle: Bundle, backend, codec: SubwordCodec) -> "Translator":
        """Wrap an existing backend (used for validation during training, on prepared text: that text is
        romanized already, so this translator romanizes nothing)."""
        self = cls.__new__(cls)
        self.bundle, self.backend, self.codec = bundle, backend, codec
        self.backend_name = backend.name
        self.device, self.threads = "cpu", 1
        self.romanization, self._announced = Romanization(), set()
        self.requested_backend, self._fallback, self._precision = backend.name, None, "fp32"
        return self

    def romanizes(self, src: str, tgt: str) -> dict:
        """What this model romanizes for a direction: ``{"source": bool, "output": bool}`` (for metadata)."""
        return {"source": self.romanization.source(src), "output": self.romanization.output(tgt)}

    def _source_text(self, texts: list[str], src: str, tgt: str) -> list[str]:
        """The model's input: romanized when it was trained on romanized ``src`` (said once per direction)."""
        if not texts or not self.romanization.source(src):
            return texts
        if (src, tgt) not in self._announced:
            self._announced.add((src, tgt))
            log.info("%s input is romanized with %s, as the model was trained on romanized %s%s", src,
                     self.romanization.romanizer, src,
                     f"; its {tgt} output is romanized too" if self.romanization.output(tgt) else "")
        return romanize_lines(texts, src)

    def backend_for(self, options: DecodeOptions):
        """The backend that decodes with ``options``: the chosen one, or, when it cannot (CTranslate2 has
        no epsilon sampling) and the backend was left to ``auto``, the bundle's fairseq checkpoint."""
        why = self.backend.supports(options)
        if why is None:
            return self.backend
        if self.requested_backend != "auto":
            raise NmtError(f"{why}: use --backend fairseq (or auto)")
        if self._fallback is None:
            checkpoint = self.bundle.checkpoint_path
            if not checkpoint.is_file():
                raise NmtError(f"{why}, and the bundle has no fairseq checkpoint ({checkpoint}) to fall back to")
            log.info("%s: decoding with the fairseq checkpoint instead", why)
            self._fallback = FairseqBackend(self.bundle, checkpoint, self.device, self._precision)
        return self._fallback

    def score(self, sources: Sequence[str], targets: Sequence[str], src: str, tgt: str,
              batch_sentences: int = 32) -> list[float]:
        """Forced decoding: the model's mean log-probability per token of each ``targets[i]`` (in ``tgt``)
        given ``sources[i]`` (in ``src``); lines too long for the model are cut to its limit."""
        self.bundle.check_language(src, "source language")
        self.bundle.check_language(tgt, "target language")
        limit = self.backend.max_source_tokens()
        sources = self._source_text(list(sources), src, tgt)  # as the model reads them
        src_ids = [ids[:limit] for ids in self.codec.encode([self.codec.normalize(t) for t in sources])]
        tgt_ids = [ids[:limit] for ids in self.codec.encode([self.codec.normalize(t) for t in targets])]
        out: list[float] = []
        for start in range(0, len(src_ids), batch_sentences):
            out += self.backend.score(src_ids[start:start + batch_sentences], tgt_ids[start:start + batch_sentences],
                                      src, tgt)
        return out

    @property
    def languages(self) -> list:
        return list(self.bundle.languages)

    def translate(self, lines: Sequence[str | None], src: str, tgt: str, options: DecodeOptions | None = None,
                  batch_tokens: int = 4000, max_batch_sentences: int | None = None, too_long: str = "skip",
                  first_line_number: int = 1, progress=None) -> list[Translation]:
        """Translate ``lines`` from ``src`` to ``tgt``; one ``Translation`` per line, in order.

        Batches hold up to ``batch_tokens`` source tokens (padded) and ``max_batch_sentences``
        lines (default: the backend's own: 128 for fairseq; for CTranslate2 on CPU, fewer the
        wider the model and the beam, e.g. 2 for transformer-base at beam 5), and only lines of
        one output length cap (``DecodeOptions.max_len``: per sentence), so a line's translation
        does not depend on the other lines: ``nmt translate``, ``translate-corpus`` and
        ``nmt serve`` agree, and the two backends give identical greedy float32 output. With
        ``options.split_sentences`` other than ``never``, the units batched are the lines' sentences."""
        options = options or DecodeOptions()
        self.check_request(src, tgt, options)
        kwargs = dict(batch_tokens=batch_tokens, max_batch_sentences=max_batch_sentences, too_long=too_long)
        if options.split_sentences != "never":
            cut = sentences.segment_lines(lines, src, options.split_sentences)
            if cut.split_any:
                units = self._translate(cut.units, src, tgt, options, first_line_number=1, progress=None, **kwargs)
                joiner = " " if self.romanization.output(tgt) else sentences.joiner(tgt)  # Latin output: spaced
                joined = [join_sentences(cut.owned(units, i), joiner, first_line_number + i) for i in range(len(lines))]
                if progress is not None:
                    progress.update(len(lines))
                return joined
        return self._translate(lines, src, tgt, options, first_line_number=first_line_number, progress=progress,
                               **kwargs)

    def _translate(self, lines, src, tgt, options: DecodeOptions, batch_tokens: int, max_batch_sentences,
                   too_long: str, first_line_number: int, progress) -> list[Translation]:
        if batch_tokens < 1 or (max_batch_sentences is not None and max_batch_sentences < 1):
            raise NmtError(f"--batch-tokens must be >= 1 (got {batch_tokens}) and --batch-sentences >= 1 or "
                           f"unset (got {max_batch_sentences})")
        results, work = self.prepare(lines, src, tgt, too_long, first_line_number)
        batches = self.plan(work, options, batch_tokens, max_batch_sentences)
        backend = self.backend_for(options)
        outputs_per_batch = backend.generate_many([[ids for _, ids in b] for b in batches], src, tgt, options)
        for batch, outputs in zip(batches, outputs_per_batch):
            for (i, _), hyps in zip(batch, outputs):
                results[i] = self.finish(hyps)
            if progress is not None:
                progress.update(len(batch))
        return results  # type: ignore[return-value]

    # The steps of translate(), for callers that schedule batches themselves (nmt serve's batcher).

    def check_request(self, src: str, tgt: str, options: DecodeOptions) -> None:
        options.check()
        self.bundle.check_language(src, "source language")
        self.bundle.check_language(tgt, "target language")

    def prepare(self, lines: Sequence[str | None], src: str, tgt: str, too_long: str = "skip",
                first_line_number: int = 1):
        """Normalise (and romanize, for a model trained on romanized ``src``) and encode ``lines``: (results
        with a ``Translation`` for every line that is not decoded (empty, undecodable, too long: with a
        warning), [(position, dictionary ids)] to decode)."""
        results: list[Translation | None] = [None] * len(lines)
        texts, positions = [], []
        for i, line in enumerate(lines):
            if line is None:
                results[i] = Translation([], f"line {first_line_number + i}: not valid UTF-8, output left empty")
                continue
            text = self.codec.normalize(line)
            if not text:
                results[i] = Translation([])
                continue
            texts.append(text)
            positions.append(i)
        texts = self._source_text(texts, src, tgt)
        for i in [i for i, text in zip(positions, texts) if not text]:  # nothing left once romanized
            results[i] = Translation([])
        positions, texts = [i for i, t in zip(positions, texts) if t], [t for t in texts if t]
        limit = self.backend.max_source_tokens()
        work: list[tuple[int, list[int]]] = []
        for i, ids in zip(positions, self.codec.encode(texts)):
            if len(ids) > limit:
                if too_long == "truncate":
                    ids = ids[:limit]
                else:
                    results[i] = Translation([], f"line {first_line_number + i}: {len(ids)} subword tokens, more "
                                                 f"than the model's limit of {limit}; output left empty")
                    continue
            work.append((i, ids))
        return results, work

    def plan(self, work: list, options: DecodeOptions, batch_tokens: int = 4000,
             max_batch_sentences: int | None = None) -> list[list]:
        """``work`` items ``(key, ids)`` cut into batches: sorted by output cap and length, at most
        ``batch_tokens`` padded tokens and ``max_batch_sentences`` items, one cap per batch."""
        backend = self.backend_for(options)
        cap = backend.output_cap
        ordered = sorted(work, key=lambda item: (cap(len(item[1]), options), len(item[1])))
        limit = max_batch_sentences or backend.batch_sentences(options)
        return list(_batches(ordered, batch_tokens, limit, lambda ids: cap(len(ids), options)))

    def finish(self, hyps) -> Translation:
        """The ``Translation`` of one line from its backend n-best list ``[(ids, score)]``."""
        # stripped: a weak model's output can end in space pieces (whitespace around a translation means nothing)
        return Translation([Hypothesis(one_line(self.codec.decode(ids)).strip(), score,
                                       self.codec.ids_to_pieces(self.codec.output_ids(ids)))
                            for ids, score in hyps])

    def translate_text(self, lines: Iterable[str], src: str, tgt: str, **kwargs) -> list[str]:
        """Convenience: plain strings in, best translations out."""
        return [t.text for t in self.translate(list(lines), src, tgt, **kwargs)]


def join_sentences(parts: list[Translation], separator: str, line_number: int) -> Translation:
    """One line's translation from its sentences': the k-th hypothesis joins every sentence's k-th
    (or last), its score is the token-weighted mean of theirs; warnings name the line and sentence."""
    notes = [f"line {line_number}: sentence {k}: {p.warning.split(': ', 1)[-1]}"
             for k, p in enumerate(parts, 1) if p.warning]
    if len(parts) == 1:
        notes = [f"line {line_number}: {parts[0].warning.split(': ', 1)[-1]}"] if parts[0].warning else []
    done = [p for p in parts if p.hypotheses]
    hypotheses = []
    for k in range(max((len(p.hypotheses) for p in done), default=0)):
        picked = [p.hypotheses[min(k, len(p.hypotheses) - 1)] for p in done]
        weights = [max(1, len(h.tokens)) for h in picked]
        hypotheses.append(Hypothesis(separator.join(h.text for h in picked if h.text),
                                     sum(h.score * w for h, w in zip(picked, weights)) / sum(weights),
                                     [t for h in picked for t in h.tokens]))
    return Translation(hypotheses, "; ".join(notes) or None)


def _batches(work, batch_tokens: int, max_sentences: int, cap_of):
    batch, width, cap = [], 0, None
    for item in work:
        new_width = max(width, len(item[1]) + 2)
        item_cap = cap_of(item[1])
        if batch and (new_width * (len(batch) + 1) > batch_tokens or len(batch) >= max_sentences
                      or item_cap != cap):
            yield batch
            batch, new_width = [], len(item[1]) + 2
        batch.append(item)
        width, cap = new_width, item_cap
    if batch:
        yield batch
