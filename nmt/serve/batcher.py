"""Dynamic batching: the lines of concurrent requests to one model share decoding batches.

A request's lines are normalised and encoded when it arrives (``Translator.prepare``)
and wait, line by line, in a pending list bounded in lines (a few huge requests
cannot build an unbounded backlog). The scheduler keeps every decoding worker of
the backend busy (CTranslate2 decodes ``parallel`` batches at once; one thread each
here): whenever a worker is free it cuts the pending lines that share the oldest
line's direction and decoding options into batches exactly as ``nmt translate``
does (``Translator.plan``: sorted by output cap and length, one cap per batch) and
starts the batch holding the oldest line. Lines that arrive meanwhile join the
next batches, so merged work is spread over all workers instead of one.

A line's translation depends only on the line and the options (the output length
cap is per sentence), so it is the one ``nmt translate`` gives, whatever it was
batched with. A request whose deadline passed or whose client went away is
cancelled: its lines that have not started are dropped (a batch already decoding
runs to its end, its results for that request are discarded). A request is refused
at once (``Overloaded``) when the queue is full, or when the work queued ahead of it
would, at the measured decoding speed, not finish within the timeout. A batch
that fails is retried request by request, so one request's failure fails no other.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nmt.translate.backends import DecodeOptions

log = logging.getLogger("nmt.serve")


class Overloaded(Exception):
    """The queue is full, the work ahead cannot finish in time, or the server is shutting down."""

    def __init__(self, message: str, retry_after: int = 1, reason: str = "overloaded"):
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


class Cancelled(Exception):
    """The client went away before its translation was ready."""


@dataclass(eq=False)
class _Job:
    results: list  # one Translation per line; None until decoded
    src: str
    tgt: str
    options: DecodeOptions
    future: asyncio.Future
    deadline: float
    tokens: int = 0
    left: int = 0  # lines still to decode
    key: tuple = field(init=False)

    def __post_init__(self):
        self.key = (self.src, self.tgt, dataclasses.astuple(self.options))

    @property
    def live(self) -> bool:
        return not self.future.done() and time.monotonic() < self.deadline


@dataclass(eq=False)
class _Line:
    job: _Job
    position: int
    ids: list


class Batcher:
    def __init__(self, translator, metrics, model_id: str, max_queue_lines: int = 2048, window_s: float = 0.005,
                 batch_tokens: int = 4000):
        self.translator = translator
        self.metrics = metrics
        self.model_id = model_id
        self.max_queue_lines = max_queue_lines
        self.window_s = window_s
        self.batch_tokens = batch_tokens
        self.parallel = max(1, translator.backend.parallel)
        self.pending: list[_Line] = []
        self.running = 0  # batches decoding now
        self.tokens_per_s: float | None = None  # measured decoding speed of the whole backend
        self.closed = False
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix=f"nmt-decode-{model_id}")

    @property
    def queued_lines(self) -> int:
        return len(self.pending)

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued request, then stop the scheduler."""
        self.closed = True
        while self.pending or self.running:
            self.pending = [line for line in self.pending if line.job.live]
            self._wakeup.set()
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    def warm_up(self, src: str, tgt: str, options: DecodeOptions, lines: list[str]) -> None:
        """Decode ``lines`` once (in the calling thread) to measure the speed that admission uses."""
        results, work = self.translator.prepare(lines, src, tgt)
        if not work:
            return
        started = time.perf_counter()
        for batch in self.translator.plan(work, options, self.batch_tokens):
            self.translator.backend.generate([ids for _, ids in batch], src, tgt, options)
        self._measured(sum(len(ids) + 1 for _, ids in work), time.perf_counter() - started, self.parallel)

    def estimated_wait(self, tokens: int) -> float | None:
        """Seconds until a request of ``tokens`` more source tokens would be done, or None (not measured)."""
        if not self.tokens_per_s:
            return None
        ahead = sum(len(line.ids) + 1 for line in self.pending if line.job.live)
        return (ahead + tokens) / self.tokens_per_s

    async def translate(self, prepared, src: str, tgt: str, options: DecodeOptions, timeout_s: float,
                        disconnected=None):
        """The ``Translation`` of each line of ``prepared`` (``Translator.prepare``'s result), in order.

        Raises ``Overloaded`` at once when the request cannot be taken, ``TimeoutError`` after
        ``timeout_s`` and ``Cancelled`` when ``disconnected()`` (a coroutine function: it returns
        when the client has gone) finishes first; in both cases the request's lines that have not
        started are dropped."""
        results, work = prepared
        if self.closed:
            raise Overloaded("the server is shutting down", reason="shutting_down")
        if self.queued_lines + len(work) > self.max_queue_lines:
            raise Overloaded(f"the queue is full ({self.queued_lines} lines waiting)")
        tokens = sum(len(ids) + 1 for _, ids in work)
        wait = self.estimated_wait(tokens)
        if wait is not None and wait > timeout_s and self.pending:
            raise Overloaded(f"the work queued ahead needs about {wait:.0f} s at the measured speed, more than the "
                             f"{timeout_s:g} s timeout", retry_after=max(1, math.ceil(wait - timeout_s)),
                             reason="cannot_finish_in_time")
        loop = asyncio.get_running_loop()
        job = _Job(list(results), src, tgt, options, loop.create_future(), time.monotonic() + timeout_s, tokens,
                   len(work))
        if not work:
            return job.results
        self.pending.extend(_Line(job, i, ids) for i, ids in work)
        self._set_depth()
        self._wakeup.set()
        waiters = [asyncio.ensure_future(asyncio.shield(job.future))]
        if disconnected is not None:
            waiters.append(asyncio.ensure_future(disconnected()))
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters[1:]:
                waiter.cancel()
        if job.future.done():
            return job.future.result()
        self._cancel(job)
        if done:
            raise Cancelled
        raise TimeoutError

    def _cancel(self, job: _Job) -> None:
        if not job.future.done():
            job.future.cancel()
        self.pending = [line for line in self.pending if line.job is not job]
        self._set_depth()

    def _set_depth(self) -> None:
        self.metrics.queue_lines.labels(self.model_id).set(len(self.pending))

    def _next_batch(self) -> list[_Line]:
        """The batch holding the oldest pending line, cut from the pending lines of its key."""
        self.pending = [line for line in self.pending if line.job.live]
        if not self.pending:
            return []
        oldest = self.pending[0]
        same = [line for line in self.pending if line.job.key == oldest.job.key]
        batches = self.translator.plan([(line, line.ids) for line in same], oldest.job.options, self.batch_tokens)
        batch = next(b for b in batches if any(line is oldest for line, _ in b))
        taken = {id(line) for line, _ in batch}
        self.pending = [line for line in self.pending if id(line) not in taken]
        self._set_depth()
        return [line for line, _ in batch]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.window_s and self.running == 0 and len(self.pending) < self.max_queue_lines:
                await asyncio.sleep(self.window_s)  # an idle server: let concurrent requests join
            while self.running < self.parallel:
                batch = self._next_batch()
                if not batch:
                    break
                self.running += 1
                started = time.perf_counter()
                future = loop.run_in_executor(self._executor, self._decode, batch)
                future.add_done_callback(lambda f, b=batch, t=started: self._finished(b, f, t))

    def _decode(self, batch: list[_Line]) -> list:
        """Decode one batch (in a worker thread): one n-best list or exception per line."""
        job = batch[0].job
        ids = [line.ids for line in batch]
        try:
            return self.translator.backend.generate(ids, job.src, job.tgt, job.options)
        except Exception as whole:
            jobs = {id(line.job): line.job for line in batch}
            if len(jobs) == 1:
                return [whole] * len(batch)
        out: list = [None] * len(batch)  # isolate: one request at a time, so only the bad one fails
        for key in {id(line.job) for line in batch}:
            mine = [i for i, line in enumerate(batch) if id(line.job) == key]
            try:
                hyps = self.translator.backend.generate([batch[i].ids for i in mine], job.src, job.tgt, job.options)
            except Exception as exc:
                log.exception("decoding failed for a request of %d lines", len(mine))
                hyps = [exc] * len(mine)
            for i, h in zip(mine, hyps):
                out[i] = h
        return out

    def _finished(self, batch: list[_Line], future, started: float) -> None:
        self.running -= 1
        elapsed = time.perf_counter() - started
        try:
            outputs = future.result()
        except Exception as exc:  # a bug outside the backend call: fail these requests, keep serving others
            log.exception("decoding failed for %d lines", len(batch))
            outputs = [exc] * len(batch)
        self.metrics.batch_lines.labels(self.model_id).observe(len(batch))
        self.metrics.decode_seconds.labels(self.model_id).observe(elapsed)
        self._measured(sum(len(line.ids) + 1 for line in batch), elapsed, max(1, self.running + 1))
        for line, hyps in zip(batch, outputs):
            job = line.job
            if job.future.done():
                continue
            if isinstance(hyps, Exception):
                job.future.set_exception(hyps)
                self.pending = [x for x in self.pending if x.job is not job]
                continue
            job.results[line.position] = self.translator.finish(hyps)
            job.left -= 1
            if job.left == 0:
                job.future.set_result(job.results)
        self._set_depth()
        self._wakeup.set()

    def _measured(self, tokens: int, seconds: float, busy: int) -> None:
        """Update the decoding speed (source tokens per second of the whole backend): a moving average."""
        if seconds <= 0:
            return
        rate = tokens / seconds * max(1, min(busy, self.parallel))
        self.tokens_per_s = rate if self.tokens_per_s is None else 0.7 * self.tokens_per_s + 0.3 * rate
