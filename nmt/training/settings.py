"""What a training command hands the training loop: typed settings, and the hooks it calls back.

Both cross into fairseq's distributed start-up (a spawned rank gets a pickled
copy), so they hold plain data only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


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


class Hooks:
    """What the training loop calls back into (``nmt.training.hooks.TrainHooks``; must be picklable).

    Only rank 0 calls them."""

    def on_start(self, info: dict) -> None:
        """Before the first update: parameters, start_update, start_epoch, sampling, world_size, device."""

    def on_log(self, update: int, stats: dict) -> None:
        """Every ``log_every`` updates: fairseq's smoothed training statistics, lr, epoch."""

    def validate(self, generator, update: int, valid_loss: float | None) -> tuple[float | None, dict]:
        """Score the model (``generator`` translates); (score to maximise or None, details for the history)."""
        return None, {}

    def on_checkpoint(self, update: int, path: str, best: bool, state: dict) -> None:
        """After a checkpoint was written; ``state``: best_score, best_update, bad_validations, history."""

    def on_end(self, state: dict) -> None:
        """Training stopped: the state of ``on_checkpoint`` plus updates, stop_reason, training_seconds, epoch."""
