"""Resumable, checked HTTP downloads for corpus files.

``fetch`` writes ``dest.part`` and asks the server for the missing bytes on the
next call (HTTP range request), so an interrupted download resumes; the file is
renamed to ``dest`` only when it has as many bytes as the server announced.
``check_archive`` reads a compressed file or archive to its end (gzip, xz and
bzip2 checksums, zip CRCs, tar structure): a corrupt file is deleted instead of
being cached as valid. Every failure is an ``NmtError`` whose one line names
the dataset (``label``) and the host.
"""
from __future__ import annotations

import bz2
import gzip
import http.client
import lzma
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlparse

from nmt import __version__
from nmt.errors import NmtError

_HEADERS = {"User-Agent": f"nmt/{__version__} (corpus download)"}
_STREAMS = {".gz": gzip.open, ".tgz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}


def host_of(url: str) -> str:
    parsed = urlparse(url)
    return parsed.netloc or parsed.scheme or url


def fetch(url: str, dest: Path, label: str, timeout: float = 30.0, chunk: int = 1 << 16) -> None:
    """Download ``url`` to ``dest``, resuming ``dest.part`` when a previous run was cut off."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers=dict(_HEADERS))
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    host = host_of(url)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part is complete or stale: start again
            part.unlink()
            return fetch(url, dest, label, timeout, chunk)
        raise NmtError(f"{label}: {host} answered HTTP {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NmtError(f"{label}: cannot reach {host} ({reason})") from None
    with response:
        if offset and getattr(response, "status", None) != 206:
            offset = 0  # the server ignored the range request: start over
        announced = response.headers.get("Content-Length")
        expected = offset + int(announced) if announced and announced.isdigit() else None
        written = offset
        try:
            with open(part, "ab" if offset else "wb") as out:
                while True:
                    block = response.read(chunk)
                    if not block:
                        break
                    out.write(block)
                    written += len(block)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, OSError) and exc.errno == 28:
                raise
            raise NmtError(f"{label}: the download from {host} broke off after {written:,} bytes "
                           f"({type(exc).__name__}); rerun to resume") from None
    if expected is not None and written != expected:
        raise NmtError(f"{label}: the download from {host} stopped at {written:,} of {expected:,} bytes; "
                       "rerun to resume")
    os.replace(part, dest)


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
