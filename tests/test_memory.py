"""glibc allocator settings for training (nmt.memory): large blocks come from the reused heap."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, sys
from nmt.memory import keep_freed_memory, restore_malloc_defaults
applied = keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def big_mappings():
    out = 0
    for line in open("/proc/self/maps"):
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if hi - lo >= 60 * 2**20 and len(line.split()) == 5:  # anonymous, at least 60 MiB
            out += 1
    return out
before = big_mappings()
block = libc.malloc(64 * 2**20)
during = big_mappings()
libc.free(block)
restore_malloc_defaults()  # after training: glibc's own behaviour again
block = libc.malloc(64 * 2**20)
after = big_mappings()
libc.free(block)
print(applied, during - before, after - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
@pytest.mark.parametrize("tuning,expect", [("1", "True 0 1"), ("0", "False 1 1")])
def test_a_large_block_comes_from_the_heap_only_when_tuned(tuning, expect):
    """glibc maps every block above 32 MiB on its own and unmaps it on free (the page faults nmt.memory
    removes); with the tuning the block comes from the heap: no new mapping of its own, until the
    defaults are restored (as training does when it ends)."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, "NMT_MALLOC_TUNING": tuning}).stdout.split()
    assert " ".join(out) == expect
