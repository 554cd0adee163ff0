"""Reading raw corpora as a stream of line chunks, never as whole files.

A corpus is either two line-aligned files (one per language) or one TSV file
(first column: the pair's first language, second column: the other). Any file
may be compressed: ``.gz``, ``.xz`` and ``.zst`` are decompressed while reading.

Lines are handed out as ``bytes`` (terminator removed, ``\\r\\n`` too) in chunks
of a fixed number of lines, so the caller's memory depends on the chunk size,
not on the corpus. Decoding (strict UTF-8) happens in the cleaning workers.
"""
from __future__ import annotations

import gzip
import io
import itertools
import lzma
from pathlib import Path
from typing import Iterator

import zstandard

from nmt.errors import NmtError

COMPRESSED_SUFFIXES = (".gz", ".xz", ".zst")


def open_binary(path) -> io.BufferedIOBase:
    """Open a file for reading bytes, decompressing by its suffix."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        if path.suffix == ".xz":
            return lzma.open(path, "rb")
        if path.suffix == ".zst":
            raw = open(path, "rb")
            return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
        return open(path, "rb")
    except FileNotFoundError:
        raise NmtError(f"missing file {path}") from None
    except IsADirectoryError:
        raise NmtError(f"{path} is a directory, expected a text file") from None


def _strip(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def iter_lines(path) -> Iterator[bytes]:
    """Lines of a (possibly compressed) file as bytes; a damaged archive is a one-line error."""
    with open_binary(path) as handle:
        try:
            for raw in handle:
                yield _strip(raw)
        except (EOFError, OSError, lzma.LZMAError, zstandard.ZstdError) as exc:
            raise NmtError(f"{path}: cannot decompress ({exc}); the file is damaged or truncated") from None


def iter_chunks(path, size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for line in iter_lines(path):
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def iter_pair_chunks(corpus, size: int) -> Iterator[tuple[list[bytes], list[bytes]]]:
    """``(side_a, side_b)`` chunks of a corpus (two files or one TSV), checked to be line-aligned."""
    if corpus.tsv is not None:
        yield from _tsv_chunks(corpus.tsv, size)
        return
    (_, path_a), (_, path_b) = corpus.files
    chunks_a, chunks_b = iter_chunks(path_a, size), iter_chunks(path_b, size)
    n_a = n_b = 0
    for chunk_a, chunk_b in itertools.zip_longest(chunks_a, chunks_b, fillvalue=[]):
        n_a += len(chunk_a)
        n_b += len(chunk_b)
        if len(chunk_a) != len(chunk_b):
            n_a += sum(map(len, chunks_a))
            n_b += sum(map(len, chunks_b))
            raise NmtError(f"line counts differ: {path_a} has {n_a} lines but {path_b} has {n_b}; "
                           "the two sides of a corpus must be line-aligned")
        yield chunk_a, chunk_b
    if n_a == 0:
        raise NmtError(f"empty corpus: {path_a} and {path_b} have no lines")


def _tsv_chunks(path, size: int):
    n = 0
    for chunk in iter_chunks(path, size):
        side_a, side_b = [], []
        for offset, line in enumerate(chunk):
            fields = line.split(b"\t")
            if len(fields) != 2:
                raise NmtError(f"{path}: line {n + offset + 1} has {len(fields)} tab-separated fields, "
                               "expected 2 (source and target)")
            side_a.append(fields[0])
            side_b.append(fields[1])
        n += len(chunk)
        yield side_a, side_b
    if n == 0:
        raise NmtError(f"empty corpus: {path} has no lines")


def decode(lines: list[bytes], path, first_line: int, on_bad_utf8: str) -> tuple[list[str | None], int]:
    """Strict UTF-8; a bad line is an error naming file and line, or ``None`` with ``skip``."""
    out: list[str | None] = []
    bad = 0
    for offset, raw in enumerate(lines):
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            if on_bad_utf8 != "skip":
                raise NmtError(
                    f"{path}: line {first_line + offset} is not valid UTF-8 (byte {exc.start}); fix the file "
                    "or pass --on-bad-utf8 skip to drop such lines") from None
            out.append(None)
            bad += 1
    return out, bad
