"""Stopping a training run gracefully: finish the update in progress, save, then return.

Training only *reads* a ``StopRequest``; library code installs no signal handler. Who owns the
process decides how a stop is asked for:

* the ``nmt train`` / ``finetune`` / ``pretrain`` commands wrap the run in
  ``nmt.cli_util.stop_on_signals()``: SIGINT and SIGTERM then ask for a stop (a second one raises
  ``KeyboardInterrupt`` at once), and the command exits with 128 + the signal once the checkpoint
  is saved;
* a Python caller passes its own ``StopRequest`` and calls ``request()`` from wherever it likes
  (a thread, a timer, its own handler); without one, signals keep whatever handlers the caller's
  program has.

The rank processes that fairseq spawns for several GPUs carry a copy of the request; a handler
belongs to one process, so the caller that installed handlers leaves ``rank_setup`` (its own
function, e.g. ``stop_on_signals``) on the request, and each spawned rank enters it
(``nmt.fairseq_backend.loop.main``).
"""
from __future__ import annotations

import os
import signal
from typing import Callable, ContextManager


class StopRequest:
    """Set once someone asks the run to stop; training checks it after every update."""

    def __init__(self) -> None:
        self.signal: int | None = None  # the signal that asked (SIGTERM stands in for a programmatic request)
        # what a rank process spawned for this request enters to be stoppable the same way (the caller's
        # own signal handling, a picklable module-level function); None: nothing
        self.rank_setup: Callable[[StopRequest], ContextManager] | None = None
        self.pid = os.getpid()  # the process that made the request

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a stop after the current update (the first request's signal is kept)."""
        if self.signal is None:
            self.signal = int(signum)
