"""Downloads: resumable, complete, checksummed (archives are checked and unpacked by ``nmt.archives``).

One implementation for everything nmt fetches: corpus files (``nmt data get``)
and model tarballs (``nmt download``).

``fetch`` writes ``dest.part`` and asks for the missing bytes on the next call
(an HTTP range request; for ``file://`` URLs the bytes already there are
skipped), so an interrupted download resumes. The file is renamed to ``dest``
only when it has as many bytes as announced and, when a SHA-256 is expected,
that hash.

Every failure is an ``NmtError`` whose one line names what was being fetched
(``label``) and the host.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from nmt import __version__
from nmt.errors import NetworkError, NmtError

_HEADERS = {"User-Agent": f"nmt/{__version__} (download)"}
# HTTP answers that may pass (a server busy or failing for now); any other error status is permanent
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


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
        raise NetworkError(f"{label}: the download from {host_of(url)} stopped at {written:,} of {expected:,} bytes; "
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
    host = host_of(url)
    try:
        request = urllib.request.Request(url, headers=dict(_HEADERS))
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None
        error = NetworkError if exc.code in _TRANSIENT_STATUS else NmtError
        raise error(f"{label}: {host} answered HTTP {exc.code} {exc.reason} for {url}") from None
    except ValueError as exc:  # urllib's "unknown url type"
        raise NmtError(f"{label}: {url!r} is not a URL nmt can download ({exc}); give an http(s):// or "
                       "file:// URL") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if url.startswith("file:"):
            raise NmtError(f"{label}: cannot read {url} ({reason})") from None
        raise NetworkError(f"{label}: cannot reach {host} ({reason})") from None


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
        raise NetworkError(f"{what} broke off after {written:,} bytes ({type(exc).__name__}); rerun to resume") from None
    return written
