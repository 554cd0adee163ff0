"""Downloads: resumable, complete, checksummed; archives checked and extracted safely.

One implementation for everything nmt fetches: corpus files (``nmt data get``)
and model tarballs (``nmt download``).

``fetch`` writes ``dest.part`` and asks for the missing bytes on the next call
(an HTTP range request; for ``file://`` URLs the bytes already there are
skipped), so an interrupted download resumes. The file is renamed to ``dest``
only when it has as many bytes as announced and, when a SHA-256 is expected,
that hash. ``check_archive`` reads a compressed file or archive to its end
(gzip, xz and bzip2 checksums, zip CRCs, tar structure) so that a corrupt file
is deleted instead of being cached as valid; ``safe_extract`` unpacks a tarball
after refusing what could write outside the target directory or fill the disk.
Every failure is an ``NmtError`` whose one line names what was being fetched
(``label``) and the host.
"""
from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import http.client
import lzma
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

from nmt import __version__
from nmt.errors import NmtError

_HEADERS = {"User-Agent": f"nmt/{__version__} (download)"}
_STREAMS = {".gz": gzip.open, ".tgz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}

# An official mBART-50 tarball holds one ~2.4 GB model.pt; no member of a model
# archive is larger than this, so a bigger (or sparse, "zip bomb") member is refused.
MAX_MEMBER_BYTES = int(os.environ.get("NMT_MAX_ARCHIVE_MEMBER_BYTES", 16 << 30))


def host_of(url: str) -> str:
    parsed = urlparse(url)
    return parsed.netloc or parsed.scheme or url


# --------------------------------------------------------------------------- fetch

def fetch(url: str, dest: Path, label: str, expected_sha256: str | None = None, timeout: float = 30.0,
          chunk: int = 1 << 20) -> str:
    """Download ``url`` to ``dest``, resuming ``dest.part`` when a previous run was cut off.

    Returns the file's SHA-256; with ``expected_sha256`` a different file is deleted and refused."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    local = url.startswith("file:")
    response = _open(url, offset if not local else 0, label, timeout)
    if response is None:  # the server refused the range: the part is complete or stale, start again
        part.unlink()
        return fetch(url, dest, label, expected_sha256, timeout, chunk)
    with response:
        announced = response.headers.get("Content-Length")
        announced = int(announced) if announced and announced.isdigit() else None
        if local:  # the whole file comes again: skip what the part already holds
            if announced is not None and offset > announced:
                offset = 0
            offset = _skip(response, offset, chunk)
            expected = announced
        else:
            if offset and getattr(response, "status", None) != 206:
                offset = 0  # the server ignored the range request: start over
            expected = offset + announced if announced is not None else None
        digest = _hash_prefix(part, offset)
        written = _copy(response, part, offset, digest, chunk, f"{label}: the download from {host_of(url)}")
    if expected is not None and written != expected:
        raise NmtError(f"{label}: the download from {host_of(url)} stopped at {written:,} of {expected:,} bytes; "
                       "rerun to resume")
    hexdigest = digest.hexdigest()
    if expected_sha256 and hexdigest != expected_sha256.lower():
        part.unlink(missing_ok=True)
        raise NmtError(f"{label}: checksum mismatch for {url}: expected SHA-256 {expected_sha256}, got {hexdigest}; "
                       "the download was deleted (corrupted, or the file changed upstream)")
    os.replace(part, dest)
    return hexdigest


def _open(url: str, offset: int, label: str, timeout: float):
    """The response for ``url`` from byte ``offset`` on; None when the server refuses that range."""
    request = urllib.request.Request(url, headers=dict(_HEADERS))
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    host = host_of(url)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None
        raise NmtError(f"{label}: {host} answered HTTP {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if url.startswith("file:"):
            raise NmtError(f"{label}: cannot read {url} ({reason})") from None
        raise NmtError(f"{label}: cannot reach {host} ({reason})") from None


def _skip(response, offset: int, chunk: int) -> int:
    """Read and drop the first ``offset`` bytes; how many there were."""
    skipped = 0
    while skipped < offset:
        block = response.read(min(chunk, offset - skipped))
        if not block:
            break
        skipped += len(block)
    return skipped


def _hash_prefix(part: Path, offset: int):
    """A SHA-256 fed with the part's first ``offset`` bytes (the ones a resumed download keeps)."""
    digest = hashlib.sha256()
    if offset:
        with open(part, "rb") as handle:
            remaining = offset
            while remaining > 0:
                block = handle.read(min(1 << 20, remaining))
                if not block:
                    break
                digest.update(block)
                remaining -= len(block)
    return digest


def _copy(response, part: Path, offset: int, digest, chunk: int, what: str) -> int:
    """Append the response to the part (truncated to ``offset`` bytes first); the part's size after."""
    written = offset
    try:
        with open(part, "r+b" if offset else "wb") as out:
            out.seek(offset)
            out.truncate()
            while True:
                block = response.read(chunk)
                if not block:
                    break
                out.write(block)
                digest.update(block)
                written += len(block)
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise
        raise NmtError(f"{what} broke off after {written:,} bytes ({type(exc).__name__}); rerun to resume") from None
    return written


# --------------------------------------------------------------------------- archives

def _archive_kind(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar", ".zip", ".gz", ".xz", ".bz2"):
        if name.endswith(suffix):
            return suffix
    return None


def check_archive(path: Path, label: str, url: str) -> None:
    """Read a compressed file or archive to its end; delete it and fail if it is corrupt."""
    kind = _archive_kind(path)
    if kind is None:
        return
    try:
        if kind == ".zip":
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad:
                raise ValueError(f"member {bad} fails its CRC check")
        elif kind.startswith(".tar") or kind == ".tgz":
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile():
                        handle = archive.extractfile(member)
                        while handle.read(1 << 20):
                            pass
        else:
            with _STREAMS[kind](path, "rb") as stream:
                while stream.read(1 << 20):
                    pass
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError) as exc:
        path.unlink(missing_ok=True)
        raise NmtError(f"{label}: the file downloaded from {host_of(url)} is not a valid {kind.lstrip('.')} "
                       f"file ({exc}); it was deleted, rerun to download it again") from None


def safe_extract(archive: Path, dest: Path) -> list[str]:
    """Extract a tarball, refusing absolute paths, ``..`` components, links, special files,
    members over ``MAX_MEMBER_BYTES`` and archives larger than the free disk space."""
    dest = dest.resolve()
    try:
        tar = tarfile.open(archive)
        with tar:
            members = tar.getmembers()
            _check_members(archive, dest, members)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise NmtError(f"{archive} is not a complete, readable tar archive ({detail}); delete it and "
                       "download it again") from None
    return [m.name for m in members]


def _check_members(archive: Path, dest: Path, members) -> None:
    total = 0
    for member in members:
        name = member.name
        if name.startswith("/") or Path(name).is_absolute():
            raise NmtError(f"refusing {archive}: member {name!r} has an absolute path")
        if ".." in Path(name).parts:
            raise NmtError(f"refusing {archive}: member {name!r} points outside the target directory")
        if member.issym() or member.islnk():
            raise NmtError(f"refusing {archive}: member {name!r} is a link ({member.linkname!r})")
        if not (member.isfile() or member.isdir()):
            raise NmtError(f"refusing {archive}: member {name!r} is not a regular file or directory")
        if not (dest / name).resolve().is_relative_to(dest):
            raise NmtError(f"refusing {archive}: member {name!r} points outside the target directory")
        if member.size > MAX_MEMBER_BYTES:
            raise NmtError(f"refusing {archive}: member {name!r} would extract to {member.size:,} bytes, over the "
                           f"{MAX_MEMBER_BYTES:,}-byte limit for one file (NMT_MAX_ARCHIVE_MEMBER_BYTES)")
        total += member.size
    free = shutil.disk_usage(dest.parent if not dest.exists() else dest).free
    if total > free:
        raise NmtError(f"refusing {archive}: it would extract to {total:,} bytes but only {free:,} are free "
                       f"on the disk of {dest}")
