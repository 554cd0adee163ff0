"""``nmt data get``: parallel corpora for ML50 pairs, from nothing, through mtdata.

What comes from mtdata (PyPI ``mtdata``): its index of datasets (IDs, URLs,
archive members, formats, citations), its cache layout and its parsers (tmx,
sgm, tsv, plain text, members of zip archives). What is nmt's own: the dataset
list per pair (``recipes/data/ml50.yaml``), the download (``nmt.downloads``:
resumable, complete, optional SHA-256 pins, ``http://`` upgraded to ``https://``
for the list's ``https_hosts``), the archive checks and the extraction of
tarballs (``nmt.archives``: integrity, decompression bombs, no member or link
leaving the archive's directory; mtdata's own extractor follows links out of
it and is never used), the alignment check, the output layout, the locks and
``provenance.json``.

Output directory::

    corpora/<dataset id>/<dataset id>.<ML50 code>   one line-aligned corpus per dataset (reused)
    train.de_DE-en_XX.de_DE ...                     the ML50 raw layout (--layout ml50), or
    manifest.yaml                                   the manifest nmt prepare --manifest reads
    provenance.json                                 per dataset: URLs, SHA-256 of every file,
                                                    citation keys, licence (null: mtdata has none)

Contract: a corpus is written only when both sides have the same number of
segments (N pairs in, N lines per side out); files appear by atomic renames, so
an interrupted run leaves either the old files or the new ones. One run at a
time per output directory (``OutputLock``); runs sharing a cache take turns on
each cached file (an ``flock`` beside it). Every dataset is tried; the error at
the end names all that failed, and says "rerun" only for the failures that may
pass by itself (``NetworkError``). The dataset list and its checks are
``nmt.data.dataset_list``.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import hashlib
import json
import logging
import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from nmt import __version__, archives, downloads, langs
from nmt.data.dataset_list import DEFAULT_LIST, load_list, resolve_entries, select
from nmt.errors import NmtError
from nmt.fileio import atomic_open, sha256_file, write_json
from nmt.locks import OutputLock

log = logging.getLogger("nmt.data.get")

LAYOUTS = ("ml50", "manifest")
_MISSING = "__NULL__"  # what the Neulab TED talks corpus has where a talk lacks a translation
_CHECKED = "._nmt_sha256"  # beside a cached file: its SHA-256 once downloaded and checked


@dataclass
class GetConfig:
    out: str
    dataset_list: str = str(DEFAULT_LIST)
    langs: str = "all"  # comma-separated ML50 codes (paired with English), or all
    datasets: str = "all"  # all, or comma-separated dataset IDs from the list
    exclude: str = ""  # comma-separated dataset IDs to leave out
    max_pairs: int = 0  # cap on pairs taken from each corpus (0: all)
    layout: str = "ml50"
    cache: str | None = None  # mtdata's cache and index directory (default: $MTDATA or ~/.mtdata)

    def check(self) -> None:
        if self.layout not in LAYOUTS:
            raise NmtError(f"--layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if self.max_pairs < 0:
            raise NmtError(f"--max-pairs must be >= 0, got {self.max_pairs}")


def _orientation(entry, pair: str) -> bool:
    """True when the entry's first language is the pair's second (the sides must be swapped)."""
    codes = [lang.lang for lang in entry.did.langs]
    a, b = (langs.get(c) for c in pair.split("-"))
    names = [{a.iso3, a.flores.split("_")[0]}, {b.iso3, b.flores.split("_")[0]}]
    if codes[0] in names[0] and codes[1] in names[1]:
        return False
    if codes[0] in names[1] and codes[1] in names[0]:
        return True
    raise NmtError(f"dataset {entry.did} is {'-'.join(codes)} bitext, not {pair}: fix the dataset list")


# --------------------------------------------------------------------------- one corpus

def _urls(entry) -> list[str]:
    if entry.in_ext == "opus_xces":
        return [entry.url, *entry.in_paths]
    return list(entry.url) if isinstance(entry.url, (list, tuple)) else [entry.url]


def _cache_path(root: Path, entry, url: str) -> Path:
    """Where mtdata's cache keeps a URL's file (its layout, so a cache shared with the mtdata
    command is reused): ``root/host/md5[:4]/md5[4:]/filename``. Computed here because
    ``mtdata.cache`` loads the whole index on import."""
    single = isinstance(entry.url, str) and url == entry.url and entry.in_ext != "opus_xces"
    name = entry.filename if single and entry.filename else url.split("/")[-1]
    digest = hashlib.md5(url.encode("utf-8")).hexdigest()
    return root / (urlparse(url).hostname or "nohost") / digest[:4] / digest[4:] / name


def _parser_paths(root: Path, entry):
    """The local paths mtdata's Parser reads for an entry: plain files, zip members through
    mtdata's ZipPath (read in place, nothing written), tarball members from nmt's own safe
    extraction (``_extracted``)."""
    from mtdata.utils import ZipPath

    locals_ = [_cache_path(root, entry, url) for url in _urls(entry)]
    if entry.in_ext == "opus_xces" or isinstance(entry.url, (list, tuple)):
        return locals_
    local = locals_[0]
    if entry.is_archive and zipfile.is_zipfile(local):
        with zipfile.ZipFile(local) as archive:
            names = archive.namelist()
        return [ZipPath(local, _one(entry, pattern, fnmatch.filter(names, pattern), local)) for pattern in
                entry.in_paths]
    if entry.is_archive and tarfile.is_tarfile(local):
        where = _extracted(local, str(entry.did))
        paths = []
        for pattern in entry.in_paths:
            found = [p for p in where.glob(pattern) if p.is_file()]
            path = Path(_one(entry, pattern, found, local))
            if not path.resolve().is_relative_to(where.resolve()):
                raise NmtError(f"{entry.did}: {pattern} leads outside the extracted {local.name}")
            paths.append(path)
        return paths
    return local


def _one(entry, pattern: str, found: list, local: Path):
    if len(found) != 1:
        raise NmtError(f"{entry.did}: {pattern} matches {len(found)} files in {local.name}, expected one")
    return found[0]


def _extracted(local: Path, label: str) -> Path:
    """The tarball ``local`` unpacked beside it by ``nmt.archives.safe_extract`` (links allowed only
    inside the archive's directory), once per archive content: ``NAME._nmt_x_<sha256 prefix>``."""
    digest = local.with_name(local.name + _CHECKED).read_text().strip()
    target = local.with_name(f"{local.name}._nmt_x_{digest[:16]}")
    if target.is_dir():
        return target
    staging = local.with_name(f"{local.name}._nmt_extracting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        archives.safe_extract(local, staging, internal_links=True)
    except NmtError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NmtError(f"{label}: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, target)
    return target


@contextlib.contextmanager
def _cache_lock(local: Path, label: str):
    """Runs sharing a cache take turns on a cached file (its download, check and extraction)."""
    local.parent.mkdir(parents=True, exist_ok=True)
    lock = local.with_name(local.name + "._nmt_lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another nmt data get is fetching %s; waiting for it", label, local.name)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _download(entry, root: Path, checksums: dict) -> list[dict]:
    """Every file of an entry in mtdata's cache, downloaded and checked once; their provenance."""
    files = []
    for url in _urls(entry):
        if downloads.host_of(url) == "huggingface.co":
            raise NmtError(f"dataset {entry.did} lives on the Hugging Face hub, which nmt data get does not fetch")
        local = _cache_path(root, entry, url)
        stamp = local.with_name(local.name + _CHECKED)
        with _cache_lock(local, str(entry.did)):
            if not (local.exists() and stamp.exists()):
                stamp.unlink(missing_ok=True)
                digest = downloads.fetch(url, local, str(entry.did)) if not local.exists() else sha256_file(local)
                archives.check_archive(local, str(entry.did), downloads.host_of(url))
                stamp.write_text(digest)
            digest = stamp.read_text().strip()
            pinned = checksums.get(url)
            if pinned and pinned.lower() != digest:
                for path in (local, stamp, local.with_name(local.name + "._valid")):
                    path.unlink(missing_ok=True)
                raise NmtError(f"{entry.did}: checksum mismatch for {url}: expected SHA-256 {pinned}, got {digest}; "
                               "the file was deleted")
            local.with_name(local.name + "._valid").touch()  # mtdata's own "complete" flag
            if entry.is_archive and tarfile.is_tarfile(local) and not isinstance(entry.url, (list, tuple)):
                _extracted(local, str(entry.did))
        files.append({"url": url, "cache_path": str(local), "bytes": local.stat().st_size, "sha256": digest})
    return files


def _write_corpus(entry, pair: str, root: Path, max_pairs: int, target: Path) -> tuple[int, int]:
    """Parse an entry with mtdata and write its two sides, line-aligned, into ``target``.
    Returns (pairs written, records skipped because a side was the ``__NULL__`` placeholder)."""
    from mtdata.parser import Parser

    swap = _orientation(entry, pair)
    a, b = pair.split("-")
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n = skipped = 0
    try:
        paths = _parser_paths(root, entry)
        with open(tmp / f"{target.name}.{a}", "w", encoding="utf-8", newline="\n") as out_a, \
                open(tmp / f"{target.name}.{b}", "w", encoding="utf-8", newline="\n") as out_b:
            for rec in Parser(paths, ext=entry.in_ext or None, ent=entry).read_segs(show_pbar=False):
                if max_pairs and n >= max_pairs:
                    break
                if len(rec) < 2 or not isinstance(rec[1], str):
                    raise ValueError(f"record {n + 1} has {len(rec)} field(s), not two sides")
                x, y = (rec[1], rec[0]) if swap else (rec[0], rec[1])
                if x == _MISSING or y == _MISSING:  # Neulab TED's placeholder: no translation
                    skipped += 1
                    continue
                out_a.write(" ".join((x or "").split()) + "\n")  # no line breaks inside a segment
                out_b.write(" ".join((y or "").split()) + "\n")
                n += 1
    except NmtError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # mtdata raises bare Exception / AssertionError / IndexError
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise  # a full disk is the disk's fault, not the data's: exit 3
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "unequal" in text or isinstance(exc, (IndexError, ValueError)):
            raise NmtError(f"{entry.did}: refused, its two sides differ in length ({text})") from None
        raise NmtError(f"{entry.did}: mtdata could not read the downloaded files ({text})") from None
    if n == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise NmtError(f"{entry.did}: no segment pairs found for {pair}")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return n, skipped


def fetch_corpus(entry, pair: str, root: Path, out: Path, max_pairs: int, checksums: dict) -> dict:
    """Download (or reuse) one dataset and write it under ``out/corpora``; its provenance record."""
    did = str(entry.did)
    target = out / "corpora" / did
    info_path = target / "info.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        same_sources = [f["url"] for f in info.get("sources", [])] == _urls(entry)
        if info.get("max_pairs") == max_pairs and info.get("pair") == pair and same_sources:
            return info
    files = _download(entry, root, checksums)
    pairs, placeholders = _write_corpus(entry, pair, root, max_pairs, target)
    a, b = pair.split("-")
    info = {"dataset": did, "pair": pair, "pairs": pairs, "skipped_placeholders": placeholders,
            "max_pairs": max_pairs, "sources": files,
            "outputs": {f"{did}.{code}": sha256_file(target / f"{did}.{code}") for code in (a, b)},
            "cite": list(entry.cite or []), "licence": (entry.meta or {}).get("licence"),
            "licence_note": "mtdata's index has no licence field; see the citation and the source's site"}
    write_json(info_path, info)
    return info


# --------------------------------------------------------------------------- driver

def _assemble(out: Path, chosen: dict, layout: str) -> list[str]:
    written = []
    if layout == "manifest":
        manifest = {"pairs": {pair: {split: [f"corpora/{d}/{d}" for d in ids] for split, ids in splits.items() if ids}
                              for pair, splits in chosen.items()}}
        with atomic_open(out / "manifest.yaml") as handle:
            yaml.safe_dump(manifest, handle, sort_keys=False, allow_unicode=True)
        return ["manifest.yaml"]
    for pair, splits in chosen.items():
        for split, ids in splits.items():
            if not ids:
                continue
            for code in pair.split("-"):
                name = f"{split}.{pair}.{code}"
                with atomic_open(out / name, "wb") as handle:
                    for did in ids:
                        with open(out / "corpora" / did / f"{did}.{code}", "rb") as part:
                            shutil.copyfileobj(part, handle)
                written.append(name)
    return written


def get(cfg: GetConfig) -> dict:
    """Fetch every chosen dataset; write the layout and provenance.json. Returns the provenance."""
    cfg.check()
    spec = load_list(cfg.dataset_list)
    chosen = select(spec, cfg)
    wanted = [(pair, did) for pair, splits in chosen.items() for ids in splits.values() for did in ids]
    entries = resolve_entries(spec, sorted({did for _, did in wanted}), cfg.cache)
    from mtdata import __version__ as mtdata_version

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise NmtError(f"--out {out} is a file; give a directory")
    out.mkdir(parents=True, exist_ok=True)
    root = Path(os.environ["MTDATA"])
    with OutputLock(out, "nmt data get"):
        records, failures = {}, {}
        for pair, did in wanted:
            log.info("%s (%s)", did, pair)
            try:
                records[did] = fetch_corpus(entries[did], pair, root, out, cfg.max_pairs, spec["checksums"])
            except NmtError as exc:
                log.warning("%s failed: %s", did, exc)
                failures[did] = exc
        provenance = {"nmt_version": __version__, "mtdata_version": mtdata_version,
                      "dataset_list": str(cfg.dataset_list), "mtdata_cache": str(root), "max_pairs": cfg.max_pairs,
                      "pairs": chosen, "datasets": records}
        if failures:
            raise NmtError(_failure_line(failures, out, len(records)))
        provenance["files"] = {name: sha256_file(out / name) for name in _assemble(out, chosen, cfg.layout)}
        write_json(out / "provenance.json", provenance)
    return provenance


def _failure_line(failures: dict, out: Path, finished: int) -> str:
    """One line naming every failed dataset: the first one's reason, then what to do about each kind."""
    first = str(next(iter(failures.values())))
    transient = sorted(did for did, exc in failures.items() if exc.transient)
    permanent = sorted(did for did, exc in failures.items() if not exc.transient)
    others = f"; {len(failures)} datasets failed: {', '.join(failures)}" if len(failures) > 1 else ""
    advice = []
    if permanent:
        advice.append(f"fix the dataset list or leave out with --exclude {','.join(permanent)}")
    if transient:
        advice.append(f"rerun to retry {', '.join(transient)} (network)")
    return (f"{first}{others}; {out} keeps its earlier files and {finished} finished dataset(s) under corpora/; "
            + "; ".join(advice))
