"""The training loop's interface: the typed settings it is handed, the hooks it calls back,
the state it keeps in every checkpoint, and what it returns.

Settings and hooks cross into fairseq's distributed start-up (a spawned rank gets a
pickled copy), so they hold plain data only; the state goes into checkpoints as a plain
dict (``LoopState.to_dict``), which the safe loader (``weights_only=True``) can read back.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Generation:
    """What validation by translation needs to build a generator: the model's language tokens."""

    languages: tuple
    lang_tok_style: str
    encoder_langtok: str | None
    decoder_langtok: bool


@dataclass(frozen=True)
class LoopSettings:
    validate_every: int  # updates between validations (each also saves a checkpoint)
    save_every: int  # updates between checkpoints
    keep_last: int  # numbered checkpoints kept
    metric: str = "chrf"  # what picks the best checkpoint: chrf | bleu | loss
    patience: int = 0  # validations without improvement before stopping (0: never)
    max_time_minutes: float = 0.0  # training-time budget across resumes (0: none)
    max_cpu_minutes: float = 0.0  # CPU-time budget of the training process across resumes (0: none)
    lr_schedule: str = "inverse_sqrt"  # budget: nmt's schedule fitted to the budget; else fairseq's own
    lr: float = 1e-3  # peak learning rate (budget schedule)
    warmup_updates: int = 0  # budget schedule: 0 = a share of the updates the budget allows
    final_lr_ratio: float = 0.0
    lr_decay_share: float = 0.2
    cpu_bf16: bool = False  # bfloat16 autocast of the training step on CPU
    threads: int = 0  # torch CPU threads (0: torch's default)
    finetune: bool = False  # starts from a pretrained model: its bookkeeping and clock do not carry over
    generation: Generation | None = None  # validation by translation; None: by loss only (denoising)

    @classmethod
    def from_config(cls, cfg, device: str, metric: str | None = None, generation: Generation | None = None,
                    finetune: bool = False) -> "LoopSettings":
        """Settings from a ``TrainConfig``; ``metric`` overrides ``validation.metric``."""
        return cls(validate_every=cfg.validation.every_updates, save_every=cfg.checkpoint.every_updates,
                   keep_last=cfg.checkpoint.keep_last, metric=metric or cfg.validation.metric,
                   patience=cfg.validation.patience, max_time_minutes=cfg.training.max_time_minutes,
                   max_cpu_minutes=cfg.training.max_cpu_minutes, lr_schedule=cfg.training.lr_schedule,
                   lr=cfg.training.lr, warmup_updates=cfg.training.warmup_updates,
                   final_lr_ratio=cfg.training.final_lr_ratio, lr_decay_share=cfg.training.lr_decay_share,
                   cpu_bf16=device == "cpu" and cfg.training.precision == "bf16",
                   threads=(cfg.training.threads or os.cpu_count() or 1) if device == "cpu" else 0,
                   finetune=finetune, generation=generation)


@dataclass(frozen=True)
class StartInfo:
    """What the loop reports before its first update."""

    parameters: int
    start_update: int
    start_epoch: int
    sampling: dict  # direction -> {pairs, share, sampled_pairs_per_epoch} under temperature sampling
    world_size: int
    device: str  # cpu | cuda


@dataclass(frozen=True)
class Scores:
    """A hook's score of the model at a validation: ``score`` is maximised (None: judge by loss);
    ``details`` (per-direction BLEU / chrF, ...) go into the validation history as they are."""

    score: float | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Validation:
    """One entry of the validation history (``training.json``'s ``validations``)."""

    update: int
    valid_loss: float | None
    score: float | None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"update": self.update, "valid_loss": self.valid_loss, "score": self.score, **self.details}

    @classmethod
    def from_dict(cls, record: dict) -> "Validation":
        details = {k: v for k, v in record.items() if k not in ("update", "valid_loss", "score")}
        return cls(int(record["update"]), record.get("valid_loss"), record.get("score"), details)


@dataclass
class LoopState:
    """nmt's bookkeeping, saved in every checkpoint: the best score and where, validations without
    improvement (early stopping), and the validation history."""

    best_score: float | None = None
    best_update: int | None = None
    bad_validations: int = 0
    history: list[Validation] = field(default_factory=list)
    cpu_seconds: float = 0.0  # CPU time of the training process, summed over resumes (the CPU budget)

    def to_dict(self) -> dict:
        """The checkpoint's ``extra_state["nmt"]``: plain data only."""
        return {"best_score": self.best_score, "best_update": self.best_update,
                "bad_validations": self.bad_validations, "history": [v.to_dict() for v in self.history],
                "cpu_seconds": self.cpu_seconds}

    @classmethod
    def from_dict(cls, saved: dict | None) -> "LoopState":
        saved = saved or {}
        return cls(best_score=saved.get("best_score"), best_update=saved.get("best_update"),
                   bad_validations=int(saved.get("bad_validations") or 0),
                   history=[Validation.from_dict(v) for v in saved.get("history") or []],
                   cpu_seconds=float(saved.get("cpu_seconds") or 0.0))


@dataclass(frozen=True)
class Verdict:
    """What rank 0 decided from one validation (broadcast to the other ranks as plain data: fairseq
    unpickles what it receives with torch's weights-only loader, which refuses nmt's classes)."""

    improved: bool  # a new best checkpoint
    stop: bool  # early stopping
    state: LoopState

    def to_dict(self) -> dict:
        return {"improved": self.improved, "stop": self.stop, "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, sent: dict) -> "Verdict":
        return cls(improved=bool(sent["improved"]), stop=bool(sent["stop"]), state=LoopState.from_dict(sent["state"]))


@dataclass(frozen=True)
class LoopResult:
    """How training ended."""

    state: LoopState
    updates: int
    stop_reason: str
    training_seconds: float  # cumulative over resumes
    cpu_seconds: float  # CPU time, cumulative over resumes
    lr_schedule: dict  # the learning-rate schedule followed (kind, and the budget schedule's numbers)
    epoch: int
    signal: int | None = None  # the signal of the StopRequest that stopped it (after saving); None otherwise


class Hooks(Protocol):
    """What the training loop calls back into (``nmt.training.hooks.TrainHooks``; must be picklable).

    Only rank 0 calls them."""

    def on_start(self, info: StartInfo) -> None:
        """Before the first update."""

    def on_log(self, update: int, stats: dict) -> None:
        """Every ``log_every`` updates: fairseq's smoothed training statistics (loss, ppl, wps, ...), lr, epoch."""

    def validate(self, generator, update: int, valid_loss: float | None) -> Scores:
        """Score the model (``generator`` translates)."""
        return Scores()

    def on_checkpoint(self, update: int, path: str, best: bool, state: LoopState) -> None:
        """After a checkpoint was written."""

    def on_end(self, result: LoopResult) -> None:
        """Training stopped."""
