"""``nmt finetune``: ``train`` from a pretrained mBART bundle with the ML50 recipe's settings under the
caller's config, on the prepared directions a ``mode`` chooses.

Light to import (the command line reads its defaults at start-up): the training engine is
imported when a run starts.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nmt import langs
from nmt.data.manifest import PreparedData
from nmt.errors import NmtError

if TYPE_CHECKING:
    from nmt.config import TrainConfig
    from nmt.training.rundir import TrainResult

# The ML50 recipe's fine-tuning settings (Tang et al. 2020, fairseq examples/multilingual).
ML50_FINETUNE_DEFAULTS = {
    "training": {"lr": 3e-05, "warmup_updates": 2500, "label_smoothing": 0.2, "sampling_temperature": 1.5,
                 "max_tokens": 1024, "update_freq": 2, "max_updates": 40000, "seed": 222},
    "model": {"dropout": 0.3, "attention_dropout": 0.1},
}
FINETUNE_MODES = ("many-to-many", "one-to-many", "many-to-one")


def finetune_directions(data: PreparedData, mode: str = "many-to-many") -> list[str]:
    """The prepared directions a fine-tuning ``mode`` trains on (English-centric one-to-many / many-to-one)."""
    if mode not in FINETUNE_MODES:
        raise NmtError(f"unknown fine-tuning mode {mode!r}; choose one of {', '.join(FINETUNE_MODES)}")
    prepared = list(data.directions)
    chosen = {"many-to-many": prepared,
              "one-to-many": [d for d in prepared if d.startswith(langs.ENGLISH + "-")],
              "many-to-one": [d for d in prepared if d.endswith("-" + langs.ENGLISH)]}[mode]
    if not chosen:
        raise NmtError(f"--mode {mode}: the prepared data has no such direction ({', '.join(prepared)})")
    return chosen


def finetune_config(pretrained, data, mode: str = "many-to-many", config_path=None, overrides=()) -> TrainConfig:
    """A fine-tuning run's config: the ML50 recipe's settings, then ``config_path``, then ``overrides``."""
    directions = finetune_directions(PreparedData.load(data), mode)
    from nmt.config import load_train_config

    base = {**ML50_FINETUNE_DEFAULTS, "directions": directions, "init": {"pretrained": str(pretrained)},
            "data": str(data)}
    return load_train_config(config_path, overrides, base=base)


def finetune(pretrained, data, output, mode: str = "many-to-many", config_path=None, overrides=(),
             reset: bool = False, stop=None) -> TrainResult:
    """Fine-tune a pretrained mBART bundle on many directions at once (ML50 recipe defaults); ``stop``
    as for ``nmt.training.translation.train``."""
    from nmt.training.translation import train

    return train(finetune_config(pretrained, data, mode, config_path, overrides), output, reset=reset, stop=stop)

