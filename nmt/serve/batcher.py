"""Dynamic batching: concurrent requests to one model are merged into one ``Translator.translate`` call.

Requests wait in a bounded queue (counted in lines, so that a few huge requests
cannot build an unbounded backlog). One decoding thread per model takes, after a
short wait window, every queued request with the same direction and decoding
options (up to two rounds of the backend's parallel batches) and translates their lines together:
``Translator.translate`` sorts them by length and cuts CTranslate2 batches exactly
as ``nmt translate`` does for the same lines. Each request then gets back exactly
its own slice of the results, in order.

What merging changes: the output length cap is per batch (fairseq's rule, longest
source of the batch), so a line whose output ran into the cap may come out longer
when it shares a batch with longer lines. Every other output is the one
``nmt translate`` gives for the same batch.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nmt.translate.backends import DecodeOptions, EngineOptions

log = logging.getLogger("nmt.serve")


class Overloaded(Exception):
    """The queue is full, or the server is shutting down: the client should retry later."""


@dataclass
class _Job:
    lines: list
    src: str
    tgt: str
    options: DecodeOptions
    future: asyncio.Future
    key: tuple = field(init=False)
    queued_at: float = field(default_factory=time.perf_counter)

    def __post_init__(self):
        self.key = (self.src, self.tgt, dataclasses.astuple(self.options))


class Batcher:
    def __init__(self, translator, metrics, model_id: str, max_queue_lines: int = 2048,
                 max_merge_lines: int = 256, window_s: float = 0.005,
                 batch_tokens: int = EngineOptions.batch_tokens):
        self.translator = translator
        self.metrics = metrics
        self.model_id = model_id
        self.max_queue_lines = max_queue_lines
        self.max_merge_lines = max_merge_lines
        self.window_s = window_s
        self.batch_tokens = batch_tokens
        self.queue: list[_Job] = []
        self.queued_lines = 0
        self.closed = False
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        # one decoding thread: CTranslate2 runs its own parallel batches inside Translator.translate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nmt-decode-{model_id}")

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued request, then stop the decoding loop."""
        self.closed = True
        while self.queue:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def translate(self, lines: list, src: str, tgt: str, options: DecodeOptions, timeout_s: float):
        """The ``Translation`` of each line, in order. Raises ``Overloaded`` when the queue is full
        and ``TimeoutError`` after ``timeout_s`` (the request's lines are then dropped if not started)."""
        if self.closed:
            raise Overloaded("the server is shutting down")
        if self.queued_lines + len(lines) > self.max_queue_lines:
            raise Overloaded(f"the queue is full ({self.queued_lines} lines waiting)")
        job = _Job(list(lines), src, tgt, options, asyncio.get_running_loop().create_future())
        self.queue.append(job)
        self._set_depth(len(lines))
        self._wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            if job in self.queue:  # not started: drop it
                self.queue.remove(job)
                self._set_depth(-len(job.lines))
            job.future.cancel()
            raise TimeoutError from None

    def _set_depth(self, change: int) -> None:
        self.queued_lines += change
        self.metrics.queue_lines.labels(self.model_id).set(self.queued_lines)

    def _merge_limit(self, options: DecodeOptions) -> int:
        """Lines per merged call: enough to keep every parallel CTranslate2 batch busy (two rounds),
        few enough that requests get their answers after a round, not after the whole queue."""
        backend = self.translator.backend
        per_call = 2 * backend.batch_sentences(options) * backend.parallel
        return max(1, min(self.max_merge_lines, per_call))

    def _take(self) -> list[_Job]:
        """The oldest job and every later job with the same key, up to the merge limit (in lines)."""
        key, limit = self.queue[0].key, self._merge_limit(self.queue[0].options)
        taken, lines = [], 0
        for job in list(self.queue):
            if job.key != key:
                continue
            if taken and lines + len(job.lines) > limit:
                break
            taken.append(job)
            lines += len(job.lines)
            self.queue.remove(job)
        self._set_depth(-lines)
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.window_s and self.queued_lines < self.max_merge_lines:
                await asyncio.sleep(self.window_s)  # let concurrent requests join this batch
            while self.queue:
                jobs = self._take()
                merged = [line for job in jobs for line in job.lines]
                first = jobs[0]
                started = time.perf_counter()
                try:
                    results = await loop.run_in_executor(self._executor, self._decode, merged, first)
                except Exception as exc:  # a bug: fail these requests, keep serving the others
                    log.exception("decoding failed for %d lines", len(merged))
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                self.metrics.batch_lines.labels(self.model_id).observe(len(merged))
                self.metrics.decode_seconds.labels(self.model_id).observe(time.perf_counter() - started)
                offset = 0
                for job in jobs:
                    own = results[offset:offset + len(job.lines)]
                    for number, result in enumerate(own, 1):
                        if result.warning:  # numbered within the merged lines: number within the request
                            result.warning = f"line {number}: " + result.warning.split(": ", 1)[1]
                    if not job.future.done():
                        job.future.set_result(own)
                    offset += len(job.lines)

    def _decode(self, lines: list, job: _Job):
        return self.translator.translate(lines, job.src, job.tgt, job.options, batch_tokens=self.batch_tokens)
