"""Training through fairseq: arguments from nmt's config, and the training loop.

``fairseq_train_args`` turns an nmt ``TrainConfig`` into the argument list of
``fairseq-train`` (the same list the benchmark passes to ``fairseq-train``
itself, so the two can be compared like for like).

``run`` is the training loop: fairseq's own ``Trainer``, task, data iterators,
checkpoint restore and distributed start-up (``distributed_utils.call_main``),
with what ``fairseq-train`` lacks for multilingual models added around it:

* per-direction validation by translation (BLEU / chrF, computed by the caller's
  hook), best-checkpoint selection and early stopping on it;
* checkpoints written atomically: ``checkpoint_last.pt`` is written to a
  temporary file, fsynced and renamed, and the best / numbered copies are hard
  links renamed into place, so a SIGKILL at any moment leaves every checkpoint
  file either old or new, never truncated (fairseq copies them in place); a
  full disk is a one-line error with the previous checkpoint intact;
* a graceful stop on SIGINT / SIGTERM (save, then exit), and a wall-clock
  budget that survives resumes (fairseq's cumulative training time).
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable

from nmt.fairseq_backend import install_safe_globals, load_state

log = logging.getLogger("nmt.train")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        from nmt.errors import NmtError

        raise NmtError("training.device is cuda but no CUDA GPU is visible; use cpu or auto")
    return device


def model_args(m: dict, arch: str = "transformer") -> list[str]:
    """Architecture arguments for a preset-shaped model (``m`` = ModelConfig.resolved())."""
    args = [
        "--arch", arch,
        "--encoder-embed-dim", str(m["embed_dim"]), "--decoder-embed-dim", str(m["embed_dim"]),
        "--encoder-ffn-embed-dim", str(m["ffn_dim"]), "--decoder-ffn-embed-dim", str(m["ffn_dim"]),
        "--encoder-attention-heads", str(m["heads"]), "--decoder-attention-heads", str(m["heads"]),
        "--encoder-layers", str(m["encoder_layers"]), "--decoder-layers", str(m["decoder_layers"]),
        "--max-source-positions", str(m["max_positions"]), "--max-target-positions", str(m["max_positions"]),
    ]
    if m["share_all_embeddings"]:
        args.append("--share-all-embeddings")
    if m["normalize_before"]:
        args += ["--encoder-normalize-before", "--decoder-normalize-before"]
    if arch.startswith("mbart"):  # the mBART layout: learned positions, embedding layer norm, GELU
        args += ["--layernorm-embedding", "--encoder-learned-pos", "--decoder-learned-pos",
                 "--activation-fn", "gelu"]
    return args


def optimization_args(t, lr_scheduler: str = "inverse_sqrt", adam_eps: str = "1e-08") -> list[str]:
    return [
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--adam-eps", adam_eps,
        "--lr", str(t.lr), "--lr-scheduler", lr_scheduler, "--warmup-updates", str(t.warmup_updates),
        "--warmup-init-lr", "1e-07", "--weight-decay", str(t.weight_decay), "--clip-norm", str(t.clip_norm),
        "--max-tokens", str(t.max_tokens), "--update-freq", str(t.update_freq),
        "--max-update", str(t.max_updates), "--seed", str(t.seed),
    ] + (["--max-epoch", str(t.max_epochs)] if t.max_epochs else [])


def runtime_args(cfg, save_dir: str, device: str) -> list[str]:
    t, d = cfg.training, cfg.distributed
    args = ["--save-dir", str(save_dir), "--num-workers", "0", "--skip-invalid-size-inputs-valid-test",
            "--log-format", "simple", "--log-interval", str(t.log_every), "--no-progress-bar",
            "--distributed-world-size", str(d.world_size)]
    if device == "cpu":
        args.append("--cpu")
    elif t.precision == "fp16":
        args.append("--fp16")
    elif t.precision == "bf16":
        args.append("--bf16")
    if d.world_size > 1:
        backend = d.backend if d.backend != "auto" else ("gloo" if device == "cpu" else "nccl")
        args += ["--distributed-backend", backend]
        if d.init_method:  # one process per rank, started by the user (or SLURM): no spawning
            args += ["--distributed-init-method", d.init_method, "--distributed-rank", str(d.rank),
                     "--distributed-no-spawn"]
            if device != "cpu":  # which GPU this rank drives
                import torch

                local = os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID")
                gpus = max(1, torch.cuda.device_count())
                args += ["--device-id", str(int(local) if local is not None else d.rank % gpus)]
        # no init_method: on GPUs fairseq spawns one process per GPU itself, or reads torchrun's /
        # SLURM's environment
        # fairseq's pytorch_ddp wraps the model with device_ids=[0], which fails on CPU
        args += ["--ddp-backend", "legacy_ddp" if device == "cpu" else "pytorch_ddp"]
    return args


def fairseq_train_args(cfg, data_bin: str, directions, lang_tok_style: str, save_dir: str,
                       device: str, finetune_from: str | None = None, arch_args: list | None = None) -> list[str]:
    """The ``fairseq-train`` arguments equivalent to an nmt ``TrainConfig`` (translation).

    ``arch_args`` replaces the preset's architecture (fine-tuning a pretrained model
    must reproduce that model's architecture exactly).
    """
    m = cfg.model.resolved()
    t = cfg.training
    args = [
        str(data_bin),
        "--task", "translation_multi_simple_epoch",
        "--lang-dict", str(Path(data_bin.split(":")[0]) / "lang_dict.txt"),  # shards: all hold the same
        "--lang-pairs", ",".join(f"{s}-{g}" for s, g in directions),
        "--lang-tok-style", lang_tok_style,
        "--encoder-langtok", t.encoder_langtok,
        "--sampling-method", "temperature",
        "--sampling-temperature", str(t.sampling_temperature),
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", str(t.label_smoothing),
        "--dropout", str(m["dropout"]), "--attention-dropout", str(m["attention_dropout"]),
    ]
    if t.decoder_langtok:
        args.append("--decoder-langtok")
    if arch_args is None:
        arch_args = model_args(m, arch="mbart_large" if m["arch"] == "mbart" else "transformer")
    args += arch_args
    args += optimization_args(t, adam_eps="1e-06" if finetune_from else "1e-08")
    args += runtime_args(cfg, save_dir, device)
    if finetune_from:
        args += ["--finetune-from-model", str(finetune_from)]
    return args


def denoising_args(cfg, data_dir: str, languages, spm_model: str, save_dir: str, device: str) -> list[str]:
    """``fairseq-train`` arguments for mBART-style multilingual denoising pretraining."""
    m = cfg.model.resolved()
    n = cfg.denoising
    args = [
        str(data_dir), "--task", "multilingual_denoising", "--langs", ",".join(languages), "--add-lang-token",
        # no --bpe: fairseq 0.12's multilingual_denoising passes the bpe *name* where its whole-word
        # mask helper wants a config ("file ??? not found"), so spans are masked at subword level
        "--mask", str(n.mask), "--mask-random", str(n.mask_random), "--mask-length", "span-poisson",
        "--poisson-lambda", str(n.poisson_lambda), "--replace-length", "1", "--rotate", "0",
        "--permute-sentences", str(n.permute_sentences), "--insert", "0",
        "--tokens-per-sample", str(min(n.tokens_per_sample, m["max_positions"])),
        "--sample-break-mode", "complete", "--multilang-sampling-alpha", str(n.sampling_alpha),
        "--criterion", "cross_entropy",
        "--dropout", str(m["dropout"]), "--attention-dropout", str(m["attention_dropout"]),
    ]
    args += model_args(m, arch="mbart_large")
    args += optimization_args(cfg.training)
    args += runtime_args(cfg, save_dir, device)
    return args


class Hooks:
    """What the training loop calls back into (implemented by nmt.train; must be picklable)."""

    def on_start(self, info: dict) -> None: ...
    def on_log(self, update: int, stats: dict) -> None: ...
    def validate(self, generator, update: int, valid_loss: float | None) -> tuple[float | None, dict]:
        return None, {}
    def on_checkpoint(self, update: int, path: str, best: bool, state: dict) -> None: ...
    def on_end(self, state: dict) -> None: ...


def _link_replace(src: Path, dst: Path) -> None:
    """Make ``dst`` hold ``src``'s bytes, atomically (hard link when possible, else copy), then rename."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _write_checkpoint(state: dict, path: Path) -> None:
    """Atomic checkpoint write: a temporary file, fsync, rename. A failure (disk full, ...) leaves the
    previous file untouched, removes the partial one and says so in one line."""
    import torch

    from nmt.errors import NmtError

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        free = shutil.disk_usage(path.parent).free / 2**20
        full = free < 64 or "No space" in str(exc) or getattr(exc, "errno", None) == 28
        cause = "no space left on device" if full else str(exc).splitlines()[0]
        error = NmtError(f"could not write checkpoint {path} ({cause}; {free:.0f} MiB free); the previous "
                         "checkpoints are intact: free some space and rerun the same command to resume")
        if full:
            error.exit_code = 3
        raise error from None


