"""A training run's directory: one process at a time, resumed only with the configuration it started with.

The directory becomes the model bundle. Running the same command again resumes
from ``checkpoints/checkpoint_last.pt``; a changed configuration (or changed
inputs) is refused with the list of differences unless ``--reset``, which
discards the run first.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from nmt.bundle import Bundle
from nmt.config import TrainConfig, config_differences, save_config
from nmt.data.manifest import PreparedData
from nmt.errors import NmtError
from nmt.fileio import read_json, read_yaml
from nmt.locks import OutputLock

LOG_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"


class RunDir:
    def __init__(self, path, purpose: str):
        """``purpose`` finishes the error for a path that is a file: "give a directory for {purpose}"."""
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NmtError(f"--output {self.path} is a file; give a directory for {purpose}")

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def resuming(self) -> bool:
        """Whether a run has saved a checkpoint here (the next start continues it)."""
        return (self.checkpoints / "checkpoint_last.pt").is_file()

    def lock(self, command: str) -> OutputLock:
        """The directory's lock (created if needed), held by one nmt process at a time."""
        self.path.mkdir(parents=True, exist_ok=True)
        return OutputLock(self.path, command)

    # -- resume or start over --------------------------------------------------
    def config_differences(self, cfg: TrainConfig) -> list[str]:
        """How ``cfg`` differs from the configuration saved by the run here (none saved: no differences)."""
        saved = self.path / "config.yaml"
        if not saved.is_file():
            return []
        return config_differences(read_yaml(saved, "saved config") or {}, cfg.to_dict())

    def refuse_changed(self, what: str, differences: list[str]) -> None:
        """One line listing the differences, when there are any, for a run that would resume."""
        if differences:
            raise NmtError(f"{self.path} holds {what} with a different configuration ({'; '.join(differences)}); "
                           "pass --reset to discard it and start over, or choose another --output")

    def reset(self, names: tuple | None = None) -> None:
        """Delete ``names`` from the directory, or everything in it but the lock."""
        if names is None:
            targets = [child for child in self.path.iterdir() if child.name != OutputLock.NAME]
        else:
            targets = [self.path / name for name in names]
        for target in targets:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()

    # -- what the run directory holds -------------------------------------------
    def install(self, source: Path, name: str) -> None:
        """Copy a file in under ``name``, atomically (a reader sees the old or the new file)."""
        tmp = self.path / f".{name}.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, self.path / name)

    def save_config(self, cfg: TrainConfig) -> None:
        save_config(cfg, self.path / "config.yaml")

    def write_bundle(self, data: PreparedData, max_positions: int, **fields) -> Bundle:
        """The run's bundle.json: the prepared data's normalization and romanization, the model's longest
        source, ``fields``."""
        romanization = data.romanization.record() if data.romanization else None
        bundle = Bundle(path=self.path, normalization=data.normalization, max_source_positions=max_positions,
                        tags=list(data.tags), romanization=romanization, **fields)
        bundle.save()
        return bundle

    def log_to_file(self, name: str) -> None:
        """Send the log (all loggers) to ``name`` in the run directory too, once."""
        log_to_file(self.path / name)

    def training_manifest(self) -> dict:
        """``training.json`` as written by the hooks ({} when there is none)."""
        path = self.path / "training.json"
        return read_json(path) if path.is_file() else {}


def log_to_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()) for h in root.handlers):
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
