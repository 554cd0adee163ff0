"""The dataset list of ``nmt data get`` and how its IDs become mtdata entries.

A list (``recipes/data/ml50.yaml`` by default) maps each pair and split to
dataset IDs of mtdata's index; it may add ``entries`` the index lacks (a
mirror, a local server), pin ``checksums`` (URL -> SHA-256) and name
``https_hosts``: hosts whose ``http://`` URLs (as mtdata's index has many)
are fetched over ``https://``. Entries are checked before anything is
fetched: a dataset ID, a ``filename`` or an archive member pattern that could
lead a path out of the cache or the output directory is refused.

mtdata reads the ``MTDATA`` environment variable (cache and index directory)
when it is first imported and logs its progress on the root logger;
``import_mtdata`` handles both.
"""
from __future__ import annotations

import logging
import os
import posixpath
from pathlib import Path
from urllib.parse import urlparse

from nmt import langs
from nmt.data import corpus as corpora
from nmt.errors import NmtError

DEFAULT_LIST = Path(__file__).resolve().parents[2] / "recipes" / "data" / "ml50.yaml"
SPLITS = ("train", "valid", "test")


def _split_ids(text: str) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


# --------------------------------------------------------------------------- the dataset list

def load_list(path) -> dict:
    """Read a dataset list: ``pairs`` (pair -> split -> IDs), optional ``entries`` (datasets
    mtdata's index lacks, e.g. a mirror), ``checksums`` (URL -> SHA-256) and ``https_hosts``
    (hosts whose ``http://`` URLs are fetched over ``https://``)."""
    path = Path(path)
    spec = corpora.read_pairs_yaml(path, "dataset list", "pairs: {de_DE-en_XX: {train: [Statmt-europarl-10-deu-eng]}}")
    pairs = {}
    for name, splits in spec["pairs"].items():
        src, tgt = langs.parse_direction(str(name))
        if not isinstance(splits, dict) or set(splits) - set(SPLITS):
            raise NmtError(f"{path}: pair {name} must map {', '.join(SPLITS)} to lists of dataset IDs")
        pairs[f"{src}-{tgt}"] = {split: [str(x) for x in (splits.get(split) or [])] for split in SPLITS}
    checksums = spec.get("checksums") or {}
    hosts = spec.get("https_hosts") or []
    if not isinstance(checksums, dict) or not all(isinstance(v, str) and len(v) == 64 for v in checksums.values()):
        raise NmtError(f"{path}: checksums must map URLs to SHA-256 hex digests (64 characters)")
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h and "/" not in h for h in hosts):
        raise NmtError(f"{path}: https_hosts must be a list of host names")
    return {"pairs": pairs, "entries": spec.get("entries") or [], "checksums": checksums, "https_hosts": hosts}


def secure_url(url: str, https_hosts) -> str:
    """``url`` with ``http://`` replaced by ``https://`` when its host is one of ``https_hosts``."""
    parsed = urlparse(url)
    if parsed.scheme == "http" and parsed.hostname in set(https_hosts):
        return "https://" + url[len("http://"):]
    return url


def select(spec: dict, cfg: GetConfig) -> dict:
    """The pairs and dataset IDs to fetch: {pair: {split: [IDs]}}."""
    pairs = spec["pairs"]
    if cfg.langs.strip() != "all":
        wanted = langs.check_codes(_split_ids(cfg.langs))
        chosen = {name: splits for name, splits in pairs.items()
                  if any(code in name.split("-") for code in wanted if code != langs.ENGLISH)}
        missing = [c for c in wanted if c != langs.ENGLISH and not any(c in n.split("-") for n in chosen)]
        if missing:
            raise NmtError(f"the dataset list has no pair for {', '.join(missing)}")
        pairs = chosen
    listed = {did for splits in pairs.values() for ids in splits.values() for did in ids}
    keep = listed if cfg.datasets.strip() == "all" else set(_split_ids(cfg.datasets))
    drop = set(_split_ids(cfg.exclude))
    unknown = sorted((keep - listed) | (drop - listed))
    if unknown:
        raise NmtError(f"dataset {unknown[0]} is not listed for the chosen pairs; see the dataset list")
    keep -= drop
    result = {}
    for name, splits in pairs.items():
        chosen = {split: [d for d in ids if d in keep] for split, ids in splits.items()}
        if chosen["train"]:
            result[name] = chosen
    if not result:
        raise NmtError("no training corpus is left to fetch after --langs / --datasets / --exclude")
    return result