def run(argv: list[str], hooks: Hooks, settings: dict) -> None:
    """Parse fairseq arguments and run the training loop (spawning ranks if fairseq needs to)."""
    install_safe_globals()
    from fairseq.distributed import utils as distributed_utils

    cfg = parse_fairseq_args(argv)
    distributed_utils.call_main(cfg, _main, hooks=hooks, settings=settings)


def parse_fairseq_args(argv: list[str]):
    """fairseq's parser on our generated arguments; its usage dump becomes one error line."""
    import contextlib
    import io

    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            args = options.parse_args_and_arch(parser, input_args=argv)
    except SystemExit:
        last = [line for line in captured.getvalue().splitlines() if line.strip()][-1:]
        raise RuntimeError(f"fairseq rejected the generated arguments: {last[0] if last else '?'}") from None
    if args.bf16 and not args.cpu:
        # fairseq 0.12 takes --bf16 to mean a TPU (options.py sets tpu=True; facebookresearch/fairseq#4696),
        # and its Trainer then asks torch_xla for the device. On a GPU, bf16 is the same mixed
        # precision as --fp16 (bf16 model, fp32 master weights) without loss scaling.
        args.tpu = False
    return convert_namespace_to_omegaconf(args)


class _NoGeneration(Exception):
    """Validation by loss only (denoising pretraining has nothing to translate)."""


