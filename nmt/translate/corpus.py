"""Corpus-scale translation: millions of lines, line-aligned, resumable, split across machines.

``nmt translate-corpus`` cuts the input into chunks of ``chunk_lines`` lines (chunk k
holds lines ``k*L .. k*L+L-1``) and translates each chunk into its own file in a work
directory (default ``OUTPUT.parts/``)::

    job.json             what is translated: the input's size and SHA-256, the model
                         (vocabulary hashes, the engine ``auto`` resolves to: backend,
                         quantization, SHA-256 of the checkpoint or of every file of the
                         export), languages and decoding options, the chunk size
    chunk-000042.txt     translations of chunk 42, one line per input line
    chunk-000042.scores  the best hypothesis' score per line (with --scores)

A chunk file appears, by rename, only when complete, so a SIGKILL loses at most the
chunks in flight and a rerun of the same command does only what is missing. A chunk's
output depends on nothing but its lines and the job's settings, so the result of an
interrupted and resumed run is identical to an uninterrupted one.

``--shard i/N`` takes the chunks k with ``k % N == i-1``: N machines (or a job array)
sharing one work directory, or copying their parts into one, split the corpus evenly.
When every chunk is there, the output (and ``OUTPUT.scores``) is assembled in chunk
order, deterministically; ``--merge-only`` does just that.

Memory is bounded by the chunk size times the chunks in flight (two per worker), never
by the corpus. ``--workers N`` runs N processes, each with its own model and
``threads / N`` CPU threads, or, with ``--device cuda``, one process per GPU.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fileio import (atomic_open, check_input_file, count_lines, refuse_same_file, sha256_file,
                        write_json)
from nmt.locks import OutputLock
from nmt.translate.backends import DecodeOptions
from nmt.translate.options import QualityOptions
from nmt.translate.stream import decode_line
from nmt.workers import worker_pool

log = logging.getLogger("nmt.translate.corpus")

JOB_VERSION = 2  # 2: the resolved engine and its files' hashes


@dataclass
class CorpusJob:
    """Everything that decides the translations; a work directory holds exactly one job."""

    model: str
    src: str
    tgt: str
    input: str
    chunk_lines: int = 50_000
    options: DecodeOptions = field(default_factory=DecodeOptions)
    batch_tokens: int = 4000
    batch_sentences: int | None = None
    too_long: str = "skip"
    backend: str = "auto"
    quantization: str | None = None
    shortlist: bool = True
    scores: bool = False
    quality: QualityOptions = field(default_factory=QualityOptions)  # MBR, reranking, pivoting

    def check(self) -> None:
        self.options.check()
        self.quality.check()
        if self.chunk_lines < 1:
            raise NmtError(f"--chunk-lines must be >= 1, got {self.chunk_lines}")
        check_input_file(self.input)

    def identity(self, bundle: Bundle) -> dict:
        """The job as recorded in job.json: the input and the model by content (the engine that ``auto``
        resolves to, so that a resume after an export was added or removed, or after the checkpoint
        was retrained, is refused instead of mixing two models), the settings by value."""
        from nmt.translate.translator import resolve_engine

        stat = os.stat(self.input)
        engine = resolve_engine(bundle, self.backend, self.quantization)
        root = engine.path if engine.path.is_dir() else engine.path.parent
        return {
            "version": JOB_VERSION,
            "input": {"size": stat.st_size, "sha256": sha256_file(self.input)},
            "model": {"vocabulary": bundle.hashes, "checkpoint": bundle.checkpoint, "backend": engine.backend,
                      "quantization": engine.quantization,
                      "files": {str(p.relative_to(root)): sha256_file(p) for p in engine.files()}},
            "src": self.src, "tgt": self.tgt, "chunk_lines": self.chunk_lines,
            "options": _recorded_options(self.options), "batch_tokens": self.batch_tokens,
            "batch_sentences": self.batch_sentences, "too_long": self.too_long, "backend": self.backend,
            "quantization": self.quantization, "shortlist": self.shortlist, "scores": self.scores,
            # recorded only when used, so that the work directories of earlier jobs stay valid
            **({"quality": asdict(self.quality)} if self.quality.active else {}),
        }


# decoding options added after JOB_VERSION 1: recorded only when set, so that earlier work directories resume
_LATER_OPTIONS = {"sampling_topp": DecodeOptions.sampling_topp, "epsilon": DecodeOptions.epsilon}


def _recorded_options(options: DecodeOptions) -> dict:
    return {k: v for k, v in asdict(options).items() if k not in _LATER_OPTIONS or v != _LATER_OPTIONS[k]}


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4), 1-based."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise NmtError(f"--shard must look like i/N with 1 <= i <= N (e.g. 2/4), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def chunk_file(work: Path, index: int, suffix: str = "txt") -> Path:
    return work / f"chunk-{index:06d}.{suffix}"


def translate_corpus(job: CorpusJob, output: str, work: str | None = None, shard: str = "1/1", workers: int = 1,
                     device: str = "cpu", threads: int = 0, merge_only: bool = False, restart: bool = False) -> dict:
    """Translate (or resume) ``job`` into ``output``; returns a summary of what was done."""
    job.check()
    for path in (output, f"{output}.scores"):
        refuse_same_file(job.input, path)
    shard_i, shard_n = parse_shard(shard)
    if workers < 1:
        raise NmtError(f"--workers must be >= 1, got {workers}")
    bundle = Bundle.load(job.model, need_checkpoint=False)
    bundle.check_language(job.src, "source language")
    bundle.check_language(job.tgt, "target language")
    if job.quality.pivot:
        bundle.check_language(job.quality.pivot, "--pivot language")
    work_dir = Path(work) if work else Path(f"{output}.parts")
    if work_dir.exists() and not work_dir.is_dir():
        raise NmtError(f"work directory {work_dir} is a file; give a directory with --work")
    work_dir.mkdir(parents=True, exist_ok=True)
    lock_name = OutputLock.NAME if shard_n == 1 else f"{OutputLock.NAME}.shard{shard_i}of{shard_n}"
    # shards of one job may run side by side in one work directory; one process per shard
    with OutputLock(work_dir, f"nmt translate-corpus --shard {shard_i}/{shard_n}", name=lock_name):
        identity = job.identity(bundle)
        _check_job(work_dir, identity, restart)
        total = count_lines(job.input)
        n_chunks = (total + job.chunk_lines - 1) // job.chunk_lines
        mine = [k for k in range(n_chunks) if k % shard_n == shard_i - 1]
        todo = [k for k in mine if not _chunk_done(work_dir, k, _chunk_size(k, total, job.chunk_lines), job.scores)]
        summary = {"lines": total, "chunks": n_chunks, "shard": f"{shard_i}/{shard_n}", "chunks_in_shard": len(mine),
                   "chunks_done_before": len(mine) - len(todo), "chunks_translated": 0, "merged": False}
        if todo and not merge_only:
            summary["chunks_translated"] = _run_chunks(job, work_dir, todo, total, workers, device, threads)
        missing = [k for k in range(n_chunks)
                   if not _chunk_done(work_dir, k, _chunk_size(k, total, job.chunk_lines), job.scores)]
        if missing:
            if merge_only or shard_n == 1:
                raise NmtError(f"{len(missing)} of {n_chunks} chunks are not translated yet (first: chunk "
                               f"{missing[0]}); run every shard, then --merge-only")
            log.info("shard %d/%d done; %d chunks of other shards are still missing, so %s is not assembled yet",
                     shard_i, shard_n, len(missing), output)
            return summary
        _merge(work_dir, n_chunks, output, job.scores)
        summary["merged"] = True
        return summary


def _check_job(work_dir: Path, identity: dict, restart: bool) -> None:
    record = work_dir / "job.json"
    if record.is_file() and not restart:
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old != identity:
            differ = sorted(k for k in identity if not isinstance(old, dict) or old.get(k) != identity[k])
            raise NmtError(f"{work_dir} holds the parts of another job (different: {', '.join(differ) or 'format'}); "
                           "pass --restart to discard them, or choose another --work directory")
        return
    for stale in list(work_dir.glob("chunk-*")):
        stale.unlink()
    write_json(record, identity)


def _chunk_size(index: int, total: int, chunk_lines: int) -> int:
    return min(chunk_lines, total - index * chunk_lines)


def _chunk_done(work_dir: Path, index: int, expected: int, scores: bool) -> bool:
    files = [chunk_file(work_dir, index)] + ([chunk_file(work_dir, index, "scores")] if scores else [])
    return all(f.is_file() and count_lines(f) == expected for f in files)


def _read_chunks(path: str, chunk_lines: int, wanted: set):
    """Yield (index, lines) for the wanted chunks, reading the file once, front to back; the
    other chunks' lines are skipped undecoded."""
    lines: list = []
    index = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle):
            index = number // chunk_lines
            if index not in wanted:
                continue
            lines.append(decode_line(raw))
            if len(lines) == chunk_lines:
                yield index, lines
                lines = []
    if lines:
        yield index, lines


