"""Finished-or-not work directories, and the fingerprints that say whether one is current.

A ``Stage`` is a directory built under a temporary name (``.NAME.tmp``) and renamed
into place when complete, with a ``stage.json`` holding the ``fingerprint`` of its
inputs and settings. A rerun skips a stage whose fingerprint matches and redoes
one whose inputs changed; an interrupted build never looks finished. ``nmt
prepare`` builds its clean / spm / bin stages this way, and ``nmt pretrain``
fingerprints the prepared data it builds its denoising data from.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from nmt.fileio import replace_dir, write_json

MARKER = "stage.json"


def fingerprint(obj) -> str:
    """A short, stable hash of a JSON-able description of inputs and settings."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_stamp(path) -> list:
    """What identifies an input file without reading it: resolved path, size, modification time."""
    st = os.stat(path)
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def stage_fingerprint(directory) -> str:
    """The fingerprint recorded in a finished stage directory."""
    return json.loads((Path(directory) / MARKER).read_text())["fingerprint"]


class Stage:
    """A directory built under a temporary name and renamed into place when complete."""

    def __init__(self, out: Path, name: str, fingerprint: str):
        self.final = out / name
        self.tmp = out / f".{name}.tmp"
        self.fingerprint = fingerprint

    def done(self) -> bool:
        if not (self.final / MARKER).is_file():
            return False
        try:
            return stage_fingerprint(self.final) == self.fingerprint
        except (ValueError, KeyError):
            return False

    def begin(self) -> Path:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        return self.tmp

    def abort(self) -> None:
        """Remove the half-built stage (the finished one, if any, stays)."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def commit(self, info: dict) -> None:
        write_json(self.tmp / MARKER, {"fingerprint": self.fingerprint, **info})
        replace_dir(self.tmp, self.final)
