"""fairseq's ``mmap`` indexed datasets (``.bin`` + ``.idx``), written without fairseq.

This is the format that ``fairseq-preprocess --dataset-impl mmap`` writes: the
``.bin`` is the concatenated token ids (uint16 when the dictionary has fewer than
65,500 symbols, else uint32); the ``.idx`` holds a magic string, version 1, a dtype
code, the number of items, their sizes (int32) and byte offsets (int64). It is a
file format, not fairseq code, so the data stages write it (``dict.txt`` is
``nmt.vocab``'s).

The bytes are the same as fairseq's own builder writes (checked by the tests
and by the prepare benchmark against ``fairseq-preprocess``).
"""
from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np

from nmt.fileio import atomic_path
from nmt.vocab import EOS

_MAGIC = b"MMIDIDX\x00\x00"
_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.uint32): 9, np.dtype(np.int64): 5}
_CODE_DTYPES = {code: dtype for dtype, code in _DTYPE_CODES.items()}


def best_dtype(vocab_size: int) -> np.dtype:
    if vocab_size < 65500:
        return np.dtype(np.uint16)
    if vocab_size < 4294967295:
        return np.dtype(np.uint32)
    return np.dtype(np.int64)


class IndexedWriter:
    """Append token-id arrays; ``close()`` writes the index and moves both files into place."""

    def __init__(self, prefix, vocab_size: int):
        self.prefix = Path(prefix)
        self.dtype = best_dtype(vocab_size)
        self._bin_ctx = atomic_path(f"{prefix}.bin")
        self._bin_tmp = self._bin_ctx.__enter__()
        self._bin = open(self._bin_tmp, "wb")
        self._sizes: list[np.ndarray] = []

    def add_batch(self, flat: np.ndarray, sizes: np.ndarray) -> None:
        """``flat`` holds the tokens of ``len(sizes)`` sentences back to back."""
        self._bin.write(np.ascontiguousarray(flat, dtype=self.dtype).tobytes())
        self._sizes.append(np.asarray(sizes, dtype=np.int64))

    def close(self) -> int:
        self._bin.close()
        sizes = np.concatenate(self._sizes) if self._sizes else np.zeros(0, dtype=np.int64)
        pointers = np.zeros(len(sizes), dtype=np.int64)
        if len(sizes) > 1:
            np.cumsum(sizes[:-1] * self.dtype.itemsize, out=pointers[1:])
        with atomic_path(f"{self.prefix}.idx") as tmp:
            with open(tmp, "wb") as idx:
                idx.write(_MAGIC)
                idx.write(struct.pack("<Q", 1))
                idx.write(struct.pack("<B", _DTYPE_CODES[self.dtype]))
                idx.write(struct.pack("<Q", len(sizes)))
                idx.write(sizes.astype(np.int32).tobytes())
                idx.write(pointers.tobytes())
        self._bin_ctx.__exit__(None, None, None)
        return len(sizes)

    def abort(self) -> None:
        self._bin.close()
        try:
            raise RuntimeError("aborted")
        except RuntimeError as exc:
            self._bin_ctx.__exit__(type(exc), exc, None)


def read_indexed(prefix) -> list[np.ndarray]:
    """Read an mmap indexed dataset back (used by tests and checks; fairseq has its own reader)."""
    with open(f"{prefix}.idx", "rb") as idx:
        if idx.read(9) != _MAGIC:
            raise ValueError(f"{prefix}.idx is not an mmap index")
        (version,) = struct.unpack("<Q", idx.read(8))
        (code,) = struct.unpack("<B", idx.read(1))
        (n,) = struct.unpack("<Q", idx.read(8))
        sizes = np.frombuffer(idx.read(4 * n), dtype=np.int32)
        pointers = np.frombuffer(idx.read(8 * n), dtype=np.int64)
    dtype = _CODE_DTYPES[code]
    data = np.fromfile(f"{prefix}.bin", dtype=dtype)
    return [data[p // dtype.itemsize: p // dtype.itemsize + s] for p, s in zip(pointers, sizes)]


def ids_with_eos(id_lists, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map sentencepiece ids through ``table`` to dictionary ids and end each sentence with </s>.

    Returns ``(flat, sizes)`` ready for :meth:`IndexedWriter.add_batch`.
    """
    lengths = np.fromiter((len(x) for x in id_lists), dtype=np.int64, count=len(id_lists))
    total = int(lengths.sum())
    flat_in = np.fromiter(itertools.chain.from_iterable(id_lists), dtype=np.int64, count=total)
    sizes = lengths + 1
    out = np.empty(total + len(id_lists), dtype=np.int64)
    eos_pos = np.cumsum(sizes) - 1
    mask = np.ones(len(out), dtype=bool)
    mask[eos_pos] = False
    out[mask] = table[flat_in]
    out[eos_pos] = EOS
    return out, sizes
