"""Small file helpers: atomic writes, strict UTF-8 line reading, hashing."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from nmt.errors import NmtError


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def is_special_file(path: str | os.PathLike) -> bool:
    """True when ``path`` (followed through links) exists and is not a regular file or a directory:
    a character or block device, a FIFO or a socket. Such a node is written to, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _replacement_target(path: Path) -> Path:
    """Where an atomic write of ``path`` goes: the file itself, or the end of its symbolic link chain
    (the link is followed, its target is replaced; the link stays a link)."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it into place on success.

    On any error the temporary file is removed and ``path`` keeps its old
    content, so a reader never sees a half-written file. The new file gets the
    mode ``open()`` would give it (an existing file's mode is kept; a new one
    follows the umask). A symbolic link is followed: its target is replaced and
    the link stays. A device, FIFO or socket is never replaced: the path itself
    is yielded and written directly (streaming, so not atomic). A path naming one
    of this process's open files (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``,
    or a link to one) is written through that open file, at its position and
    with its flags (``>> log`` appends), once the block succeeds: never renamed over.
    """
    path = Path(path)
    fd = open_file_descriptor(path)
    if fd is not None and not is_special_file(path):
        with tempfile.TemporaryDirectory(prefix=".nmt-fd-") as scratch:
            tmp = Path(scratch) / "out"
            yield tmp
            with open(tmp, "rb") as source, _through_descriptor(fd, "wb") as target:
                shutil.copyfileobj(source, target)
        return
    if is_special_file(path):
        yield path
        return
    path = _replacement_target(path)
    if path.is_dir():
        raise NmtError(f"{path} is a directory; give a file name to write to")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    _remove_stale_temporaries(path)
    tmp = _new_temporary(path)
    try:
        yield tmp
        os.chmod(tmp, mode)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# where /dev/stdout and friends lead: this process's open file descriptors
_FD_LINK = re.compile(r"/dev/(?:(stdin)|(stdout)|(stderr)|fd/(\d+))|/proc/(?:self|thread-self|(\d+))/fd/(\d+)")