# --------------------------------------------------------------------------- workers

_translator = None


def _load_model(job: CorpusJob, device: str, threads: int, gpu_queue) -> None:
    """Pool initializer: one model per worker process (one GPU each with --device cuda)."""
    global _translator
    if device == "cuda" and gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    from nmt.translate.quality import QualityTranslator
    from nmt.translate.translator import Translator

    _translator = QualityTranslator(Translator(job.model, backend=job.backend, device=device, threads=threads,
                                               quantization=job.quantization, shortlist=job.shortlist), job.quality)


def _translate_chunk(job: CorpusJob, work_dir: Path, index: int, lines: list) -> int:
    results = _translator.translate(lines, job.src, job.tgt, job.options, batch_tokens=job.batch_tokens,
                                    max_batch_sentences=job.batch_sentences, too_long=job.too_long,
                                    first_line_number=index * job.chunk_lines + 1)
    for result in results:
        if result.warning:
            print(f"nmt: warning: {result.warning}", file=sys.stderr)
    with atomic_open(chunk_file(work_dir, index)) as out:
        out.write("".join(r.text + "\n" for r in results))  # one line each (see Translator.translate)
    if job.scores:
        with atomic_open(chunk_file(work_dir, index, "scores")) as out:
            out.write("".join((f"{r.hypotheses[0].score:.6f}" if r.hypotheses else "") + "\n" for r in results))
    return len(lines)


