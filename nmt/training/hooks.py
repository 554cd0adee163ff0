"""``TrainHooks``: what the training loop reports to, for every training command.

Logging, per-direction validation by translation (BLEU / chrF, computed on the
model being trained through nmt's own Translator), TensorBoard scalars and the
run's ``training.json`` (data, sampling, validation history, best checkpoint).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from nmt.bundle import Bundle
from nmt.config import TrainConfig
from nmt.errors import NmtError
from nmt import metrics
from nmt.fileio import write_json
from nmt.fairseq_backend.settings import Hooks, LoopResult, LoopState, Scores, StartInfo
from nmt.translate.backends import DecodeOptions, FairseqBackend
from nmt.vocab import SubwordCodec
from nmt.translate.translator import Translator

log = logging.getLogger("nmt.train")


def bleu_unusable(directions, metric: str) -> dict:
    """Validation directions whose BLEU tokenizer cannot load here -> why (checked before training).

    Their BLEU is reported as n/a (with a warning when training starts) rather than the run
    crashing at its first validation; when BLEU picks the best checkpoint, that is an error."""
    missing = {}
    for direction in directions:
        try:
            metrics.bleu_metric(direction.split("-")[1])
        except NmtError as exc:
            missing[direction] = str(exc)
    if missing and metric == "bleu":
        raise NmtError(f"validation.metric is bleu but BLEU cannot be computed for {', '.join(missing)}: "
                       f"{next(iter(missing.values()))}; or set validation.metric=chrf")
    return missing


class TrainHooks(Hooks):
    """Logging, per-direction validation (BLEU / chrF), TensorBoard and the training manifest.

    ``valid_sets``: direction -> (sources, references) translated at each validation; ``metric``
    overrides ``validation.metric`` (what picks the best checkpoint)."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, manifest_base: dict, valid_sets: dict | None = None,
                 no_bleu: dict | None = None, metric: str | None = None):
        self.run_dir = Path(run_dir)
        self.valid_sets = dict(valid_sets or {})
        self.metric = metric or cfg.validation.metric
        self.bleu_unusable = dict(no_bleu or {})  # direction -> why its BLEU is n/a
        manifest_base.pop("validation_bleu_unavailable", None)
        if self.bleu_unusable:
            manifest_base["validation_bleu_unavailable"] = self.bleu_unusable
        for direction, why in self.bleu_unusable.items():
            log.warning("validation BLEU for %s will be n/a: %s", direction, why)
        self.decode = dict(beam=cfg.validation.beam, max_len_a=cfg.validation.max_len_a,
                           max_len_b=cfg.validation.max_len_b)
        self.manifest = manifest_base
        self._writer = None
        self._codec = None
        self._bundle = None

    def __getstate__(self):  # picklable for fairseq's multi-GPU spawn
        state = dict(self.__dict__)
        state.update(_writer=None, _codec=None, _bundle=None)
        return state

    @property
    def writer(self):
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
            except Exception as exc:  # TensorBoard is optional: never fail training for it
                log.warning("TensorBoard logging disabled: %s", exc)
                self._writer = False
        return self._writer

    def _scalar(self, tag: str, value, step: int) -> None:
        if self.writer and value is not None:
            self.writer.add_scalar(tag, value, step)

    def _save_manifest(self) -> None:
        write_json(self.run_dir / "training.json", self.manifest)

    def on_start(self, info: StartInfo) -> None:
        self.manifest.update(parameters=info.parameters, world_size=info.world_size, device=info.device)
        self.manifest.setdefault("sampling", info.sampling)
        starts = self.manifest.setdefault("starts", [])
        starts.append({"update": info.start_update, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        verb = "resuming at update %d" % info.start_update if info.start_update else "starting"
        log.info("%s: %s parameters, %d process(es) on %s", verb, f"{info.parameters:,}", info.world_size,
                 info.device)
        if info.sampling:
            log.info("temperature sampling over directions (pairs -> sampled per epoch, share of an epoch):")
            for direction, row in info.sampling.items():
                log.info("  %-14s %8d -> %8d  (%.1f%%)", direction, row["pairs"],
                         row["sampled_pairs_per_epoch"], 100 * row["share"])
        self._save_manifest()

    def on_log(self, update: int, stats: dict) -> None:
        budget = (f" | of ~{stats['expected_updates']:.0f} (warm-up {stats['warmup_updates']})"
                  if stats.get("expected_updates") is not None else "")
        log.info("update %d | epoch %d | loss %.3f | ppl %.1f | wps %.0f | lr %.2e%s", update, stats.get("epoch", 0),
                 stats.get("loss", float("nan")), stats.get("ppl", float("nan")), stats.get("wps", 0),
                 stats.get("lr", 0), budget)
        for key in ("loss", "nll_loss", "ppl", "wps", "lr", "gnorm"):
            self._scalar(f"train/{key}", stats.get(key), update)

    def validate(self, generator, update: int, valid_loss) -> Scores:
        if self._bundle is None:
            self._bundle = Bundle.load(self.run_dir, need_checkpoint=False)
            self._codec = SubwordCodec(self._bundle.spm_path, self._bundle.dict_path, self._bundle.normalization,
                                       tags=self._bundle.tags)
        translator = Translator.from_backend(self._bundle, FairseqBackend.from_generator(generator), self._codec)
        t0 = time.time()
        scores = {"bleu": {}, "chrf": {}}
        for direction, (sources, refs) in self.valid_sets.items():
            src, tgt = direction.split("-")
            # validation sets are sentences: translated whole, as they were before splitting existed
            options = DecodeOptions(**{"split_sentences": "never", **self.decode})
            hyps = translator.translate_text(sources, src, tgt, options=options)
            if direction not in self.bleu_unusable:
                scores["bleu"][direction] = metrics.bleu(hyps, refs, tgt).score
                self._scalar(f"valid_bleu/{direction}", scores["bleu"][direction], update)
            scores["chrf"][direction] = metrics.chrf(hyps, refs).score
            self._scalar(f"valid_chrf/{direction}", scores["chrf"][direction], update)
        # averages over the directions that have the score (BLEU is n/a where its tokenizer is missing)
        average = {k: round(sum(v.values()) / len(v), 2) if v else None for k, v in scores.items()}
        self._scalar("valid/loss", valid_loss, update)
        self._scalar("valid/bleu_avg", average["bleu"], update)
        self._scalar("valid/chrf_avg", average["chrf"], update)
        per_dir = " ".join(f"{d} {scores['chrf'][d]:.1f}/"
                           + (f"{scores['bleu'][d]:.1f}" if d in scores["bleu"] else "n/a") for d in self.valid_sets)
        log.info("validation @ %d | loss %.3f | avg chrF %.2f | avg BLEU %.2f | %.0fs", update,
                 valid_loss if valid_loss is not None else float("nan"), average["chrf"] or 0,
                 average["bleu"] or 0, time.time() - t0)
        log.info("  chrF/BLEU per direction: %s", per_dir)
        score = None if self.metric == "loss" else average[self.metric]
        return Scores(score, {"bleu": scores["bleu"], "chrf": scores["chrf"], "avg_bleu": average["bleu"],
                              "avg_chrf": average["chrf"]})

    def _record(self, state: LoopState) -> None:
        self.manifest.update(best={"metric": self.metric, "score": state.best_score, "update": state.best_update},
                             validations=[v.to_dict() for v in state.history])

    def on_checkpoint(self, update: int, path: str, best: bool, state: LoopState) -> None:
        self.manifest.update(updates=update)
        self._record(state)
        self._save_manifest()
        if self.writer:
            self.writer.flush()

    def on_end(self, result: LoopResult) -> None:
        self.manifest.update(updates=result.updates, stop_reason=result.stop_reason,
                             training_seconds=round(result.training_seconds, 1),
                             cpu_seconds=round(result.cpu_seconds, 1), lr_schedule=result.lr_schedule,
                             epochs=result.epoch)
        self._record(result.state)
        self._save_manifest()
        if self.writer:
            self.writer.close()
