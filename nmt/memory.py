"""glibc's allocator under PyTorch on the CPU: keep freed memory for the next training step.

A training step allocates tensors of tens to hundreds of MB (the output layer's logits for
4,096 tokens and an 8,000-piece vocabulary alone are 131 MB). glibc serves every allocation
above its mmap threshold (32 MB at most) with a fresh ``mmap`` and returns it on ``free``, so
every step faults all those pages in again. Measured on the 2-core development machine
(benchmarks/RESULTS.md, "Training CPU time and the allocator"): 47,000 page faults a second and a
quarter of the training process's CPU time spent in the kernel. ``keep_freed_memory`` tells glibc
not to use mmap for allocations and not to trim its heap, so freed blocks are reused: the same
training then spends 1/20 of that kernel time. Tensors of ever-changing sizes fragment a heap
that is never trimmed (4.5 GB after 400 updates of the small preset, OOM-killed beside other
runs), so ``release_free_memory`` (``malloc_trim``) hands the free pages back every so often:
they fault in again once, not at every step.

Only on Linux with glibc; elsewhere (musl, macOS) nothing changes. ``NMT_MALLOC_TUNING=0``
switches it off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger("nmt")

# mallopt parameters (glibc's malloc.h) and glibc's defaults for them
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536


def _mallopt(mmap_max: int, trim_threshold: int) -> bool:
    if os.environ.get("NMT_MALLOC_TUNING", "1") == "0" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt(M_MMAP_MAX, mmap_max) == 1 and libc.mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
    except (OSError, AttributeError):
        return False


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process (see the module docstring); whether it applied.
    ``restore_malloc_defaults`` undoes it."""
    ok = _mallopt(0, 2**31 - 1)
    if ok:
        log.debug("glibc malloc: mmap off, no heap trimming (freed memory is reused by the next step)")
    return ok


def restore_malloc_defaults() -> None:
    """glibc's default mmap and trimming settings again (its sliding mmap threshold stays off: glibc
    turns it off for good once a program sets these), and the free pages handed back."""
    if _mallopt(DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD):
        release_free_memory()


def release_free_memory() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim``); a no-op elsewhere."""
    if os.environ.get("NMT_MALLOC_TUNING", "1") == "0" or platform.system() != "Linux":
        return
    if platform.libc_ver()[0] != "glibc":
        return
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
