"""Archives from the network: checked to their end, bounded, and unpacked safely.

Every archive nmt unpacks (model tarballs for ``nmt download``, corpus archives
for ``nmt data get``) goes through this module, never through another
library's extractor (mtdata's follows symbolic and hard links out of its
directory).

- ``check_archive`` reads a compressed file or archive to its end (gzip, xz and
  bzip2 checksums, zip CRCs, tar structure), so that a damaged download is
  deleted instead of being cached as valid, and refuses a **decompression bomb**:
  a file that expands to more than ``MAX_EXPANSION_RATIO`` times its own size
  (once past ``RATIO_FLOOR`` bytes, so that small, very repetitive files pass), or
  a member over ``MAX_MEMBER_BYTES``. It stops reading at the limit: a bomb costs
  the bytes up to the limit, never the disk.
- ``safe_extract`` unpacks a tarball after refusing what could write outside
  the target directory (absolute paths, ``..``, a member below a symbolic link,
  links that leave the archive's directory; with ``internal_links=False`` every
  link), special files, members over ``MAX_MEMBER_BYTES`` and archives larger
  than the limit or the free disk space.

Every refusal is an ``NmtError`` whose one line names the archive, the member
and the limit (with the environment variable that sets it).
"""
from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import posixpath
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path

from nmt.errors import NetworkError, NmtError

