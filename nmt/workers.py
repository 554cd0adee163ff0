"""Worker processes that never outlive the command that started them.

A ``ProcessPoolExecutor`` worker is an ordinary child process: when its parent
is SIGKILLed (an OOM killer, a job scheduler's hard limit, ``kill -9``) it is
re-parented to init and keeps running, holding its memory. ``worker_pool``
starts workers that die with their parent, by two independent means:

* Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), set as
  the first thing a worker does; the kernel delivers it when the parent goes;
* a watchdog thread in each worker that notices the re-parenting (its parent
  pid changes) within a second, for systems without ``prctl``.

A pool's ``initializer`` may build what every task of a worker needs (a model, say):
what it returns is kept on the worker's process object, and ``with_state(fn, *args)``
runs ``fn(state, *args)`` there.
"""
from __future__ import annotations

import ctypes
import multiprocessing
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


def worker_pool(max_workers: int, initializer=None, initargs=(), start_method: str | None = None
                ) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process, then run ``initializer(*initargs)`` (its
    result is the worker's state, see ``with_state``).

    ``start_method="spawn"`` starts fresh interpreters: needed when this process may already
    run threads of its own (torch's, once a model is loaded), which a fork would copy mid-flight."""
    context = multiprocessing.get_context(start_method) if start_method else None
    return ProcessPoolExecutor(max_workers=max_workers, initializer=_start_worker, mp_context=context,
                               initargs=(os.getpid(), initializer, initargs))


def _start_worker(parent_pid: int, initializer, initargs) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        multiprocessing.current_process().nmt_state = initializer(*initargs)


def with_state(fn, *args):
    """In a worker of ``worker_pool``: ``fn(state, *args)``, with the state the pool's initializer returned."""
    return fn(multiprocessing.current_process().nmt_state, *args)
