"""Typed training configuration: YAML in, validated dataclasses out, YAML saved next to the model.

One ``TrainConfig`` says everything about a run: the prepared data, the
directions, the model shape, the optimiser, sampling, budgets, validation and
checkpointing. ``nmt train --config run.yaml --set training.lr=5e-4`` loads the
YAML, applies ``--set`` overrides (dotted keys) and validates; an unknown key
or a bad value is an error naming the key and the valid choices.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nmt.errors import NmtError
from nmt.fileio import atomic_open, parse_yaml, read_yaml, shorten

# Model shapes. tiny: learns something on 2 CPU cores within minutes (quickstart);
# small: an hour of CPU; base / big: the transformer-base / big shapes, for GPUs.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=128, ffn_dim=256, heads=4, encoder_layers=2, decoder_layers=2,
                 dropout=0.1, attention_dropout=0.0, max_positions=256),
    "small": dict(embed_dim=256, ffn_dim=1024, heads=4, encoder_layers=3, decoder_layers=3,
                  dropout=0.1, attention_dropout=0.1, max_positions=512),
    "base": dict(embed_dim=512, ffn_dim=2048, heads=8, encoder_layers=6, decoder_layers=6,
                 dropout=0.1, attention_dropout=0.1, max_positions=1024),
    "big": dict(embed_dim=1024, ffn_dim=4096, heads=16, encoder_layers=6, decoder_layers=6,
                dropout=0.3, attention_dropout=0.1, max_positions=1024),
}


@dataclass
class ModelConfig:
    preset: str = "tiny"
    # transformer: fairseq's transformer (sinusoidal positions, ReLU);
    # mbart: the mBART layout (learned positions, embedding layer norm, GELU), e.g. to train
    # from scratch the same architecture that nmt pretrain produces
    arch: str = "transformer"
    # Anything below left as None takes the preset's value.
    embed_dim: int | None = None
    ffn_dim: int | None = None
    heads: int | None = None
    encoder_layers: int | None = None
    decoder_layers: int | None = None
    dropout: float | None = None
    attention_dropout: float | None = None
    max_positions: int | None = None
    normalize_before: bool = True  # pre-norm: stabler for deep/multilingual models
    share_all_embeddings: bool = True  # one shared vocabulary, so one embedding matrix

    def resolved(self) -> dict[str, Any]:
        values = dict(PRESETS[self.preset])
        for key in values:
            if getattr(self, key) is not None:
                values[key] = getattr(self, key)
        values["arch"] = self.arch
        values["normalize_before"] = self.normalize_before
        values["share_all_embeddings"] = self.share_all_embeddings
        return values


@dataclass
class TrainingConfig:
    max_updates: int = 2000
    max_epochs: int = 0  # 0: no limit
    max_time_minutes: float = 0.0  # 0: no limit; wall-clock training budget
    lr: float = 1e-3
    warmup_updates: int = 400
    max_tokens: int = 4096
    update_freq: int = 1  # gradient accumulation
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    weight_decay: float = 0.0
    sampling_temperature: float = 5.0  # over directions; 1 = proportional to data size
    encoder_langtok: str = "src"  # src | tgt: which language token the source starts with
    decoder_langtok: bool = True  # target starts with the target-language token
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | fp16 | bf16 (GPU only)
    threads: int = 0  # CPU threads for torch (0: all cores)
    log_every: int = 50


@dataclass
class ValidationConfig:
    every_updates: int = 500
    directions: list = field(default_factory=list)  # empty: all trained directions
    max_sentences: int = 200  # per direction (the first N lines of the validation split)
    beam: int = 1  # greedy keeps validation cheap
    max_len_a: float = 1.5  # output length cap: a * source length + b
    max_len_b: int = 10
    metric: str = "chrf"  # chrf | bleu | loss: what picks the best checkpoint
    patience: int = 0  # stop after this many validations without improvement (0: never)


@dataclass
class CheckpointConfig:
    every_updates: int = 500  # also saved at every validation and at the end
    keep_last: int = 5  # numbered checkpoints kept (for nmt average)


@dataclass
class DistributedConfig:
    world_size: int = 1
    rank: int = 0
    backend: str = "auto"  # auto (nccl on GPU, gloo on CPU) | nccl | gloo
    init_method: str = ""  # e.g. tcp://host:port; empty: single process


@dataclass
class InitConfig:
    """Start from a pretrained model (fine-tuning) instead of random weights."""

    pretrained: str = ""  # an mBART bundle directory


@dataclass
class DenoisingConfig:
    """mBART-style noising for ``nmt pretrain`` (defaults: mBART's)."""

    mask: float = 0.3  # fraction of tokens masked (in Poisson-length spans)
    mask_random: float = 0.1  # of those, replaced by random tokens instead of <mask>
    poisson_lambda: float = 3.5
    permute_sentences: int = 1  # fairseq takes it as an int (1: permute sentences in every sample)
    tokens_per_sample: int = 256
    sampling_alpha: float = 0.7  # language sampling: p ~ n^alpha


@dataclass
class TrainConfig:
    data: str = ""  # a prepared-data directory (output of nmt prepare)
    directions: list = field(default_factory=list)  # empty: every prepared direction
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    init: InitConfig = field(default_factory=InitConfig)
    denoising: DenoisingConfig = field(default_factory=DenoisingConfig)

    def check(self) -> None:
        _choice("model.preset", self.model.preset, PRESETS)
        _choice("model.arch", self.model.arch, ("transformer", "mbart"))
        _choice("training.encoder_langtok", self.training.encoder_langtok, ("src", "tgt"))
        _choice("training.device", self.training.device, ("auto", "cpu", "cuda"))
        _choice("training.precision", self.training.precision, ("fp32", "fp16", "bf16"))
        _choice("validation.metric", self.validation.metric, ("chrf", "bleu", "loss"))
        _choice("distributed.backend", self.distributed.backend, ("auto", "nccl", "gloo"))
        if not self.data:
            raise NmtError("config key 'data' is required: the directory written by nmt prepare")
        positive = {
            "training.max_updates": self.training.max_updates, "training.max_tokens": self.training.max_tokens,
            "training.update_freq": self.training.update_freq, "validation.every_updates": self.validation.every_updates,
            "validation.beam": self.validation.beam, "validation.max_sentences": self.validation.max_sentences,
            "checkpoint.every_updates": self.checkpoint.every_updates, "checkpoint.keep_last": self.checkpoint.keep_last,
            "distributed.world_size": self.distributed.world_size, "training.log_every": self.training.log_every,
        }
        for key, value in positive.items():
            if value < 1:
                raise NmtError(f"config key {key} must be >= 1, got {value}")
        if self.training.lr <= 0 or self.training.sampling_temperature <= 0:
            raise NmtError("config keys training.lr and training.sampling_temperature must be > 0")
        if not 0 <= self.distributed.rank < self.distributed.world_size:
            raise NmtError(f"distributed.rank must be in [0, {self.distributed.world_size}), got {self.distributed.rank}")
        if self.training.warmup_updates < 1:
            raise NmtError(f"config key training.warmup_updates must be >= 1, got {self.training.warmup_updates}")
        for key, value in (("training.max_time_minutes", self.training.max_time_minutes),
                           ("training.max_epochs", self.training.max_epochs),
                           ("validation.patience", self.validation.patience)):
            if value < 0:
                raise NmtError(f"config key {key} must be >= 0 (0: no limit), got {value}")
        if not self.training.decoder_langtok and self.training.encoder_langtok != "tgt":
            raise NmtError("with training.decoder_langtok false the target language must be in the source: "
                           "set training.encoder_langtok to tgt (or keep decoder_langtok true)")
        if self.model.arch == "mbart" and not self.model.share_all_embeddings:
            raise NmtError("model.arch mbart always shares its embeddings; model.share_all_embeddings must be true")
        model = self.model.resolved()
        if model["embed_dim"] % model["heads"]:
            raise NmtError(f"model.embed_dim ({model['embed_dim']}) must be divisible by model.heads ({model['heads']})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        raise NmtError(f"config key {key}: {value!r} is not valid; choose one of: {', '.join(choices)}")


def _build(cls, values: dict, prefix: str = ""):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise NmtError(f"config key {prefix.rstrip('.') or '(top)'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise NmtError(
            f"unknown config key {prefix}{unknown[0]}; valid keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in values.items():
        spec = fields[name]
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(f"{prefix}{name}", value, default)
    return cls(**kwargs)


def _coerce(key: str, value, default):
    if default is None:
        return value
    if value is None:
        raise NmtError(f"config key {key} needs a value (default {default!r}); null is not allowed here")
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise NmtError(f"config key {key} must be true or false, got {value!r}")
    if kind is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return value
        raise NmtError(f"config key {key} must be a list, got {value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise NmtError(f"config key {key} must be {kind.__name__}, got {shorten(repr(value), 80)}") from None


def _model_optional_int(cfg: TrainConfig) -> None:
    # ModelConfig fields default to None (take the preset); coerce YAML strings/ints.
    for f in dataclasses.fields(ModelConfig):
        value = getattr(cfg.model, f.name)
        if value is None or f.name in ("preset", "arch", "normalize_before", "share_all_embeddings"):
            continue
        target = float if "dropout" in f.name else int
        try:
            setattr(cfg.model, f.name, target(value))
        except (TypeError, ValueError, OverflowError):
            raise NmtError(f"config key model.{f.name} must be {target.__name__}, "
                           f"got {shorten(repr(value), 80)}") from None


def parse_overrides(items) -> dict:
    """``["training.lr=5e-4", "model.preset=small"]`` -> nested dict (values parsed as YAML scalars)."""
    nested: dict = {}
    for item in items:
        if "=" not in item:
            raise NmtError(f"bad --set {item!r}: write it as key=value, e.g. training.lr=5e-4")
        key, raw = item.split("=", 1)
        value = parse_yaml(raw, f"the value of --set {shorten(key, 60)}") if raw.strip() else ""
        node = nested
        parts = key.strip().split(".")
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                section = ".".join(parts[: depth + 1])
                raise NmtError(f"--set {shorten(key, 80)}: {section} was set to a value by an earlier --set, so it "
                               "cannot also have keys")
        node[parts[-1]] = value
    return nested


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_train_config(path: str | None = None, overrides=(), base: dict | None = None) -> TrainConfig:
    values: dict = dict(base or {})
    if path:
        loaded = read_yaml(path, "config file") or {}
        if not isinstance(loaded, dict):
            raise NmtError(f"{path} must be a YAML mapping of config keys")
        # a relative data path is relative to the config file
        if isinstance(loaded.get("data"), str) and loaded["data"] and not Path(loaded["data"]).is_absolute():
            candidate = Path(path).parent / loaded["data"]
            if candidate.exists() and not Path(loaded["data"]).exists():
                loaded["data"] = str(candidate)
        values = _merge(values, loaded)
    values = _merge(values, parse_overrides(overrides))
    cfg = _build(TrainConfig, values)
    _model_optional_int(cfg)
    cfg.check()
    return cfg


def save_config(cfg: TrainConfig, path) -> None:
    with atomic_open(path) as out:
        yaml.safe_dump(cfg.to_dict(), out, sort_keys=False, allow_unicode=True)


# Keys that may change when a run is resumed (budgets, bookkeeping); any other
# difference means the checkpoint was trained with another configuration.
RESUMABLE_KEYS = {
    "training.max_updates", "training.max_epochs", "training.max_time_minutes", "training.log_every",
    "training.threads", "validation.patience", "validation.every_updates", "checkpoint.every_updates",
    "checkpoint.keep_last", "validation.max_sentences", "validation.beam",
    "distributed.rank", "distributed.init_method",
}


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, f"{name}.")
        elif a != b and name not in RESUMABLE_KEYS:
            diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs
