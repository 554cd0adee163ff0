"""``nmt train``: one shared many-to-many model, written as a model bundle.

The run directory *is* the bundle (see ``nmt.bundle``): it receives the
vocabulary files and ``bundle.json`` first, then checkpoints as training goes,
so ``nmt translate --model RUN`` works from the first checkpoint on. Running the
same command again resumes from ``checkpoints/checkpoint_last.pt``; a changed
configuration is refused with the list of differences unless ``reset``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path


from nmt import langs
from nmt.bundle import Bundle
from nmt.config import TrainConfig, config_differences, save_config
from nmt.data.bin_stage import fairseq_data_path
from nmt.data.prepare import load_prepared
from nmt.errors import NmtError
from nmt.fileio import OutputLock, read_lines, read_yaml, sha256_file, write_json

log = logging.getLogger("nmt.train")


def _direction_list(cfg: TrainConfig, manifest: dict) -> list[tuple[str, str]]:
    prepared = list(manifest["directions"])
    chosen = cfg.directions or prepared
    out = []
    for item in chosen:
        if item not in prepared:
            raise NmtError(f"direction {item} is not in the prepared data {cfg.data}; it has: {', '.join(prepared)}")
        out.append(langs.parse_direction(item))
    return out


def load_valid_sets(data_dir: Path, manifest: dict, directions, max_sentences: int) -> dict:
    """The first ``max_sentences`` cleaned validation pairs of each direction."""
    sets = {}
    for src, tgt in directions:
        name = manifest["directions"][f"{src}-{tgt}"]["data"]
        src_lines, _ = read_lines(data_dir / "clean" / f"valid.{name}.{src}")
        ref_lines, _ = read_lines(data_dir / "clean" / f"valid.{name}.{tgt}")
        sets[f"{src}-{tgt}"] = (src_lines[:max_sentences], ref_lines[:max_sentences])
    return sets


def bleu_unusable(directions, metric: str) -> dict:
    """Validation directions whose BLEU tokenizer cannot load here -> why (checked before training).

    Their BLEU is reported as n/a (with a warning when training starts) rather than the run
    crashing at its first validation; when BLEU picks the best checkpoint, that is an error."""
    from nmt.evaluate import metrics

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


class TrainHooks:
    """Logging, per-direction validation (BLEU / chrF), TensorBoard and the training manifest."""

    def __init__(self, run_dir: Path, valid_sets: dict, cfg: TrainConfig, manifest_base: dict,
                 no_bleu: dict | None = None):
        self.run_dir = Path(run_dir)
        self.valid_sets = valid_sets
        self.metric = cfg.validation.metric
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

    def on_start(self, info: dict) -> None:
        self.manifest.update(parameters=info["parameters"], world_size=info["world_size"], device=info["device"])
        self.manifest.setdefault("sampling", info["sampling"])
        starts = self.manifest.setdefault("starts", [])
        starts.append({"update": info["start_update"], "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        verb = "resuming at update %d" % info["start_update"] if info["start_update"] else "starting"
        log.info("%s: %s parameters, %d process(es) on %s", verb, f"{info['parameters']:,}",
                 info["world_size"], info["device"])
        if info["sampling"]:
            log.info("temperature sampling over directions (pairs -> sampled per epoch, share of an epoch):")
            for direction, row in info["sampling"].items():
                log.info("  %-14s %8d -> %8d  (%.1f%%)", direction, row["pairs"],
                         row["sampled_pairs_per_epoch"], 100 * row["share"])
        self._save_manifest()

    def on_log(self, update: int, stats: dict) -> None:
        log.info("update %d | epoch %d | loss %.3f | ppl %.1f | wps %.0f | lr %.2e", update, stats.get("epoch", 0),
                 stats.get("loss", float("nan")), stats.get("ppl", float("nan")), stats.get("wps", 0),
                 stats.get("lr", 0))
        for key in ("loss", "nll_loss", "ppl", "wps", "lr", "gnorm"):
            self._scalar(f"train/{key}", stats.get(key), update)

    def validate(self, generator, update: int, valid_loss):
        from nmt.evaluate import metrics
        from nmt.translate.backends import DecodeOptions, FairseqBackend
        from nmt.translate.codec import SubwordCodec
        from nmt.translate.translator import Translator

        if self._bundle is None:
            self._bundle = Bundle.load(self.run_dir, need_checkpoint=False)
            self._codec = SubwordCodec(self._bundle.spm_path, self._bundle.dict_path,
                                       self._bundle.extra.get("normalization", "NFC"), tags=self._bundle.tags)
        translator = Translator.from_backend(self._bundle, FairseqBackend.from_generator(generator), self._codec)
        t0 = time.time()
        scores = {"bleu": {}, "chrf": {}}
        for direction, (sources, refs) in self.valid_sets.items():
            src, tgt = direction.split("-")
            hyps = translator.translate_text(sources, src, tgt, options=DecodeOptions(**self.decode))
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
        return score, {"bleu": scores["bleu"], "chrf": scores["chrf"], "avg_bleu": average["bleu"],
                       "avg_chrf": average["chrf"]}

    def on_checkpoint(self, update: int, path: str, best: bool, state: dict) -> None:
        self.manifest.update(updates=update, best={"metric": self.metric, "score": state.get("best_score"),
                                                   "update": state.get("best_update")},
                             validations=state.get("history", []))
        self._save_manifest()
        if self.writer:
            self.writer.flush()

    def on_end(self, state: dict) -> None:
        self.manifest.update(updates=state["updates"], stop_reason=state["stop_reason"],
                             training_seconds=round(state["training_seconds"], 1), epochs=state["epoch"],
                             best={"metric": self.metric, "score": state.get("best_score"),
                                   "update": state.get("best_update")},
                             validations=state.get("history", []))
        self._save_manifest()
        if self.writer:
            self.writer.close()


def prepare_run_dir(cfg: TrainConfig, run_dir: Path, manifest: dict, directions, reset: bool,
                    data_dir: Path, max_positions: int) -> Bundle:
    ckpt_dir = run_dir / "checkpoints"
    saved = run_dir / "config.yaml"
    resuming = (ckpt_dir / "checkpoint_last.pt").is_file()
    vocabulary = ((data_dir / "spm" / "spm.model", "spm.model"), (data_dir / "bin" / "dict.txt", "dict.txt"),
                  (data_dir / "bin" / "lang_dict.txt", "lang_dict.txt"))
    if resuming and saved.is_file() and not reset:
        old = read_yaml(saved, "saved config") or {}
        diffs = config_differences(old, cfg.to_dict())
        changed = [name for src, name in vocabulary
                   if (run_dir / name).is_file() and sha256_file(src) != sha256_file(run_dir / name)]
        if changed:
            diffs.append(f"the prepared data's {', '.join(changed)} changed since this run started")
        if diffs:
            raise NmtError(f"{run_dir} holds a run with a different configuration ({'; '.join(diffs)}); "
                           "pass --reset to discard it and start over, or choose another --output")
    if reset:
        for name in ("checkpoints", "tensorboard", "training.json"):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        resuming = False
    run_dir.mkdir(parents=True, exist_ok=True)
    for src, dst in vocabulary:
        tmp = run_dir / f".{dst}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, run_dir / dst)
    save_config(cfg, saved)
    bundle = Bundle(
        path=run_dir, languages=list(manifest["languages"]), lang_tok_style=manifest["lang_tok_style"],
        encoder_langtok=cfg.training.encoder_langtok, decoder_langtok=cfg.training.decoder_langtok,
        directions=[f"{s}-{t}" for s, t in directions], checkpoint="checkpoints/checkpoint_best.pt",
        add_mask=manifest["lang_tok_style"] == "mbart", tags=list(manifest.get("tags", [])),
        extra={"normalization": manifest["settings"]["filters"]["normalization"],
               "max_source_positions": max_positions,
               **({"pretrained": cfg.init.pretrained} if cfg.init.pretrained else {"preset": cfg.model.preset})},
    )
    bundle.save()
    return bundle


def train(cfg: TrainConfig, run_dir, reset: bool = False, dry_run: bool = False) -> dict | list:
    """Train (or resume) and return the training manifest; ``dry_run`` returns the fairseq arguments."""
    from nmt.fairseq_backend import training as backend

    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise NmtError(f"--output {run_dir} is a file; give a directory for the run (it becomes the model bundle)")
    data_dir = Path(cfg.data)
    manifest = load_prepared(data_dir)
    directions = _direction_list(cfg, manifest)
    run_dir = Path(run_dir)
    device = backend.resolve_device(cfg.training.device)
    if device == "cpu" and cfg.training.precision != "fp32":
        raise NmtError(f"training.precision {cfg.training.precision} needs a GPU; use fp32 on CPU")
    if device == "cpu" and cfg.distributed.world_size > 1 and not cfg.distributed.init_method:
        raise NmtError("data-parallel training on CPU needs distributed.init_method (tcp://HOST:PORT) and one "
                       "nmt train process per rank (distributed.rank); see docs/DISTRIBUTED.md")
    if reset and cfg.distributed.world_size > 1 and cfg.distributed.init_method:
        raise NmtError("--reset with one process per rank would race (rank 0 deletes what the others load); "
                       "delete the run directory or choose a new --output instead")
    for item in cfg.validation.directions:
        if item not in manifest["directions"]:
            raise NmtError(f"validation direction {item} has no validation data in {cfg.data}; "
                           f"choose among: {', '.join(manifest['directions'])}")
    finetune, arch_args, max_positions = None, None, cfg.model.resolved()["max_positions"]
    if cfg.init.pretrained:
        from nmt.mbart import finetune_checkpoint

        finetune, arch_args, max_positions = finetune_checkpoint(cfg, manifest, data_dir)
    argv = backend.fairseq_train_args(cfg, fairseq_data_path(data_dir, manifest), directions, manifest["lang_tok_style"],
                                      str(run_dir / "checkpoints"), device, finetune_from=finetune,
                                      arch_args=arch_args)
    if dry_run:
        return argv
    valid_dirs = [langs.parse_direction(d) for d in cfg.validation.directions] or directions
    no_bleu = bleu_unusable([f"{s}-{t}" for s, t in valid_dirs], cfg.validation.metric)
    # torchrun / SLURM set RANK for every process; otherwise the config says (fairseq's own spawning
    # starts the other ranks later, from this process)
    rank = cfg.distributed.rank if cfg.distributed.init_method else int(os.environ.get("RANK", "0"))
    with contextlib.ExitStack() as stack:  # rank 0 holds the run directory's lock until the end
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(OutputLock(run_dir, "nmt train"))
            prepare_run_dir(cfg, run_dir, manifest, directions, reset, data_dir, max_positions)
        _log_to_file(run_dir / f"train{'' if rank == 0 else f'.rank{rank}'}.log")
        valid_sets = load_valid_sets(data_dir, manifest, valid_dirs, cfg.validation.max_sentences)
        existing = {}
        if (run_dir / "training.json").is_file() and not reset:
            import json

            existing = json.loads((run_dir / "training.json").read_text(encoding="utf-8"))
        base = {**existing, "data": str(data_dir), "preset": cfg.model.preset,
                "directions": {f"{s}-{t}": manifest["directions"][f"{s}-{t}"] for s, t in directions},
                "validation_lines": {d: len(v[0]) for d, v in valid_sets.items()},
                "validation_source": "first lines of the prepared validation split (clean/valid.*)"}
        hooks = TrainHooks(run_dir, valid_sets, cfg, base, no_bleu)
        settings = {
            "threads": cfg.training.threads or (os.cpu_count() or 1) if device == "cpu" else 0,
            "validate_every": cfg.validation.every_updates, "save_every": cfg.checkpoint.every_updates,
            "keep_last": cfg.checkpoint.keep_last, "metric": cfg.validation.metric,
            "patience": cfg.validation.patience, "max_time_minutes": cfg.training.max_time_minutes,
            "languages": list(manifest["languages"]), "lang_tok_style": manifest["lang_tok_style"],
            "encoder_langtok": cfg.training.encoder_langtok, "decoder_langtok": cfg.training.decoder_langtok,
            "finetune": bool(finetune),
        }
        backend.run(argv, hooks, settings)
        import json

        path = run_dir / "training.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _log_to_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()) for h in root.handlers):
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | %(name)s | %(message)s"))
    root.addHandler(handler)
