"""Stopping a training run gracefully: finish the update in progress, save, then return.

Training only *reads* a ``StopRequest``; it installs no signal handler of its own. Who owns the
process decides how a stop is asked for:

* the ``nmt train`` / ``finetune`` / ``pretrain`` commands wrap the run in ``stop_on_signals()``:
  SIGINT and SIGTERM then ask for a stop (a second one raises ``KeyboardInterrupt`` at once),
  and the command exits with 128 + the signal once the checkpoint is saved;
* a Python caller passes its own ``StopRequest`` and calls ``request()`` from wherever it likes
  (a thread, a timer, its own handler), or uses ``stop_on_signals()`` itself; without one, signals
  keep whatever handlers the caller's program has.

The rank processes that fairseq spawns for several GPUs carry a copy of the request; when the
caller asked for signal handling they install the same handlers in their own process
(``nmt.fairseq_backend.loop.main``), since a signal handler belongs to one process.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Iterator

log = logging.getLogger("nmt.train")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set once someone asks the run to stop; training checks it after every update."""

    def __init__(self) -> None:
        self.signal: int | None = None  # the signal that asked (SIGTERM stands in for a programmatic request)
        self.handle_signals = False  # set by stop_on_signals: spawned ranks install handlers too
        self.pid = os.getpid()  # the process whose handlers feed this request

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a stop after the current update (the first request's signal is kept)."""
        if self.signal is None:
            self.signal = int(signum)


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest | None = None) -> Iterator[StopRequest]:
    """SIGINT / SIGTERM ask ``stop`` to stop (a second signal raises ``KeyboardInterrupt``) while the
    block runs; the handlers it replaced are put back afterwards. Only the main thread can install
    handlers: elsewhere the request is returned without them."""
    stop = stop if stop is not None else StopRequest()

    def handle(signum, frame) -> None:
        if stop.requested:  # second signal: stop now
            raise KeyboardInterrupt
        stop.request(signum)
        log.warning("received %s: finishing this update, saving a checkpoint, then stopping",
                    signal.Signals(signum).name)

    previous: dict = {}
    try:
        for sig in STOP_SIGNALS:
            try:
                previous[sig] = signal.signal(sig, handle)
            except ValueError:  # not the main thread
                break
        stop.handle_signals = bool(previous)
        yield stop
    finally:
        for sig, handler in previous.items():  # None: installed outside Python; the default stands in
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