class _StopFlag:
    def __init__(self):
        self.signal = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        if self.signal is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum
        log.warning("received %s: finishing this update, saving a checkpoint, then stopping",
                    signal.Signals(signum).name)


def checkpoint_to_resume(ckpt_cfg) -> Path | None:
    """The file fairseq's ``load_checkpoint`` will read for this run, if any (its own rule:
    ``checkpoint_last.pt`` in the save directory, else ``--finetune-from-model`` on a first launch)."""
    restore = ckpt_cfg.restore_file
    if restore == "checkpoint_last.pt":
        last = Path(ckpt_cfg.save_dir) / "checkpoint_last.pt"
        if last.is_file():
            return last
        if getattr(ckpt_cfg, "finetune_from_model", None):
            return Path(ckpt_cfg.finetune_from_model)
        return None
    path = Path(restore)
    return path if path.is_file() else None


def _main(cfg, hooks: Hooks, settings: dict, **unused) -> None:
    import numpy as np
    import torch
    from fairseq import checkpoint_utils, tasks, utils
    from fairseq.data import iterators
    from fairseq.distributed import utils as distributed_utils
    from fairseq.logging import metrics
    from fairseq.trainer import Trainer

    from nmt.fairseq_backend.inference import FairseqGenerator

    install_safe_globals()
    if settings.get("threads"):
        torch.set_num_threads(settings["threads"])
    metrics.reset()
    np.random.seed(cfg.common.seed)
    utils.set_torch_seed(cfg.common.seed)
    is_master = distributed_utils.is_master(cfg.distributed_training)
    world = cfg.distributed_training.distributed_world_size
    save_dir = Path(cfg.checkpoint.save_dir)
    if is_master:
        save_dir.mkdir(parents=True, exist_ok=True)

    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    task.load_dataset("valid", combine=False, epoch=1)
    trainer = Trainer(cfg, task, model, criterion)
    resume_from = checkpoint_to_resume(cfg.checkpoint)
    if resume_from is not None:
        # nmt's safe loader (weights_only=True, explicit allow-list, whatever the environment says) reads the
        # file first: a pickle that would run code is refused before fairseq's own load sees it
        load_state(resume_from)
    extra_state, epoch_itr = checkpoint_utils.load_checkpoint(cfg.checkpoint, trainer)
    nmt_state: dict[str, Any] = dict((extra_state or {}).get("nmt") or {})
    if settings.get("finetune") and trainer.get_num_updates() == 0:
        nmt_state = {}  # the pretrained model's bookkeeping does not carry over ...
        trainer._previous_training_time = 0  # ... nor its training clock (fairseq restores it even
        trainer._start_time = time.time()  # with --finetune-from-model): the time budget is ours
    nmt_state.setdefault("best_score", None)
    nmt_state.setdefault("best_update", None)
    nmt_state.setdefault("bad_validations", 0)
    nmt_state.setdefault("history", [])

    train_dataset = task.datasets.get("train")
    ratios = {}
    if train_dataset is not None and getattr(train_dataset, "sample_ratios", None) is not None:
        # fairseq's temperature sampling gives each direction an unnormalised weight r_i; an epoch
        # draws virtual_size * r_i / sum(r) pairs of it (virtual_size_per_dataset once sampled)
        keys = list(getattr(train_dataset, "keys", []))
        sizes = [len(ds) for ds in getattr(train_dataset, "datasets", [])]
        weights = [float(r) for r in train_dataset.sample_ratios]
        drawn = getattr(train_dataset, "virtual_size_per_dataset", None)
        if drawn is None:
            drawn = [train_dataset.virtual_size * w / sum(weights) for w in weights]
        for key, size, weight, n in zip(keys, sizes, weights, drawn):
            ratios[key.split(":")[-1]] = {"pairs": size, "share": weight / sum(weights),
                                          "sampled_pairs_per_epoch": int(round(float(n)))}
    n_params = sum(p.numel() for p in model.parameters())
    if is_master:
        hooks.on_start({
            "parameters": n_params, "start_update": trainer.get_num_updates(),
            "start_epoch": epoch_itr.epoch, "sampling": ratios, "world_size": world,
            "device": "cpu" if cfg.common.cpu else "cuda",
        })

    stop = _StopFlag()
    max_update = cfg.optimization.max_update or math.inf
    max_epoch = cfg.optimization.max_epoch or math.inf
    max_seconds = settings.get("max_time_minutes", 0) * 60 or math.inf
    validate_every = settings["validate_every"]
    save_every = settings["save_every"]
    keep_last = settings["keep_last"]
    log_every = cfg.common.log_interval
    metric_mode = settings.get("metric", "chrf")
    patience = settings.get("patience", 0)

    def valid_loss() -> float | None:
        subset = "valid"
        itr = trainer.get_valid_iterator(subset).next_epoch_itr(shuffle=False, set_dataset_epoch=False)
        trainer.begin_valid_epoch(epoch_itr.epoch)
        with metrics.aggregate(new_root=True) as agg:
            for sample in itr:
                trainer.valid_step(sample)
        stats = agg.get_smoothed_values()
        return float(stats["loss"]) if "loss" in stats else None

    def validate(update: int) -> bool:
        """Validate; return True when early stopping says stop."""
        loss = valid_loss()
        decision = None
        if is_master:
            score, details = None, {}
            was_training = trainer.model.training
            trainer.model.eval()
            try:
                if not settings.get("translation_validation", True):
                    raise _NoGeneration
                generator = FairseqGenerator(
                    trainer.get_model(), task.target_dictionary, settings["languages"],
                    settings["lang_tok_style"], settings["encoder_langtok"], settings["decoder_langtok"],
                    device=str(next(trainer.get_model().parameters()).device),
                )
                score, details = hooks.validate(generator, update, loss)
            except _NoGeneration:
                score, details = None, {}
                log.info("validation @ %d | loss %.3f", update, loss if loss is not None else float("nan"))
            finally:
                trainer.model.train(was_training)
            if metric_mode == "loss" or score is None:
                score = -loss if loss is not None else None
            improved = score is not None and (nmt_state["best_score"] is None or score > nmt_state["best_score"])
            if improved:
                nmt_state["best_score"], nmt_state["best_update"] = score, update
                nmt_state["bad_validations"] = 0
            elif score is not None:
                nmt_state["bad_validations"] += 1
            nmt_state["history"].append({"update": update, "valid_loss": loss, "score": score, **details})
            should_stop = bool(patience and nmt_state["bad_validations"] >= patience)
            if should_stop:
                log.info("early stopping: no improvement in the last %d validations (best %.3f at update %s)",
                         patience, nmt_state["best_score"], nmt_state["best_update"])
            decision = {"improved": improved, "stop": should_stop, "state": nmt_state}
        if world > 1:
            decision = distributed_utils.broadcast_object(decision, src_rank=0,
                                                          group=distributed_utils.get_data_parallel_group())
            nmt_state.update(decision["state"])
        save(update, best=decision["improved"])
        return decision["stop"]

    def save(update: int, best: bool = False) -> None:
        extra = {"train_iterator": epoch_itr.state_dict(), "val_loss": None, "nmt": nmt_state,
                 "best": nmt_state["best_score"]}
        last = save_dir / "checkpoint_last.pt"
        trainer.consolidate_optimizer()  # every rank: sharded optimizers gather their state here
        state = utils.move_to_cpu(trainer.state_dict())  # every rank (it may communicate)
        if not trainer.should_save_checkpoint_on_current_rank:
            return
        state["extra_state"].update(extra)
        # the new checkpoint first gets its numbered name, then becomes best (if it is), and only
        # then last: a kill in between leaves last at the previous checkpoint, never ahead of best
        numbered = save_dir / f"checkpoint_{update}.pt"
        _write_checkpoint(state, numbered)
        if best or not (save_dir / "checkpoint_best.pt").exists():
            _link_replace(numbered, save_dir / "checkpoint_best.pt")
        _link_replace(numbered, last)
        kept = sorted(save_dir.glob("checkpoint_[0-9]*.pt"), key=lambda p: int(p.stem.split("_")[1]))
        for old in kept[:-keep_last]:
            old.unlink(missing_ok=True)
        hooks.on_checkpoint(update, str(last), best, dict(nmt_state))

    def out_of_budget(update: int) -> str | None:
        if update >= max_update:
            return f"reached max_updates ({int(max_update)})"
        if float(trainer.cumulative_training_time()) >= max_seconds:
            return f"reached the time budget ({settings['max_time_minutes']} min)"
        return None

    reason = out_of_budget(trainer.get_num_updates())
    if patience and nmt_state["bad_validations"] >= patience:
        reason = "early stopping (before this run: no improvement in the last %d validations)" % patience
    last_saved = trainer.get_num_updates() if reason else -1
    last_validated = -1
    t_log = time.time()
    previous = trainer.get_num_updates()
    epoch_done = False
    while reason is None:
        if epoch_itr.next_epoch_idx > max_epoch:
            reason = f"reached max_epochs ({int(max_epoch)})"
            break
        if epoch_done:  # the next epoch's iterator; with sharded data it reads the next shard
            epoch_itr = trainer.get_train_iterator(epoch_itr.next_epoch_idx,
                                                   load_dataset=task.has_sharded_data("train"))
            epoch_done = False
        # shuffled from the first epoch on, as fairseq-train does (unshuffled, batches come in
        # length order: the whole of a large corpus' first epoch would be sorted by length)
        itr = epoch_itr.next_epoch_itr(fix_batches_to_gpus=False, shuffle=True)
        itr = iterators.GroupedIterator(itr, cfg.optimization.update_freq[0])
        trainer.begin_epoch(epoch_itr.epoch)
        for samples in itr:
            with metrics.aggregate("train_inner"):
                log_output = trainer.train_step(samples)
            update = trainer.get_num_updates()
            stepped = update != previous  # no update: fp16 overflow or OOM skipped the step
            previous = update
            if stepped and update % log_every == 0 and is_master:
                stats = {k: float(v) for k, v in metrics.get_smoothed_values("train_inner").items()
                         if isinstance(v, (int, float)) or hasattr(v, "__float__")}
                stats["lr"] = trainer.get_lr()
                stats["epoch"] = epoch_itr.epoch
                stats["elapsed"] = time.time() - t_log
                hooks.on_log(update, stats)
                metrics.reset_meters("train_inner")
            reason = out_of_budget(update)
            signalled = stop.signal is not None
            if world > 1:  # ranks must stop at the same update: rank 0 decides (time, signals)
                reason, signalled = distributed_utils.broadcast_object(
                    (reason, signalled), src_rank=0, group=distributed_utils.get_data_parallel_group())
            if signalled:  # save at once: a grace period (SLURM, docker stop) may be short
                reason = f"stopped by {signal.Signals(stop.signal or signal.SIGTERM).name}"
                save(update)
                last_saved = last_validated = update
                break
            if not stepped:
                if reason:
                    break
                continue
            if update % validate_every == 0 or (reason and update != last_validated):
                last_validated = update
                if validate(update):
                    reason = reason or "early stopping"
                last_saved = update
            elif update % save_every == 0:
                save(update)
                last_saved = update
            if reason:
                break
        else:
            if epoch_itr.end_of_epoch():
                trainer.lr_step(epoch_itr.epoch, None)
                epoch_done = True
            continue
        break
    update = trainer.get_num_updates()
    if last_saved != update:
        if last_validated != update:
            validate(update)
        else:
            save(update)
    log.info("training stopped at update %d: %s", update, reason)
    if is_master:
        hooks.on_end({**nmt_state, "updates": update, "stop_reason": reason,
                      "training_seconds": float(trainer.cumulative_training_time()), "epoch": epoch_itr.epoch})
    if stop.signal is not None:
        raise SystemExit(128 + stop.signal)
