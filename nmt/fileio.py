"""Small file helpers: atomic writes, strict UTF-8 line reading, hashing."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from nmt.errors import NmtError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it into place on success.

    On any error the temporary file is removed and ``path`` keeps its old
    content, so a reader never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put a finished directory ``tmp`` in the place of ``final`` (which may exist).

    The old directory is first renamed aside, so ``final`` is at every moment
    either the old complete directory or the new one (never a mix)."""
    final = Path(final)
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _fsync_file(path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding, newline="\n" if encoding else None) as handle:
            yield handle


def write_lines(path, lines: Iterable[str]) -> int:
    n = 0
    with atomic_open(path) as out:
        for line in lines:
            out.write(line)
            out.write("\n")
            n += 1
    return n


def write_json(path, obj) -> None:
    with atomic_open(path) as out:
        json.dump(obj, out, indent=2, ensure_ascii=False, sort_keys=False)
        out.write("\n")


def read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise NmtError(f"missing file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NmtError(f"{path} is not valid JSON ({exc}); it may be corrupted") from None


def iter_lines_bytes(path) -> Iterator[bytes]:
    """Lines of a file as bytes, without the line terminator (\\n or \\r\\n)."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise NmtError(f"missing file {path}") from None
    except IsADirectoryError:
        raise NmtError(f"{path} is a directory, expected a text file") from None
    with handle:
        for raw in handle:
            if raw.endswith(b"\n"):
                raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
            yield raw


def read_lines(path, on_bad_utf8: str = "error") -> tuple[list[str | None], int]:
    """Read a text file strictly as UTF-8.

    Returns ``(lines, n_bad)``. With ``on_bad_utf8="error"`` an invalid line
    raises an ``NmtError`` naming the file and line number; with ``"skip"`` the
    line is returned as ``None`` (the caller drops the pair) and counted.
    """
    lines: list[str | None] = []
    bad = 0
    for number, raw in enumerate(iter_lines_bytes(path), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            if on_bad_utf8 == "skip":
                lines.append(None)
                bad += 1
                continue
            raise NmtError(
                f"{path}: line {number} is not valid UTF-8 (byte {exc.start}); fix the file "
                "or pass --on-bad-utf8 skip to drop such lines"
            ) from None
    return lines, bad


def count_lines(path) -> int:
    n = 0
    with open(path, "rb") as handle:
        for _ in handle:
            n += 1
    return n


def sha256_file(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()
