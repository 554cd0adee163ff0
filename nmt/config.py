"""Typed training configuration: YAML in, validated dataclasses out, YAML saved next to the model.

One ``TrainConfig`` says everything about a run: the prepared data, the
directions, the model shape, the optimiser, sampling, budgets, validation and
checkpointing. ``nmt train --config run.yaml --set training.lr=5e-4`` loads the
YAML, applies ``--set`` overrides (dotted keys) and validates; an unknown key
or a bad value is an error naming the key and the valid choices.

The sections are plain dataclasses; pydantic validates a config against their
field types (and coerces what YAML and ``--set`` give, e.g. ``"500"`` to an
int), and its first error becomes one line that names the key.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from nmt.errors import NmtError
from nmt.fileio import atomic_open, parse_yaml, read_yaml, shorten
from nmt.presets import PRESETS


def _comma_list(value):
    """A list key also takes a comma-separated string (``--set directions=de_DE-en_XX,en_XX-de_DE``)."""
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


def _section(value):
    """A section given as null takes its defaults."""
    return {} if value is None else value


CommaList = Annotated[list, BeforeValidator(_comma_list)]


@dataclass(frozen=True)
class ModelShape:
    """A model's shape as trained: the preset's values with the config's overrides applied."""

    embed_dim: int
    ffn_dim: int
    heads: int
    encoder_layers: int
    decoder_layers: int
    dropout: float
    attention_dropout: float
    max_positions: int
    arch: str
    normalize_before: bool
    share_all_embeddings: bool


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

    def resolved(self) -> ModelShape:
        values = dict(PRESETS[self.preset])
        for key in values:
            if getattr(self, key) is not None:
                values[key] = getattr(self, key)
        values["arch"] = self.arch
        values["normalize_before"] = self.normalize_before
        values["share_all_embeddings"] = self.share_all_embeddings
        return ModelShape(**values)


@dataclass
class TrainingConfig:
    max_updates: int = 2000
    max_epochs: int = 0  # 0: no limit
    max_time_minutes: float = 0.0  # 0: no limit; wall-clock training budget
    max_cpu_minutes: float = 0.0  # 0: no limit; budget in CPU time of the training process (all its threads)
    lr: float = 1e-3  # peak learning rate
    # budget: linear warm-up, then linear decay to final_lr_ratio * lr where the budget (max_updates or a
    # time budget, whichever ends first) ends; inverse_sqrt: fairseq's warm-up then 1/sqrt(update)
    lr_schedule: str = "budget"
    warmup_updates: int = 0  # 0: 4% of the updates the budget allows (50 to 4000)
    final_lr_ratio: float = 0.0
    # budget schedule: the rate stays at its peak after warm-up, then decays over this last share of the budget
    # (warm-up-stable-decay; 0.2 measured +3.8 validation chrF over 1.0 at 30 CPU-minutes, RESULTS.md)
    lr_decay_share: float = 0.2
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
    # auto: bf16 on a CPU with native bfloat16 (AVX512-BF16/AMX), else fp32 | fp32 | fp16 (GPU) |
    # bf16 (GPU; on a CPU bfloat16 autocast)
    precision: str = "auto"
    threads: int = 0  # CPU threads for torch (0: all cores)
    log_every: int = 50


