"""``nmt.Translator``: the Python API that ``nmt translate``, evaluation and packaging use.

Line alignment is the contract: ``translate(lines)`` returns exactly one result
per input line, in order. An empty line gives an empty translation; a line the
model cannot take (``None`` for undecodable input, or longer than the model's
maximum source length) gives an empty translation and a warning naming the
line, never an exception that would lose the other lines.
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
from nmt.translate.backends import BACKENDS, Backend, CTranslate2Backend, DecodeOptions, EngineOptions, FairseqBackend
from nmt.vocab import SubwordCodec

log = logging.getLogger("nmt.translate")

TOO_LONG = ("skip", "truncate")  # a line over the model's limit: empty output + warning, or its beginning


@dataclass
class Hypothesis:
    text: str
    score: float
    tokens: list = field(default_factory=list)  # subword pieces


@dataclass
class Translation:
    hypotheses: list  # n-best, best first; empty when the line was skipped
    warning: str | None = None

    @property
    def text(self) -> str:
        return self.hypotheses[0].text if self.hypotheses else ""


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
    backend: Backend

    def __init__(self, model: str | os.PathLike | Bundle, backend: str = "auto", device: str = "cpu",
                 threads: int = 0, checkpoint: str | None = None, quantization: str | None = None,
                 precision: str = "fp32", shortlist: bool = True):
        self.bundle = model if isinstance(model, Bundle) else Bundle.load(model, need_checkpoint=False)
        if backend not in BACKENDS:
            raise NmtError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.device = _resolve_device(device)
        if threads < 0:
            raise NmtError(f"--threads must be >= 0 (0: all cores), got {threads}")
        self.threads = threads or (os.cpu_count() or 1)
        if self.device == "cpu":
            import torch

            torch.set_num_threads(self.threads)
        self.codec = SubwordCodec.for_bundle(self.bundle, threads=self.threads)
        converted = self.bundle.ctranslate2_exports()
        if backend == "auto":
            stale = [q for q, d in converted.items() if not self.bundle.export_is_current(d)]
            if stale and checkpoint is None:
                log.warning("CTranslate2 export(s) %s are older than %s: using fairseq; re-run nmt export",
                            ", ".join(stale), self.bundle.checkpoint)
            fresh = {q: d for q, d in converted.items() if q not in stale}
            backend = "ctranslate2" if fresh and checkpoint is None else "fairseq"
            converted = fresh or converted
        if backend == "ctranslate2":
            if not converted:
                raise NmtError(f"bundle {self.bundle.path} has no CTranslate2 model; run "
                               f"nmt export --model {self.bundle.path} --format ctranslate2 first")
            if checkpoint is not None:
                raise NmtError("--checkpoint picks a fairseq checkpoint: use it with --backend fairseq "
                               "(a CTranslate2 export is made from the bundle's own checkpoint)")
            if quantization is None:
                quantization = next(iter(converted))
            if quantization not in converted:
                raise NmtError(f"no CTranslate2 export with quantization {quantization}; "
                               f"available: {', '.join(converted)}")
            if not self.bundle.export_is_current(converted[quantization]):
                raise NmtError(f"the CTranslate2 export {converted[quantization].name} was made from another "
                               f"checkpoint than {self.bundle.checkpoint}; re-run nmt export --force")
            # "default": CTranslate2 runs the export's type, or the nearest one the device supports
            # (an int8_float16 export still runs on a CPU)
            self.backend = CTranslate2Backend(self.bundle, converted[quantization], self.codec, self.device,
                                              self.threads, compute_type="default", shortlist=shortlist)
        else:
            ckpt = Path(checkpoint) if checkpoint else self.bundle.checkpoint_path
            if not ckpt.is_file():
                raise NmtError(f"missing checkpoint {ckpt}")
            self.backend = FairseqBackend(self.bundle, ckpt, self.device, precision)
        self.backend_name = self.backend.name

    @classmethod
    def from_backend(cls, bundle: Bundle, backend: Backend, codec: SubwordCodec) -> "Translator":
        """Wrap an existing backend (used for validation during training)."""
        self = cls.__new__(cls)
        self.bundle, self.backend, self.codec = bundle, backend, codec
        self.backend_name = backend.name
        self.device, self.threads = "cpu", 1
        return self

    @property
    def languages(self) -> list:
        return list(self.bundle.languages)

    def translate(self, lines: Sequence[str | None], src: str, tgt: str, options: DecodeOptions | None = None,
                  batch_tokens: int = EngineOptions.batch_tokens, max_batch_sentences: int | None = None,
                  too_long: str = "skip",
                  first_line_number: int = 1, progress=None) -> list[Translation]:
        """Translate ``lines`` from ``src`` to ``tgt``; one ``Translation`` per line, in order.

        Batches hold up to ``batch_tokens`` source tokens (padded) and ``max_batch_sentences``
        lines (default: the backend's own: 128 for fairseq; for CTranslate2 on CPU, fewer the
        wider the model and the beam, e.g. 2 for transformer-base at beam 5). The output
        length cap is per batch, as in fairseq, so the two backends give identical greedy
        float32 output when they are given the same batching."""
        options = options or DecodeOptions()
        options.check()
        if too_long not in TOO_LONG:
            raise NmtError(f"--too-long must be one of {', '.join(TOO_LONG)}, not {too_long!r}")
        if batch_tokens < 1 or (max_batch_sentences is not None and max_batch_sentences < 1):
            raise NmtError(f"--batch-tokens must be >= 1 (got {batch_tokens}) and --batch-sentences >= 1 or "
                           f"unset (got {max_batch_sentences})")
        self.bundle.check_language(src, "source language")
        self.bundle.check_language(tgt, "target language")
        results: list[Translation | None] = [None] * len(lines)
        work: list[tuple[int, list[int]]] = []
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
        limit = self.backend.max_source_tokens()
        for i, ids in zip(positions, self.codec.encode(texts)):
            if len(ids) > limit:
                if too_long == "truncate":
                    ids = ids[:limit]
                else:
                    results[i] = Translation([], f"line {first_line_number + i}: {len(ids)} subword tokens, more "
                                                 f"than the model's limit of {limit}; output left empty")
                    continue
            work.append((i, ids))
        work.sort(key=lambda item: len(item[1]))
        batches = list(_batches(work, batch_tokens, max_batch_sentences or self.backend.batch_sentences(options)))
        outputs_per_batch = self.backend.generate_many([[ids for _, ids in b] for b in batches], src, tgt, options)
        for batch, outputs in zip(batches, outputs_per_batch):
            for (i, _), hyps in zip(batch, outputs):
                results[i] = Translation([Hypothesis(one_line(self.codec.decode(ids)), score,
                                                     self.codec.ids_to_pieces(self.codec.output_ids(ids)))
                                          for ids, score in hyps])
            if progress is not None:
                progress.update(len(batch))
        return results  # type: ignore[return-value]

    def translate_text(self, lines: Iterable[str], src: str, tgt: str, **kwargs) -> list[str]:
        """Convenience: plain strings in, best translations out."""
        return [t.text for t in self.translate(list(lines), src, tgt, **kwargs)]


def _batches(work, batch_tokens: int, max_sentences: int):
    batch, width = [], 0
    for item in work:
        new_width = max(width, len(item[1]) + 2)
        if batch and (new_width * (len(batch) + 1) > batch_tokens or len(batch) >= max_sentences):
            yield batch
            batch, new_width = [], len(item[1]) + 2
        batch.append(item)
        width = new_width
    if batch:
        yield batch
