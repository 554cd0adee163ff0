"""The training loop: fairseq's own ``Trainer``, task, data iterators, checkpoint restore and
distributed start-up, with what ``fairseq-train`` lacks for multilingual models added around it:

* per-direction validation by translation (BLEU / chrF, computed by the caller's
  hooks), best-checkpoint selection and early stopping on it;
* atomic checkpoints (``checkpoint_files``);
* a graceful stop when the caller's ``nmt.stopping.StopRequest`` asks for one (the CLI's
  SIGINT / SIGTERM handlers do): finish the update, save, return (``LoopResult.signal``);
  the loop installs no signal handler itself, except in rank processes fairseq spawned
  for a caller that asked for signal handling;
* a wall-clock budget that survives resumes (fairseq's cumulative training time).

Imported only when training starts (``training.run``): it imports fairseq and torch.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from fairseq import checkpoint_utils, tasks, utils
from fairseq.data import iterators
from fairseq.distributed import utils as distributed_utils
from fairseq.logging import metrics
from fairseq.trainer import Trainer

from nmt.fairseq_backend import checkpoint_files, install_safe_globals, load_state
from nmt.fairseq_backend.inference import FairseqGenerator
from nmt.fairseq_backend.schedule import BudgetSchedule
from nmt.fairseq_backend.settings import Hooks, LoopResult, LoopSettings, LoopState, Scores, StartInfo, Validation, Verdict
from nmt.memory import keep_freed_memory, release_free_memory, restore_malloc_defaults
from nmt.stopping import StopRequest

log = logging.getLogger("nmt.train")
TRIM_EVERY = int(os.environ.get("NMT_TRIM_EVERY", "50"))  # updates between returns of free heap pages


def main(cfg, hooks: Hooks, settings: LoopSettings, outcome: list | None = None, stop: StopRequest | None = None,
         **unused) -> None:
    """One rank's training: what fairseq's ``call_main`` runs in every process; the result is appended
    to ``outcome`` (in this process: a rank spawned by fairseq has its own copy, and of ``stop``)."""
    stop = stop if stop is not None else StopRequest()
    spawned = stop.pid != os.getpid()
    with (stop.rank_setup(stop) if stop.rank_setup is not None and spawned else contextlib.nullcontext(),
          _training_process(settings)):
        result = TrainingLoop(cfg, hooks, settings, stop).run()
    if outcome is not None:
        outcome.append(result)


@contextlib.contextmanager
def _training_process(settings: LoopSettings):
    """While training: torch's thread count from the settings, and glibc keeping freed memory for the
    next step (nmt.memory); both as they were afterwards (library code leaves the process as it found it)."""
    threads = torch.get_num_threads()
    kept = keep_freed_memory()  # before the first batch: every step's large tensors reuse the same memory
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if kept:
            restore_malloc_defaults()


class TrainingLoop:
    """One rank's training run. Rank 0 validates, decides and calls the hooks; the decisions
    (stop, best checkpoint, the bookkeeping in ``state``) are broadcast so all ranks agree."""

    def __init__(self, cfg, hooks: Hooks, settings: LoopSettings, stop: StopRequest | None = None):
        install_safe_globals()
        metrics.reset()
        np.random.seed(cfg.common.seed)
        utils.set_torch_seed(cfg.common.seed)
        self.cfg, self.hooks, self.settings = cfg, hooks, settings
        self.is_master = distributed_utils.is_master(cfg.distributed_training)
        self.world = cfg.distributed_training.distributed_world_size
        self.save_dir = Path(cfg.checkpoint.save_dir)
        if self.is_master:
            self.save_dir.mkdir(parents=True, exist_ok=True)
        self.task = tasks.setup_task(cfg.task)
        self.model = self.task.build_model(cfg.model)
        criterion = self.task.build_criterion(cfg.criterion)
        self.task.load_dataset("valid", combine=False, epoch=1)
        self.trainer = Trainer(cfg, self.task, self.model, criterion)
        self.max_update = cfg.optimization.max_update or math.inf
        self.max_epoch = cfg.optimization.max_epoch or math.inf
        self.max_seconds = settings.max_time_minutes * 60 or math.inf
        self.max_cpu_seconds = settings.max_cpu_minutes * 60 or math.inf
        self.schedule = (BudgetSchedule(settings.lr, self.max_update, settings.warmup_updates, settings.final_lr_ratio,
                                        settings.lr_decay_share) if settings.lr_schedule == "budget" else None)
        self.reserve = 0.0  # CPU seconds the last validation took: kept for the final one within the budget
        self.epoch_itr = None
        self.state = LoopState()  # nmt's bookkeeping, saved in every checkpoint
        self.stop = stop if stop is not None else StopRequest()  # read only: whoever owns the process sets it
        self.last_saved = self.last_validated = self.previous = -1
        self.t_start = time.time()

    # -- start ---------------------------------------------------------------------
    def restore(self) -> None:
        """Load the checkpoint to resume from (or the pretrained model) and nmt's bookkeeping in it."""
        resume_from = checkpoint_files.checkpoint_to_resume(self.cfg.checkpoint)
        if resume_from is not None:
            # nmt's safe loader (weights_only=True, explicit allow-list, whatever the environment says) reads the
            # file first: a pickle that would run code is refused before fairseq's own load sees it
            load_state(resume_from)
        extra_state, self.epoch_itr = checkpoint_utils.load_checkpoint(self.cfg.checkpoint, self.trainer)
        self.state = LoopState.from_dict((extra_state or {}).get("nmt"))
        if self.settings.finetune and self.trainer.get_num_updates() == 0:
            self.state = LoopState()  # the pretrained model's bookkeeping does not carry over ...
            self.trainer._previous_training_time = 0  # ... nor its training clock (fairseq restores it even
            self.trainer._start_time = time.time()  # with --finetune-from-model): the time budget is ours
        # CPU time of earlier runs (saved with their last checkpoint) plus all of this process's so far
        self.cpu_before = float(self.state.cpu_seconds) - time.process_time()

    def sampling(self) -> dict:
        """Per direction: pairs, share of an epoch and pairs drawn per epoch under temperature sampling."""
        train_dataset = self.task.datasets.get("train")
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
        return ratios

    def start(self) -> str | None:
        """Report the start; a reason when there is nothing left to train."""
        if self.is_master:
            self.hooks.on_start(StartInfo(
                parameters=sum(p.numel() for p in self.model.parameters()),
                start_update=self.trainer.get_num_updates(), start_epoch=self.epoch_itr.epoch,
                sampling=self.sampling(), world_size=self.world, device="cpu" if self.cfg.common.cpu else "cuda"))
        update = self.trainer.get_num_updates()
        reason = self.out_of_budget(update)
        patience = self.settings.patience
        if patience and self.state.bad_validations >= patience:
            reason = "early stopping (before this run: no improvement in the last %d validations)" % patience
        self.last_saved = update if reason else -1
        self.previous = update
        self.t_start = time.time()
        self.clock_start = (update, float(self.trainer.cumulative_training_time()), self.cpu_seconds())
        return reason

    def cpu_seconds(self) -> float:
        """CPU time of this training run (all threads, this process and the runs it resumes)."""
        return self.cpu_before + time.process_time()

    def set_lr(self, update: int) -> None:
        """The budget schedule's rate for the next update (fairseq's own scheduler is left fixed)."""
        if self.schedule is None:
            return
        start_update, start_wall, start_cpu = self.clock_start
        self.schedule.observe(update, start_update, (
            (float(self.trainer.cumulative_training_time()), self.max_seconds, start_wall),
            (self.cpu_seconds(), self.max_cpu_seconds, start_cpu)))
        self.trainer.optimizer.set_lr(self.schedule.lr(update))

    # -- run -----------------------------------------------------------------------
    def run(self) -> LoopResult:
        self.restore()
        reason = self.start()
        epoch_done = False
        while reason is None:
            if self.epoch_itr.next_epoch_idx > self.max_epoch:
                reason = f"reached max_epochs ({int(self.max_epoch)})"
                break
            if epoch_done:  # the next epoch's iterator; with sharded data it reads the next shard
                self.epoch_itr = self.trainer.get_train_iterator(self.epoch_itr.next_epoch_idx,
                                                                 load_dataset=self.task.has_sharded_data("train"))
            reason = self.train_epoch()
            epoch_done = reason is None and self.end_epoch()
        return self.finish(reason)

    def train_epoch(self) -> str | None:
        """Train through the rest of the epoch; the reason to stop when there is one."""
        # shuffled from the first epoch on, as fairseq-train does (unshuffled, batches come in
        # length order: the whole of a large corpus' first epoch would be sorted by length)
        itr = self.epoch_itr.next_epoch_itr(fix_batches_to_gpus=False, shuffle=True)
        itr = iterators.GroupedIterator(itr, self.cfg.optimization.update_freq[0])
        self.trainer.begin_epoch(self.epoch_itr.epoch)
        for samples in itr:
            reason = self.step(samples)
            if reason:
                return reason
        return None

    def end_epoch(self) -> bool:
        """After a full pass: step the learning-rate schedule; whether the epoch ended."""
        if self.epoch_itr.end_of_epoch():
            self.trainer.lr_step(self.epoch_itr.epoch, None)
            return True
        return False

    def step(self, samples) -> str | None:
        """One update, then logging, validation and saving as due; the reason to stop when there is one."""
        self.set_lr(self.trainer.get_num_updates())
        with metrics.aggregate("train_inner"), torch.autocast("cpu", dtype=torch.bfloat16,
                                                              enabled=self.settings.cpu_bf16):
            self.trainer.train_step(samples)
        update = self.trainer.get_num_updates()
        stepped = update != self.previous  # no update: fp16 overflow or OOM skipped the step
        if stepped and update % TRIM_EVERY == 0:
            release_free_memory()  # bounds the fragmented heap (see nmt.memory)
        self.previous = update
        if stepped and update % self.cfg.common.log_interval == 0 and self.is_master:
            self.log_stats(update)
        reason = self.out_of_budget(update)
        signalled = self.stop.signal is not None
        if self.world > 1:  # ranks must stop at the same update: rank 0 decides (time, signals)
            reason, signalled = distributed_utils.broadcast_object(
                (reason, signalled), src_rank=0, group=distributed_utils.get_data_parallel_group())
        if signalled:  # save at once: a grace period (SLURM, docker stop) may be short
            self.save(update)
            self.last_saved = self.last_validated = update
            return f"stopped by {signal.Signals(self.stop.signal or signal.SIGTERM).name}"
        if not stepped:
            return reason
        if update % self.settings.validate_every == 0 or (reason and update != self.last_validated):
            self.last_validated = update
            if self.validate(update):
                reason = reason or "early stopping"
            self.last_saved = update
        elif update % self.settings.save_every == 0:
            self.save(update)
            self.last_saved = update
        return reason

    def log_stats(self, update: int) -> None:
        stats = {k: float(v) for k, v in metrics.get_smoothed_values("train_inner").items()
                 if isinstance(v, (int, float)) or hasattr(v, "__float__")}
        stats["lr"] = self.schedule.lr(update) if self.schedule is not None else self.trainer.get_lr()
        stats["cpu_seconds"] = self.cpu_seconds()
        if self.schedule is not None and math.isfinite(self.schedule.expected):
            stats["expected_updates"], stats["warmup_updates"] = self.schedule.expected, self.schedule.warmup_updates()
        stats["epoch"] = self.epoch_itr.epoch
        stats["elapsed"] = time.time() - self.t_start
        self.hooks.on_log(update, stats)
        metrics.reset_meters("train_inner")

    def out_of_budget(self, update: int) -> str | None:
        if update >= self.max_update:
            return f"reached max_updates ({int(self.max_update)})"
        if float(self.trainer.cumulative_training_time()) >= self.max_seconds:
            return f"reached the time budget ({self.settings.max_time_minutes} min)"
        # the final validation and checkpoint are part of the CPU budget: stop when the last one's cost
        # would no longer fit
        if self.cpu_seconds() + self.reserve >= self.max_cpu_seconds:
            return f"reached the CPU-time budget ({self.settings.max_cpu_minutes} CPU min)"
        return None

    def finish(self, reason: str) -> LoopResult:
        """Save the last update (validated, unless it was), report the end."""
        update = self.trainer.get_num_updates()
        if self.last_saved != update:
            if self.last_validated != update:
                self.validate(update)
            else:
                self.save(update)
        log.info("training stopped at update %d: %s", update, reason)
        result = LoopResult(state=self.state, updates=update, stop_reason=reason,
                            training_seconds=float(self.trainer.cumulative_training_time()),
                            cpu_seconds=self.cpu_seconds(), lr_schedule=self.schedule_record(),
                            epoch=self.epoch_itr.epoch, signal=self.stop.signal)
        if self.is_master:
            self.hooks.on_end(result)
        return result

    def schedule_record(self) -> dict:
        """The learning-rate schedule this run followed (``training.json``'s ``lr_schedule``)."""
        if self.schedule is None:
            return {"kind": "inverse_sqrt"}
        return {"kind": "budget", "peak_lr": self.schedule.peak, "warmup_updates": self.schedule.warmup_updates(),
                "expected_updates": (round(self.schedule.expected) if math.isfinite(self.schedule.expected)
                                     else None), "final_lr_ratio": self.schedule.final_ratio,
                "decay_share": self.schedule.decay_share}

    # -- validation and checkpoints ----------------------------------------------------
    def valid_loss(self) -> float | None:
        itr = self.trainer.get_valid_iterator("valid").next_epoch_itr(shuffle=False, set_dataset_epoch=False)
        self.trainer.begin_valid_epoch(self.epoch_itr.epoch)
        with metrics.aggregate(new_root=True) as agg:
            for sample in itr:
                self.trainer.valid_step(sample)
        stats = agg.get_smoothed_values()
        return float(stats["loss"]) if "loss" in stats else None

    def validate(self, update: int) -> bool:
        """Validate and save; return True when early stopping says stop."""
        cpu_start = self.cpu_seconds()
        loss = self.valid_loss()
        verdict = None
        if self.is_master:
            verdict = self.judge(update, loss, self.score(update, loss))
        if self.world > 1:
            sent = distributed_utils.broadcast_object(verdict.to_dict() if verdict is not None else None, src_rank=0,
                                                      group=distributed_utils.get_data_parallel_group())
            verdict = Verdict.from_dict(sent)
            self.state = verdict.state
        self.save(update, best=verdict.improved)
        release_free_memory()  # what generation allocated
        self.reserve = self.cpu_seconds() - cpu_start
        return verdict.stop

    def score(self, update: int, loss: float | None) -> Scores:
        """The hooks' score of the model by translation (none without generation settings)."""
        generation = self.settings.generation
        was_training = self.trainer.model.training
        self.trainer.model.eval()
        try:
            if generation is None:
                log.info("validation @ %d | loss %.3f", update, loss if loss is not None else float("nan"))
                return Scores()
            model = self.trainer.get_model()
            generator = FairseqGenerator(model, self.task.target_dictionary, list(generation.languages),
                                         generation.lang_tok_style, generation.encoder_langtok,
                                         generation.decoder_langtok, device=str(next(model.parameters()).device))
            return self.hooks.validate(generator, update, loss)
        finally:
            self.trainer.model.train(was_training)

    def judge(self, update: int, loss: float | None, scores: Scores) -> Verdict:
        """Best checkpoint and early stopping from this validation (rank 0)."""
        state, patience = self.state, self.settings.patience
        score = scores.score
        if self.settings.metric == "loss" or score is None:
            score = -loss if loss is not None else None
        improved = score is not None and (state.best_score is None or score > state.best_score)
        if improved:
            state.best_score, state.best_update = score, update
            state.bad_validations = 0
        elif score is not None:
            state.bad_validations += 1
        state.history.append(Validation(update, loss, score, dict(scores.details)))
        should_stop = bool(patience and state.bad_validations >= patience)
        if should_stop:
            log.info("early stopping: no improvement in the last %d validations (best %.3f at update %s)",
                     patience, state.best_score, state.best_update)
        return Verdict(improved=improved, stop=should_stop, state=state)

    def save(self, update: int, best: bool = False) -> None:
        self.state.cpu_seconds = self.cpu_seconds()
        extra = {"train_iterator": self.epoch_itr.state_dict(), "val_loss": None, "nmt": self.state.to_dict(),
                 "best": self.state.best_score}
        self.trainer.consolidate_optimizer()  # every rank: sharded optimizers gather their state here
        state = utils.move_to_cpu(self.trainer.state_dict())  # every rank (it may communicate)
        if not self.trainer.should_save_checkpoint_on_current_rank:
            return
        state["extra_state"].update(extra)
        last = checkpoint_files.store(state, self.save_dir, update, best, self.settings.keep_last)
        self.hooks.on_checkpoint(update, str(last), best, self.state)