@dataclass
class ValidationConfig:
    every_updates: int = 500
    directions: CommaList = field(default_factory=list)  # empty: all trained directions
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
    directions: CommaList = field(default_factory=list)  # empty: every prepared direction
    model: Annotated[ModelConfig, BeforeValidator(_section)] = field(default_factory=ModelConfig)
    training: Annotated[TrainingConfig, BeforeValidator(_section)] = field(default_factory=TrainingConfig)
    validation: Annotated[ValidationConfig, BeforeValidator(_section)] = field(default_factory=ValidationConfig)
    checkpoint: Annotated[CheckpointConfig, BeforeValidator(_section)] = field(default_factory=CheckpointConfig)
    distributed: Annotated[DistributedConfig, BeforeValidator(_section)] = field(default_factory=DistributedConfig)
    init: Annotated[InitConfig, BeforeValidator(_section)] = field(default_factory=InitConfig)
    denoising: Annotated[DenoisingConfig, BeforeValidator(_section)] = field(default_factory=DenoisingConfig)

    def check(self) -> None:
        _choice("model.preset", self.model.preset, PRESETS)
        _choice("model.arch", self.model.arch, ("transformer", "mbart"))
        _choice("training.encoder_langtok", self.training.encoder_langtok, ("src", "tgt"))
        _choice("training.device", self.training.device, ("auto", "cpu", "cuda"))
        _choice("training.precision", self.training.precision, ("auto", "fp32", "fp16", "bf16"))
        _choice("training.lr_schedule", self.training.lr_schedule, ("budget", "inverse_sqrt"))
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
        if self.training.warmup_updates < 0 or (self.training.lr_schedule == "inverse_sqrt"
                                                and self.training.warmup_updates < 1):
            raise NmtError(f"config key training.warmup_updates must be >= 1 with lr_schedule inverse_sqrt "
                           f"(>= 0 with budget, 0: automatic), got {self.training.warmup_updates}")
        if not 0 < self.training.lr_decay_share <= 1:
            raise NmtError(f"config key training.lr_decay_share must be in (0, 1], got {self.training.lr_decay_share}")
        if not 0 <= self.training.final_lr_ratio <= 1:
            raise NmtError(f"config key training.final_lr_ratio must be in [0, 1], got {self.training.final_lr_ratio}")
        for key, value in (("training.max_time_minutes", self.training.max_time_minutes),
                           ("training.max_cpu_minutes", self.training.max_cpu_minutes),
                           ("training.max_epochs", self.training.max_epochs),
                           ("validation.patience", self.validation.patience)):
            if value < 0:
                raise NmtError(f"config key {key} must be >= 0 (0: no limit), got {value}")
        if not self.training.decoder_langtok and self.training.encoder_langtok != "tgt":
            raise NmtError("with training.decoder_langtok false the target language must be in the source: "
                           "set training.encoder_langtok to tgt (or keep decoder_langtok true)")
        if self.model.arch == "mbart" and not self.model.share_all_embeddings:
            raise NmtError("model.arch mbart always shares its embeddings; model.share_all_embeddings must be true")
        for section in ("model", "training", "validation", "checkpoint", "distributed", "init", "denoising"):
            for key, value in dataclasses.asdict(getattr(self, section)).items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise NmtError(f"config key {section}.{key} must be a finite number, got {value}")
        model = self.model.resolved()
        for key in ("embed_dim", "ffn_dim", "heads", "encoder_layers", "decoder_layers", "max_positions"):
            if getattr(model, key) is not None and getattr(model, key) < 1:
                raise NmtError(f"config key model.{key} must be >= 1, got {getattr(model, key)}")
        if model.embed_dim % model.heads:
            raise NmtError(f"model.embed_dim ({model.embed_dim}) must be divisible by model.heads ({model.heads})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        raise NmtError(f"config key {key}: {value!r} is not valid; choose one of: {', '.join(choices)}")


# pydantic's settings for every section: unknown keys are errors; a number is a valid string
# (``--set data=2024`` names a directory "2024")
_PYDANTIC = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def _sections(cls) -> list:
    """``cls`` and the section dataclasses under it."""
    return [cls] + [s for hint in typing.get_type_hints(cls).values() if dataclasses.is_dataclass(hint)
                    for s in _sections(hint)]


for _section_class in _sections(TrainConfig):
    _section_class.__pydantic_config__ = _PYDANTIC
_VALIDATOR = TypeAdapter(TrainConfig)


def _validate(values: dict) -> TrainConfig:
    try:
        return _VALIDATOR.validate_python(values)
    except ValidationError as exc:
        raise _config_error(exc) from None


def _describe(hint) -> str:
    """What a value of a field's type is, in words: ``int``, ``true or false``, ``int or null``, ..."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [_describe(arg) for arg in typing.get_args(hint) if arg is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in typing.get_args(hint) else "")
    return {bool: "true or false", list: "a list", str: "a string"}.get(hint, getattr(hint, "__name__", str(hint)))


_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")  # pydantic's names for an unknown key


def _config_error(exc: ValidationError) -> NmtError:
    """pydantic's first error as one line naming the config key (unknown keys first, the outermost
    first, as they are usually the mistake behind the rest)."""
    errors = exc.errors(include_url=False)
    unknown = sorted((e for e in errors if e["type"] in _UNKNOWN), key=lambda e: (len(e["loc"]), e["loc"]))
    error = unknown[0] if unknown else errors[0]
    loc = [str(part) for part in error["loc"]]
    cls, path, hint = TrainConfig, [], None
    for part in loc:  # walk the sections down to the field (pydantic adds union members to the location)
        hints = typing.get_type_hints(cls)  # without Annotated's extras
        if part not in hints:
            break
        path.append(part)
        hint = hints[part]
        if not dataclasses.is_dataclass(hint):
            break
        cls = hint
    key = ".".join(path)
    value = error.get("input")
    if error["type"] in _UNKNOWN:
        names = ", ".join(sorted(f.name for f in dataclasses.fields(cls)))
        return NmtError(f"unknown config key {key + '.' if key else ''}{loc[len(path)]}; valid keys here: {names}")
    if hint is None or dataclasses.is_dataclass(hint):
        return NmtError(f"config key {key or '(top)'} must be a mapping")
    if value is None:
        spec = next(f for f in dataclasses.fields(cls) if f.name == path[-1])
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        return NmtError(f"config key {key} needs a value (default {default!r}); null is not allowed here")
    return NmtError(f"config key {key} must be {_describe(hint)}, got {shorten(repr(value), 80)}")


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
    cfg = _validate(values)
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