_STREAMS = {".gz": gzip.open, ".tgz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
_BLOCK = 1 << 20

# An official mBART-50 tarball holds one ~2.4 GB model.pt; no member of a model or corpus
# archive is larger than this, so a bigger (or sparse) member is refused.
MAX_MEMBER_BYTES = int(os.environ.get("NMT_MAX_ARCHIVE_MEMBER_BYTES", 16 << 30))
# Text compresses 3-10x with gzip/xz, a model's weights barely; a decompression bomb 1,000x.
MAX_EXPANSION_RATIO = float(os.environ.get("NMT_MAX_EXPANSION_RATIO", 100))
RATIO_FLOOR = 64 << 20  # up to this many expanded bytes, any ratio is accepted


class _TooLarge(Exception):
    pass


def expansion_limit(compressed_bytes: int) -> int:
    """The most bytes a file of ``compressed_bytes`` may expand to."""
    return int(min(MAX_MEMBER_BYTES, max(RATIO_FLOOR, MAX_EXPANSION_RATIO * compressed_bytes)))


def _limit_text(path: Path) -> str:
    return (f"more than {expansion_limit(path.stat().st_size):,} bytes, over {MAX_EXPANSION_RATIO:g} times its "
            f"{path.stat().st_size:,} bytes (a decompression bomb?); the limits are NMT_MAX_EXPANSION_RATIO and "
            "NMT_MAX_ARCHIVE_MEMBER_BYTES")


def archive_kind(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar", ".zip", ".gz", ".xz", ".bz2"):
        if name.endswith(suffix):
            return suffix
    return None


def _drain(stream, budget: int) -> int:
    """Read ``stream`` to its end; the bytes read. Raises ``_TooLarge`` past ``budget``."""
    total = 0
    while block := stream.read(_BLOCK):
        total += len(block)
        if total > budget:
            raise _TooLarge
    return total


def check_archive(path: Path, label: str, host: str) -> None:
    """Read a compressed file or archive to its end within the expansion limit; delete it and
    fail in one line if it is damaged or too large."""
    path = Path(path)
    kind = archive_kind(path)
    if kind is None:
        return
    budget = expansion_limit(path.stat().st_size)
    try:
        if kind == ".zip":
            with zipfile.ZipFile(path) as archive:
                if sum(info.file_size for info in archive.infolist()) > budget:
                    raise _TooLarge
                bad = archive.testzip()  # reads every member, at most its declared size
            if bad:
                raise ValueError(f"member {bad} fails its CRC check")
        elif kind.startswith(".tar") or kind == ".tgz":
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile():
                        budget -= _drain(archive.extractfile(member), min(budget, MAX_MEMBER_BYTES))
        else:
            with _STREAMS[kind](path, "rb") as stream:
                _drain(stream, budget)
    except _TooLarge:
        why = _limit_text(path)
        path.unlink(missing_ok=True)
        raise NmtError(f"{label}: refusing the file downloaded from {host}: it expands to {why}; it was "
                       "deleted") from None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, zlib.error) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise
        path.unlink(missing_ok=True)
        detail = " ".join(str(exc).split()) or type(exc).__name__
        # (most often a transfer cut short: deleted, so that a rerun downloads it again)
        raise NetworkError(f"{label}: the file downloaded from {host} is not a valid {kind.lstrip('.')} "
                           f"file ({detail}); it was deleted, rerun to download it again") from None


def safe_extract(archive: Path, dest: Path, internal_links: bool = False) -> list[str]:
    """Extract a tarball into ``dest`` after checking every member (see the module docstring).
    ``internal_links``: keep symbolic and hard links whose target stays inside the archive's
    directory (corpus archives); otherwise every link is refused (model archives)."""
    archive, dest = Path(archive), Path(dest).resolve()
    try:
        tar = tarfile.open(archive)
        with tar:
            members = tar.getmembers()
            _check_members(archive, dest, members, internal_links)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise NmtError(f"{archive} is not a complete, readable tar archive ({detail}); delete it and "
                       "download it again") from None
    return [m.name for m in members]


def _normal(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")) if name else name


def _leaves(path: str) -> bool:
    return path == ".." or path.startswith("../")


def _check_members(archive: Path, dest: Path, members, internal_links: bool) -> None:
    symlinks = {_normal(m.name) for m in members if m.issym()}
    files = set()
    total = 0
    for member in members:
        name = member.name
        if name.startswith("/") or Path(name).is_absolute():
            raise NmtError(f"refusing {archive}: member {name!r} has an absolute path")
        if ".." in Path(name).parts:
            raise NmtError(f"refusing {archive}: member {name!r} points outside the target directory")
        parts = _normal(name).split("/")
        below = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in symlinks), None)
        if below is not None:
            raise NmtError(f"refusing {archive}: member {name!r} lies below the symbolic link {below!r}")
        if member.issym() or member.islnk():
            _check_link(archive, member, internal_links, files, symlinks)
        elif not (member.isfile() or member.isdir()):
            raise NmtError(f"refusing {archive}: member {name!r} is not a regular file or directory")
        if not (dest / name).resolve().is_relative_to(dest):
            raise NmtError(f"refusing {archive}: member {name!r} points outside the target directory")
        if member.size > MAX_MEMBER_BYTES:
            raise NmtError(f"refusing {archive}: member {name!r} would extract to {member.size:,} bytes, over the "
                           f"{MAX_MEMBER_BYTES:,}-byte limit for one file (NMT_MAX_ARCHIVE_MEMBER_BYTES)")
        if member.isfile():
            files.add(_normal(name))
        total += member.size
    if total > expansion_limit(archive.stat().st_size):
        raise NmtError(f"refusing {archive}: its members add up to {total:,} bytes, {_limit_text(archive)}")
    free = shutil.disk_usage(dest.parent if not dest.exists() else dest).free
    if total > free:
        raise NmtError(f"refusing {archive}: it would extract to {total:,} bytes but only {free:,} are free "
                       f"on the disk of {dest}")


def _check_link(archive: Path, member, internal_links: bool, files: set, symlinks: set) -> None:
    """A link may stay: with ``internal_links``, a relative target that neither leaves the archive's
    directory nor goes through another symbolic link (``a -> .`` and ``b -> a/..`` would together lead
    out), and a hard link only to a regular file extracted before it."""
    name, target = member.name, member.linkname
    if not internal_links:
        raise NmtError(f"refusing {archive}: member {name!r} is a link ({target!r})")
    base = posixpath.dirname(_normal(name)) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target)) if target else ""
    if not target or posixpath.isabs(target) or _leaves(resolved):
        raise NmtError(f"refusing {archive}: member {name!r} is a link to {target!r}, outside the archive's "
                       "directory")
    parts = target.split("/")
    for i in range(len(parts) - 1):
        step = posixpath.normpath(posixpath.join(base, *parts[:i + 1]))
        if step in symlinks:
            raise NmtError(f"refusing {archive}: member {name!r} is a link to {target!r}, which goes through the "
                           f"symbolic link {step!r}")
    if member.islnk() and resolved not in files:
        raise NmtError(f"refusing {archive}: member {name!r} is a hard link to {target!r}, which is not a "
                       "regular file extracted before it")
