"""``nmt train`` (and ``nmt finetune``): one shared many-to-many model, written as a model bundle.

The run directory *is* the bundle (see ``nmt.bundle``): it receives the
vocabulary files and ``bundle.json`` first, then checkpoints as training goes,
so ``nmt translate --model RUN`` works from the first checkpoint on. Running the
same command again resumes from ``checkpoints/checkpoint_last.pt``; a changed
configuration is refused with the list of differences unless ``reset``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import NamedTuple

from nmt import langs
from nmt.config import TrainConfig
from nmt.data.bin_stage import fairseq_data_path
from nmt.data.manifest import PreparedData
from nmt.errors import NmtError
from nmt.fairseq_backend import training as backend
from nmt.fileio import read_lines, sha256_file
from nmt.pretrained import finetune_checkpoint
from nmt.stopping import StopRequest
from nmt.training.hooks import TrainHooks, bleu_unusable
from nmt.training.rundir import RunDir, TrainResult
from nmt.fairseq_backend.settings import Generation, LoopSettings

log = logging.getLogger("nmt.train")

# the run's copies of the prepared data's vocabulary: the bundle's own files
VOCABULARY = (("spm.model", "spm_model"), ("dict.txt", "dictionary"), ("lang_dict.txt", "lang_dict"))


def _direction_list(cfg: TrainConfig, data: PreparedData) -> list[tuple[str, str]]:
    prepared = list(data.directions)
    chosen = cfg.directions or prepared
    out = []
    for item in chosen:
        if item not in prepared:
            raise NmtError(f"direction {item} is not in the prepared data {cfg.data}; it has: {', '.join(prepared)}")
        out.append(langs.parse_direction(item))
    return out


def load_valid_sets(data: PreparedData, directions, max_sentences: int) -> dict:
    """The first ``max_sentences`` cleaned validation pairs of each direction."""
    sets = {}
    for src, tgt in directions:
        name = data.directions[f"{src}-{tgt}"].data
        src_lines, _ = read_lines(data.clean_file("valid", name, src))
        ref_lines, _ = read_lines(data.clean_file("valid", name, tgt))
        sets[f"{src}-{tgt}"] = (src_lines[:max_sentences], ref_lines[:max_sentences])
    return sets


def with_resolved_precision(cfg: TrainConfig, device: str) -> TrainConfig:
    """A copy of ``cfg`` whose ``training.precision`` says what ``auto`` chose on this device."""
    precision = backend.resolve_precision(cfg.training.precision, device)
    if precision != cfg.training.precision:
        log.info("training.precision auto: %s on this %s", precision,
                 "CPU (native bfloat16)" if precision == "bf16" else device)
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, precision=precision))


def _check_run(cfg: TrainConfig, data: PreparedData, device: str, reset: bool) -> None:
    if device == "cpu" and cfg.training.precision == "fp16":
        raise NmtError("training.precision fp16 needs a GPU; use fp32 or bf16 (bfloat16 autocast) on CPU")
    if device == "cpu" and cfg.distributed.world_size > 1 and not cfg.distributed.init_method:
        raise NmtError("data-parallel training on CPU needs distributed.init_method (tcp://HOST:PORT) and one "
                       "nmt train process per rank (distributed.rank); see docs/DISTRIBUTED.md")
    if reset and cfg.distributed.world_size > 1 and cfg.distributed.init_method:
        raise NmtError("--reset with one process per rank would race (rank 0 deletes what the others load); "
                       "delete the run directory or choose a new --output instead")
    for item in cfg.validation.directions:
        if item not in data.directions:
            raise NmtError(f"validation direction {item} has no validation data in {cfg.data}; "
                           f"choose among: {', '.join(data.directions)}")


def prepare_run_dir(cfg: TrainConfig, run: RunDir, data: PreparedData, directions, reset: bool,
                    max_positions: int) -> None:
    """Reset or check the run for resuming, then copy the vocabulary in and write config and bundle.json."""
    if reset:
        run.reset(("checkpoints", "tensorboard", "training.json"))
    if run.resuming:
        changed = [name for name, field in VOCABULARY if (run.path / name).is_file()
                   and sha256_file(getattr(data, field)) != sha256_file(run.path / name)]
        differences = run.config_differences(cfg)
        if changed:
            differences.append(f"the prepared data's {', '.join(changed)} changed since this run started")
        run.refuse_changed("a run", differences)
    for name, field in VOCABULARY:
        run.install(getattr(data, field), name)
    run.save_config(cfg)
    origin = {"pretrained": cfg.init.pretrained} if cfg.init.pretrained else {"preset": cfg.model.preset}
    run.write_bundle(data, max_positions, languages=list(data.languages), lang_tok_style=data.lang_tok_style,
                     encoder_langtok=cfg.training.encoder_langtok, decoder_langtok=cfg.training.decoder_langtok,
                     directions=[f"{s}-{t}" for s, t in directions], checkpoint="checkpoints/checkpoint_best.pt",
                     add_mask=data.lang_tok_style == "mbart", **origin)


class _Plan(NamedTuple):
    """The checked inputs of a run."""

    data: PreparedData
    directions: list
    device: str
    start: object  # the fine-tuning start (``finetune_checkpoint``), or None
    argv: list[str]  # fairseq's arguments
    run_cfg: TrainConfig  # the configuration the run uses (``auto`` choices made)


def _plan(cfg: TrainConfig, run: RunDir, reset: bool) -> _Plan:
    data = PreparedData.load(cfg.data)
    directions = _direction_list(cfg, data)
    device = backend.resolve_device(cfg.training.device)
    _check_run(cfg, data, device, reset)
    start = finetune_checkpoint(cfg, data) if cfg.init.pretrained else None
    run_cfg = with_resolved_precision(cfg, device)  # config.yaml keeps "auto"; the run uses the choice
    argv = backend.fairseq_train_args(run_cfg, fairseq_data_path(data.path, data.raw), directions,
                                      data.lang_tok_style, str(run.checkpoints), device,
                                      finetune_from=start.checkpoint if start else None,
                                      arch_args=start.arch_args if start else None)
    return _Plan(data, directions, device, start, argv, run_cfg)


def fairseq_arguments(cfg: TrainConfig, run_dir) -> list[str]:
    """The ``fairseq-train`` arguments that ``train(cfg, run_dir)`` runs with (nothing is trained)."""
    return _plan(cfg, RunDir(run_dir, "the run (it becomes the model bundle)"), reset=False).argv


def train(cfg: TrainConfig, run_dir, reset: bool = False, stop: StopRequest | None = None) -> TrainResult:
    """Train (or resume) a model into ``run_dir`` (the bundle). ``stop.request()`` (from another thread,
    or the handlers of ``nmt.cli_util.stop_on_signals``) ends it after the update in progress, saved."""
    run = RunDir(run_dir, "the run (it becomes the model bundle)")
    data, directions, device, start, argv, run_cfg = _plan(cfg, run, reset)
    max_positions = start.max_positions if start else cfg.model.resolved().max_positions
    valid_dirs = [langs.parse_direction(d) for d in cfg.validation.directions] or directions
    no_bleu = bleu_unusable([f"{s}-{t}" for s, t in valid_dirs], cfg.validation.metric)
    # torchrun / SLURM set RANK for every process; otherwise the config says (fairseq's own spawning
    # starts the other ranks later, from this process)
    rank = cfg.distributed.rank if cfg.distributed.init_method else int(os.environ.get("RANK", "0"))
    with contextlib.ExitStack() as stack:  # rank 0 holds the run directory's lock until the end
        if rank == 0:
            stack.enter_context(run.lock("nmt train"))
            prepare_run_dir(cfg, run, data, directions, reset, max_positions)
        stack.enter_context(run.logging_to(f"train{'' if rank == 0 else f'.rank{rank}'}.log"))
        cfg = run_cfg
        valid_sets = load_valid_sets(data, valid_dirs, cfg.validation.max_sentences)
        hooks = TrainHooks(run.path, cfg, _manifest_base(cfg, run, data, directions, valid_sets, reset), valid_sets,
                           no_bleu)
        generation = Generation(languages=tuple(data.languages), lang_tok_style=data.lang_tok_style,
                                encoder_langtok=cfg.training.encoder_langtok,
                                decoder_langtok=cfg.training.decoder_langtok)
        loop = backend.run(argv, hooks, LoopSettings.from_config(cfg, device, generation=generation,
                                                                 finetune=start is not None), stop)
        return run.result(loop)


def _manifest_base(cfg: TrainConfig, run: RunDir, data: PreparedData, directions, valid_sets: dict,
                   reset: bool) -> dict:
    """What training.json starts from: the earlier run's (when resuming) and what this run trains on."""
    existing = run.training_manifest() if not reset else {}
    return {**existing, "data": str(data.path), "preset": cfg.model.preset, "precision": cfg.training.precision,
            "directions": {f"{s}-{t}": data.directions[f"{s}-{t}"].to_dict() for s, t in directions},
            "validation_lines": {d: len(v[0]) for d, v in valid_sets.items()},
            "validation_source": "first lines of the prepared validation split (clean/valid.*)"}
