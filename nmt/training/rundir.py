"""A training run's directory: one process at a time, resumed only with the configuration it started with.

The directory becomes the model bundle. Running the same command again resumes
from ``checkpoints/checkpoint_last.pt``; a changed configuration (or changed
inputs) is refused with the list of differences unless ``--reset``, which
discards the run first.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from nmt.bundle import Bundle
from nmt.config import TrainConfig, config_differences, save_config
from nmt.data.manifest import PreparedData
from nmt.errors import NmtError
from nmt.fairseq_backend.settings import LoopResult
from nmt.fileio import read_json, read_yaml
from nmt.locks import OutputLock

LOG_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"


@dataclass(frozen=True)
class TrainResult:
    """What a training command did: the bundle it wrote, how training ended, the best checkpoint."""

    bundle: Path
    updates: int
    stop_reason: str
    best_metric: str | None  # chrf | bleu | loss: what picked the best checkpoint
    best_score: float | None  # for loss: minus the validation loss
    best_update: int | None
    training_seconds: float
    cpu_seconds: float = 0.0  # CPU time of the training process, over resumes
    lr_schedule: dict | None = None  # the learning-rate schedule followed (training.json's lr_schedule)
    signal: int | None = None  # the signal whose stop request ended training (after saving); None otherwise


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

    @contextlib.contextmanager
    def logging_to(self, name: str):
        """While the block runs, the log (all loggers) also goes to ``name`` in the run directory."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        root = logging.getLogger()
        if any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()) for h in root.handlers):
            yield
            return
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            handler.close()

    def training_manifest(self) -> dict:
        """``training.json`` as written by the hooks ({} when there is none)."""
        path = self.path / "training.json"
        return read_json(path) if path.is_file() else {}

    def result(self, loop: LoopResult | None) -> TrainResult:
        """The run's result, from ``training.json`` (rank 0 writes it) and how the loop ended in this process
        (None: fairseq ran it in processes of its own)."""
        record = self.training_manifest()
        best = record.get("best") or {}
        return TrainResult(bundle=self.path, updates=int(record.get("updates", 0)),
                           stop_reason=str(record.get("stop_reason", "")), best_metric=best.get("metric"),
                           best_score=best.get("score"), best_update=best.get("update"),
                           training_seconds=float(record.get("training_seconds", 0.0)),
                           cpu_seconds=float(record.get("cpu_seconds", 0.0)), lr_schedule=record.get("lr_schedule"),
                           signal=loop.signal if loop is not None else None)

