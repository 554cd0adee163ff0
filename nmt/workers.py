"""Worker processes that never outlive the command that started them.

A ``ProcessPoolExecutor`` worker is an ordinary child process: when its parent
is SIGKILLed (an OOM killer, a job scheduler's hard limit, ``kill -9``) it is
re-parented to init and keeps running, holding its memory. ``worker_pool``
starts workers that die with their parent, by two independent means:

* Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), set as
  the first thing a worker does; the kernel delivers it when the parent goes;
* a watchdog thread in each worker that notices the re-parenting (its parent
  pid changes) within a second, for systems without ``prctl``.
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` is no longer its parent (a pool initializer)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watchdog below still works
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="nmt-parent-watchdog", daemon=True).start()


def worker_pool(max_workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process."""
    return ProcessPoolExecutor(max_workers=max_workers, initializer=die_with_parent, initargs=(os.getpid(),))
