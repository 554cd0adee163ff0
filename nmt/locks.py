"""One nmt process per output directory: ``OutputLock``."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import stat
import time
from pathlib import Path

from nmt.errors import NmtError


class OutputLock:
    """One nmt process per output directory.

    ``with OutputLock(directory, "nmt train"):`` takes an exclusive ``flock`` on
    ``directory/.nmt.lock`` and writes the holder's pid, host and command into it.
    A second process that wants the same directory gets a one-line error naming
    the holder. The kernel drops the lock when its holder dies (SIGKILL
    included), so a lock left by a dead process is detected as stale and taken
    over. The file is removed on release; a waiter that opened the removed file
    notices (its inode is no longer the path's) and tries again.

    The lock file must be a regular file: a symbolic link named ``.nmt.lock`` is
    never followed (its target would be truncated), and a FIFO or device is
    refused without blocking on it.
    """

    NAME = ".nmt.lock"

    def __init__(self, directory: str | os.PathLike, command: str, name: str = NAME):
        self.directory = Path(directory)
        self.path = self.directory / name
        self.command = command
        self._fd: int | None = None

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NmtError(f"the lock file {self.path} is a symbolic link; nmt does not follow it (its target "
                               "would be overwritten): remove the link") from None
            raise NmtError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NmtError(f"the lock file {self.path} is not a regular file (a FIFO, device or socket); remove it")
        return fd

    def acquire(self) -> "OutputLock":
        for _ in range(100):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise NmtError(f"{self.directory} is in use by another nmt process ({holder}); wait for it to "
                               "finish or stop it, or choose another output directory") from None
            try:
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released and removed while we waited: take the new file
                os.close(fd)
                continue
            previous = _read_holder(fd)
            if previous != "unknown holder":
                log_stale = f"a lock left by a process that no longer runs ({previous}) was taken over"
                logging.getLogger("nmt").info(log_stale)
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode() + b"\n", 0)
            self._fd = fd
            return self
        raise NmtError(f"could not lock {self.directory}: the lock file keeps changing; is another process "
                       "starting and stopping there?")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return "unknown holder"
    if not isinstance(record, dict) or "pid" not in record:
        return "unknown holder"
    return (f"pid {record.get('pid')} on {record.get('host')}, {record.get('command')}, "
            f"since {record.get('since')}")