# --------------------------------------------------------------------------- mtdata

def import_mtdata(cache: str | None):
    """Import mtdata with its cache directory set, and undo its global logging set-up."""
    wanted = str(Path(cache or os.environ.get("MTDATA") or "~/.mtdata").expanduser().resolve())
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    os.environ["MTDATA"] = wanted
    import mtdata
    from mtdata import pbar

    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    logging.getLogger("mtdata").setLevel(logging.WARNING)
    if _quiet_mtdata not in root.filters:  # mtdata logs its progress (INFO) on the root logger
        root.addFilter(_quiet_mtdata)
    pbar.pbar_man.enabled = False
    if str(mtdata.cache_dir.resolve()) != wanted:
        raise NmtError(f"mtdata was already imported with cache {mtdata.cache_dir}; run nmt data get in a new process")
    return mtdata


def _quiet_mtdata(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or f"{os.sep}mtdata{os.sep}" not in record.pathname


def resolve_entries(spec: dict, ids, cache: str | None) -> dict:
    """Dataset ID -> mtdata Entry: the list's own ``entries`` first, then mtdata's index; URLs
    upgraded to https for the list's ``https_hosts``; names checked (see ``_check_entry``)."""
    import_mtdata(cache)
    from mtdata.entry import DatasetId, Entry

    entries = {}
    for item in spec["entries"]:
        fields = dict(item) if isinstance(item, dict) else {}
        name = str(fields.pop("id", item))
        try:
            url = fields.pop("url")
            entries[name] = Entry(did=DatasetId.parse(name), url=tuple(url) if isinstance(url, list) else url,
                                  **fields)
        except Exception as exc:  # mtdata checks with assert and bare Exception
            raise NmtError(f"dataset list entry {name}: {type(exc).__name__} {exc} (fields: id, url, ext, in_paths, "
                           "in_ext, cols, filename)") from None
    needed = [did for did in ids if did not in entries]
    if needed:
        from mtdata.index import INDEX  # builds or loads mtdata's index (seconds, hundreds of MB)

        for did in needed:
            try:
                parsed = DatasetId.parse(did)
            except Exception:
                raise NmtError(f"{did} is not a dataset ID (group-name-version-lang1-lang2)") from None
            if parsed not in INDEX:
                raise NmtError(f"dataset {did} is not in mtdata {import_mtdata(cache).__version__}'s index")
            entries[did] = INDEX[parsed]
    chosen = {did: entries[did] for did in ids}
    for entry in chosen.values():
        _check_entry(entry)
        if isinstance(entry.url, str):
            entry.url = secure_url(entry.url, spec["https_hosts"])
        else:
            entry.url = tuple(secure_url(u, spec["https_hosts"]) for u in entry.url)
        if entry.in_ext == "opus_xces":
            entry.in_paths = [secure_url(u, spec["https_hosts"]) for u in entry.in_paths]
    return chosen


def _plain_name(text) -> bool:
    return bool(text) and text not in (".", "..") and not any(c in text for c in "/\\\0")


def _check_entry(entry) -> None:
    """Refuse what could make a path leave the cache or the output directory: a dataset ID or a
    ``filename`` that is not a plain file name, an archive member pattern that is absolute or
    climbs with ``..``."""
    did = str(entry.did)
    if not _plain_name(did):
        raise NmtError(f"dataset ID {did!r} cannot be a directory name (no '/', '\\' or NUL)")
    if entry.filename is not None and not _plain_name(str(entry.filename)):
        raise NmtError(f"dataset {did}: filename {entry.filename!r} must be a plain file name (no '/', '\\', "
                       "'..'): it names the file in the download cache")
    if entry.in_ext != "opus_xces":
        for pattern in entry.in_paths or []:
            pattern = str(pattern)
            if posixpath.isabs(pattern) or ".." in pattern.replace("\\", "/").split("/") or "\0" in pattern:
                raise NmtError(f"dataset {did}: archive member {pattern!r} must be a relative path inside the "
                               "archive (no leading '/', no '..')")