def _run_chunks(job: CorpusJob, work_dir: Path, todo: list, total: int, workers: int, device: str,
                threads: int) -> int:
    threads = threads or (os.cpu_count() or 1)
    per_worker = max(1, threads // workers) if device == "cpu" else 0
    progress = _Progress(sum(_chunk_size(k, total, job.chunk_lines) for k in todo))
    chunks = _read_chunks(job.input, job.chunk_lines, set(todo))
    done = 0
    if workers == 1:  # in this process
        _load_model(job, device, per_worker, None)
        for index, lines in chunks:
            progress.update(_translate_chunk(job, work_dir, index, lines))
            done += 1
        progress.finish()
        return done
    gpu_queue = None
    context = multiprocessing.get_context("spawn")
    if device == "cuda":
        gpu_queue = context.Queue()
        for gpu in range(workers):
            gpu_queue.put(gpu)
    with worker_pool(workers, initializer=_load_model, initargs=(job, device, per_worker, gpu_queue),
                     start_method="spawn") as pool:
        pending: deque = deque()
        for index, lines in chunks:
            pending.append(pool.submit(_translate_chunk, job, work_dir, index, lines))
            while len(pending) >= 2 * workers:  # bounded memory: at most two chunks per worker in flight
                progress.update(pending.popleft().result())
                done += 1
        while pending:
            progress.update(pending.popleft().result())
            done += 1
    progress.finish()
    return done


class _Progress:
    """``translate-corpus: 120,000/1,000,000 lines (12.0%) | 850 lines/s | ETA 17m15s`` on stderr."""

    def __init__(self, total: int, every: float = 10.0):
        self.total, self.every = total, every
        self.done, self.start, self.last = 0, time.time(), 0.0

    def update(self, lines: int) -> None:
        self.done += lines
        now = time.time()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(f"translate-corpus: {self.done:,}/{self.total:,} lines ({100 * self.done / max(self.total, 1):.1f}%)"
                  f" | {rate:,.0f} lines/s | ETA {_duration(eta)}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        elapsed = time.time() - self.start
        log.info("translated %d lines in %.1f s (%.0f lines/s)", self.done, elapsed, self.done / max(elapsed, 1e-9))


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


# --------------------------------------------------------------------------- merge

def _merge(work_dir: Path, n_chunks: int, output: str, scores: bool) -> None:
    targets = [("txt", output)] + ([("scores", f"{output}.scores")] if scores else [])
    for suffix, path in targets:
        with atomic_open(path, "wb") as out:
            for index in range(n_chunks):
                with open(chunk_file(work_dir, index, suffix), "rb") as part:
                    while block := part.read(1 << 20):
                        out.write(block)
