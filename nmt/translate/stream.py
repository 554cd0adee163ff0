"""Line-aligned I/O for ``nmt translate``: files, pipes and interactive stdin.

Input is read as bytes and decoded line by line, so one undecodable line
becomes ``None`` (an empty output line plus a warning) instead of an error that
would shift or lose the rest. From a file the input is read in large chunks;
from stdin a reader thread hands over whatever lines have arrived, so a pipe
is translated in batches while an interactive user gets each line back as soon
as it is entered.

Whatever is written one record a line must stay one line for every reader,
including ``str.splitlines()``, which also breaks at U+000B, U+000C,
U+001C-U+001E, U+0085, U+2028 and U+2029. JSON lines are written with
``json_line``: ``json.dumps`` escapes the C0 controls but leaves U+0085,
U+2028 and U+2029 raw when ``ensure_ascii=False``, so those are escaped here
(``\\u2028``), as are lone surrogates (which UTF-8 cannot encode).
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from typing import BinaryIO, Iterator

# the line-break rules live in nmt.fileio; re-exported for the modules that write lines
from nmt.fileio import LINE_BREAK_RE, LINE_BREAKS, json_line, line_break_in  # noqa: F401

_EOF = object()


def decode_line(raw: bytes) -> str | None:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def file_chunks(handle: BinaryIO, chunk_lines: int = 20000) -> Iterator[list]:
    chunk = []
    for raw in handle:
        chunk.append(decode_line(raw))
        if len(chunk) >= chunk_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _raw_lines(handle: BinaryIO) -> Iterator[bytes]:
    """``handle``'s lines, read from its file descriptor when it has one: a reader thread blocked in
    ``os.read`` holds no lock of the buffered file, so a process stopped by a signal while it waits
    for input exits cleanly (blocked in ``readline``, the thread holds the buffer's lock and the
    interpreter aborts at shutdown: "could not acquire lock for <stdin>")."""
    try:
        fd = handle.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory file
        yield from iter(handle.readline, b"")
        return
    pending = b""
    while True:
        block = os.read(fd, 1 << 16)
        if not block:
            break
        pending += block
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def stream_chunks(handle: BinaryIO, max_lines: int = 256) -> Iterator[list]:
    """Yield as soon as at least one line is available, with every line already waiting (up to max_lines)."""
    lines: queue.Queue = queue.Queue(maxsize=max_lines * 8)

    def reader():
        try:
            for raw in _raw_lines(handle):
                lines.put(decode_line(raw))
        finally:
            lines.put(_EOF)

    threading.Thread(target=reader, daemon=True).start()
    done = False
    while not done:
        first = lines.get()
        if first is _EOF:
            return
        chunk = [first]
        while len(chunk) < max_lines:
            try:
                item = lines.get_nowait()
            except queue.Empty:
                break
            if item is _EOF:
                done = True
                break
            chunk.append(item)
        yield chunk


def parse_tsv(line: str | None, number: int) -> tuple[str | None, str | None, str | None, str | None]:
    """``src<TAB>tgt<TAB>text`` -> (src, tgt, text, error)."""
    if line is None:
        return None, None, None, f"line {number}: not valid UTF-8, output left empty"
    parts = line.split("\t", 2)
    if len(parts) != 3:
        return None, None, None, f"line {number}: expected 'src<TAB>tgt<TAB>text', output left empty"
    return parts[0].strip(), parts[1].strip(), parts[2], None


def format_jsonl(number: int, src: str, tgt: str, source: str | None, translation, nbest: int) -> str:
    """One JSON line; ``nbest`` > 1 lists that many hypotheses (the best first). Quality decoding adds
    each hypothesis' ``utility`` and, when pivoting, the ``pivot`` text."""
    best = translation.hypotheses[0] if translation.hypotheses else None
    record = {"line": number, "src_lang": src, "tgt_lang": tgt, "source": source,
              "translation": translation.text, "score": best.score if best else None}
    if best is not None and best.utility is not None:
        record["utility"] = best.utility
    if translation.pivot is not None:
        record["pivot"] = translation.pivot
    if nbest > 1:
        record["nbest"] = [{"translation": h.text, "score": h.score,
                            **({"utility": h.utility} if h.utility is not None else {})}
                           for h in translation.hypotheses[:nbest]]
    if translation.warning:
        record["warning"] = translation.warning
    return json_line(record)


def stdin_binary() -> BinaryIO:
    return sys.stdin.buffer