def open_file_descriptor(path: str | os.PathLike) -> int | None:
    """The descriptor number when ``path`` (or a link on the way to its target) names one of this
    process's open files (``/dev/stdout``, ``/dev/fd/3``, ``/proc/self/fd/1``); else None."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on a link chain
        match = _FD_LINK.fullmatch(current)
        if match:
            stdin, stdout, stderr, dev_fd, pid, proc_fd = match.groups()
            if pid is not None and int(pid) != os.getpid():
                return None
            return 0 if stdin else 1 if stdout else 2 if stderr else int(dev_fd or proc_fd)
        try:
            target = os.readlink(current)
        except OSError:
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
    return None


@contextlib.contextmanager
def _through_descriptor(fd: int, mode: str, encoding: str | None = None):
    try:
        handle = os.fdopen(os.dup(fd), mode, encoding=encoding, newline="\n" if encoding else None)
    except OSError as exc:
        raise NmtError(f"cannot write to file descriptor {fd}: {exc.strerror}") from None
    with handle:
        yield handle


# a temporary file of atomic_path: .NAME.PID.RANDOM.tmp (RANDOM: tempfile's 8 characters, no dot)
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp")


def _new_temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporary files that an earlier writer of ``path`` left when it was killed
    (SIGKILL leaves no chance to clean up): ``.NAME.PID.RANDOM.tmp`` of this very NAME whose
    PID no longer runs. The name is parsed from the end (RANDOM has no dot, PID only digits), so
    the temporaries of ``NAME.2019`` are never taken for those of ``NAME``."""
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return
    for candidate in candidates:
        match = _TEMPORARY.fullmatch(candidate.name)
        if match is None or match["name"] != path.name or _pid_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replace_dir(new: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Put the finished directory ``new`` at ``dest``. An empty ``dest`` is replaced; a full one is
    moved aside first and removed only after ``new`` is in place, so ``dest`` is always either
    the old or the new directory, never a mix."""
    new, dest = Path(new), Path(dest)
    if dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(new, dest)
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
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds.
    A path naming an open file of this process (``/dev/stdout``) is written through it directly."""
    if "b" in mode:
        encoding = None
    fd = open_file_descriptor(path)
    if fd is not None:
        with _through_descriptor(fd, mode, encoding) as handle:
            yield handle
        return
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
        raise NmtError(f"{path} is not valid JSON ({shorten(str(exc), 120)}); it may be corrupted") from None
    except (RecursionError, ValueError) as exc:  # nested too deeply, an integer too long to convert
        reason = "nested too deeply" if isinstance(exc, RecursionError) else shorten(str(exc), 120)
        raise NmtError(f"{path} cannot be read as JSON ({reason}); it may be corrupted") from None


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
            raise NmtError(f"{path}: line {number} is not valid UTF-8 (byte {exc.start}); fix the file") from None
    return lines, bad


def check_input_file(path, what: str = "input file", regular: bool = True) -> None:
    """A one-line error unless ``path`` can be read as input: it exists, is not a directory and, with
    ``regular``, is a regular file (not a FIFO, device or socket, which can be read only once)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise NmtError(f"{what} {path} does not exist") from None
    except PermissionError:
        raise NmtError(f"cannot read {what} {path}: permission denied") from None
    if stat.S_ISDIR(mode):
        raise NmtError(f"{what} {path} is a directory; give a file")
    if regular and not stat.S_ISREG(mode):
        kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        raise NmtError(f"{what} {path} is a {kind}, not a regular file: this command reads its input more than "
                       "once; copy it to a file first")


def refuse_same_file(source, output, option: str = "-o") -> None:
    """A one-line error when writing ``output`` would replace the file ``source`` is read from."""
    try:
        same = os.path.samefile(source, output)
    except OSError:  # the output does not exist yet (or the input is gone: reported elsewhere)
        return
    if same:
        raise NmtError(f"{option} {output} is the input file {source}: writing it would destroy the text being "
                       "read; write to another file")


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


# every character str.splitlines() ends a line at ("\r\n" is two of them)
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAK_NAMES = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\v": "LINE TABULATION", "\f": "FORM FEED",
                     "\x1c": "FILE SEPARATOR", "\x1d": "GROUP SEPARATOR", "\x1e": "RECORD SEPARATOR",
                     "\x85": "NEXT LINE", "\u2028": "LINE SEPARATOR", "\u2029": "PARAGRAPH SEPARATOR"}
LINE_BREAK_RE = re.compile(f"[{re.escape(LINE_BREAKS)}]")
# what json.dumps(ensure_ascii=False) leaves raw that a line reader or a UTF-8 encoder trips on
_JSON_RAW = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def line_break_in(text: str) -> str | None:
    """``"U+2028 (LINE SEPARATOR)"`` for the first line break inside ``text``, or None."""
    match = LINE_BREAK_RE.search(text)
    if match is None:
        return None
    char = match.group()
    return f"U+{ord(char):04X} ({_LINE_BREAK_NAMES[char]})"


def json_line(obj) -> str:
    """``obj`` as one line of JSON, without the newline: readable non-ASCII text, but U+0085, U+2028,
    U+2029 and lone surrogates escaped, so the line is one line to every reader and encodes as UTF-8."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))


def one_line(text: str) -> str:
    """``text`` with every line break (as ``str.splitlines()`` sees them) replaced by a space: a
    translation never adds a line (a byte-fallback model, or one trained on text holding U+2028,
    can produce one)."""
    return LINE_BREAK_RE.sub(" ", text)


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases as they are read: an alias can
    make a few hundred bytes expand into gigabytes (the "billion laughs" of YAML),
    and nmt's configs and manifests never need one."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise NmtError(f"YAML aliases (*{event.anchor}) are not allowed in nmt configs or manifests "
                           f"(line {event.start_mark.line + 1}); write the value out")
        return super().compose_node(parent, index)


def parse_yaml(text: str, source: str):
    """Parse YAML safely (no aliases, no Python objects); a one-line NmtError names ``source``."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise NmtError(f"{source} is not valid YAML: {shorten(first)}") from None
    except RecursionError:
        raise NmtError(f"{source} is nested too deeply to be a config") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise NmtError(f"{source} holds a value that cannot be read: {shorten(str(exc), 120)}") from None


def read_yaml(path, what: str = "file"):
    """Read and parse a YAML file (see ``parse_yaml``); missing or unreadable files are one-line errors."""
    return parse_yaml(read_text(path, what), str(path))


def read_text(path, what: str = "file") -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NmtError(f"missing {what} {path}") from None
    except IsADirectoryError:
        raise NmtError(f"{what} {path} is a directory, expected a file") from None
    except PermissionError:
        raise NmtError(f"cannot read {what} {path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise NmtError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def shorten(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters, for quoting user input in an error."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
