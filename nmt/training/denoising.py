"""``nmt pretrain``: an mBART-style model by multilingual denoising, written in the official layout.

The text is the prepared data's (both sides of every pair) plus ``--mono``
directories of ``{lang}.txt`` files; it is binarized once into
``denoise-data/`` (redone when the prepared data or the --mono files change).
The result is a bundle like the published mBART-50 tarballs
(``sentence.bpe.model``, ``dict.txt``, ``ML50_langs.txt``, ``model.pt``) that
``nmt finetune`` starts from.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from nmt import langs
from nmt.config import TrainConfig
from nmt.data.manifest import PreparedData
from nmt.data.stages import file_stamp, fingerprint
from nmt.errors import NmtError
from nmt.data.indexed import IndexedWriter, ids_with_eos
from nmt.fairseq_backend import load_state
from nmt.fairseq_backend import training as backend
from nmt.fairseq_backend.surgery import save_state
from nmt.fileio import atomic_open, read_json, read_lines, write_json
from nmt.text import normalize
from nmt.training.hooks import TrainHooks
from nmt.training.rundir import RunDir, TrainResult
from nmt.fairseq_backend.settings import LoopSettings
from nmt.training.translation import with_resolved_precision
from nmt.vocab import load_spm, piece_table, read_dictionary

DENOISE_DIR = "denoise-data"


def pretrain(cfg: TrainConfig, run_dir, mono_dirs=(), reset: bool = False, stop=None) -> TrainResult:
    """Denoising pretraining on the prepared data's text; writes an official-layout bundle. ``stop``
    as for ``nmt.training.translation.train``."""
    run = RunDir(run_dir, "the pretraining run")
    with run.lock("nmt pretrain"):
        return _pretrain_locked(cfg, run, mono_dirs, reset, stop)


def _pretrain_locked(cfg: TrainConfig, run: RunDir, mono_dirs, reset: bool, stop=None) -> TrainResult:
    data = PreparedData.load(cfg.data)
    device = backend.resolve_device(cfg.training.device)
    if cfg.distributed.world_size > 1 and cfg.distributed.init_method:
        raise NmtError("nmt pretrain runs in one process, or one per GPU spawned by fairseq: set "
                       "distributed.world_size without distributed.init_method")
    if reset:
        run.reset()
    # what the denoising data is made of: the prepared data (its final stage's fingerprint) + --mono files
    inputs = fingerprint({"data": data.fingerprint(),
                          "mono": [file_stamp(p) for d in mono_dirs or [] for p in sorted(Path(d).glob("*.txt"))]})
    done_file = run.path / DENOISE_DIR / "done.json"
    resuming = run.resuming
    if resuming:
        differences = run.config_differences(cfg)
        if (read_json(done_file) if done_file.is_file() else {}).get("inputs") != inputs:
            differences.append("the pretraining text (prepared data or --mono files) changed")
        run.refuse_changed("a pretraining run", differences)
    texts = _mono_text(data, mono_dirs)
    languages = [x for x in langs.MBART50_LANGS if x in texts]
    if not resuming:  # official layout: sentence.bpe.model, dict.txt, ML50_langs.txt (+ model.pt at the end)
        run.install(data.spm_model, "sentence.bpe.model")
        run.install(data.dictionary, "dict.txt")
        with atomic_open(run.path / "ML50_langs.txt") as out:
            out.write("".join(f"{x}\n" for x in languages))
    if not done_file.is_file() or read_json(done_file).get("inputs") != inputs:
        _binarize(run.path, texts, languages, inputs)
    counts = read_json(done_file)["sentences"]
    run.save_config(cfg)
    cfg = with_resolved_precision(cfg, device)
    argv = backend.denoising_args(cfg, str(run.path / DENOISE_DIR), languages,
                                  str(run.path / "sentence.bpe.model"), str(run.checkpoints), device)
    hooks = TrainHooks(run.path, cfg, {"kind": "denoising", "data": str(data.path), "sentences": counts},
                       metric="loss")
    with run.logging_to("pretrain.log"):
        loop = backend.run(argv, hooks, LoopSettings.from_config(cfg, device, metric="loss"), stop)
    if loop is not None and loop.signal is not None:  # stopped and saved: a rerun resumes, then writes model.pt
        return run.result(loop)
    best = load_state(run.checkpoints / "checkpoint_best.pt")
    # model.pt is for fine-tuning, like the official one: weights and config, no training state
    # (fairseq would otherwise carry the pretraining clock into the fine-tuning run)
    best["last_optimizer_state"] = None
    best["extra_state"] = {"train_iterator": {"epoch": 1}}
    save_state(best, run.path / "model.pt")
    run.write_bundle(data, cfg.model.resolved().max_positions, languages=languages, lang_tok_style="mbart",
                     encoder_langtok="src", decoder_langtok=True, directions=[], checkpoint="model.pt",
                     spm="sentence.bpe.model", dictionary="dict.txt", kind="denoising", add_mask=True,
                     pretrained_on=counts)
    return run.result(loop)


def _mono_text(data: PreparedData, extra_dirs) -> dict:
    """Monolingual text per language: both sides of the prepared bitext (+ {lang}.txt files), de-duplicated."""
    texts: dict[str, dict] = {}
    for split in ("train", "valid"):
        for name in data.pairs:
            for lang in name.split("-"):
                path = data.clean_file(split, name, lang)
                if path.is_file():
                    lines, _ = read_lines(path)
                    texts.setdefault(lang, {}).setdefault(split, set()).update(lines)
    for directory in extra_dirs or []:
        for path in sorted(Path(directory).glob("*.txt")):
            lang = path.stem
            langs.get(lang)
            lines, _ = read_lines(path, on_bad_utf8="skip")
            texts.setdefault(lang, {}).setdefault("train", set()).update(
                x for x in (normalize(line) for line in lines if line is not None) if x)
    out = {}
    for lang, splits in texts.items():
        valid = sorted(splits.get("valid", set()))
        train = sorted(splits.get("train", set()) - set(valid))
        out[lang] = {"train": train, "valid": valid or train[:50]}
    return out


def _binarize(run_path: Path, texts: dict, languages: list, inputs: str) -> None:
    """``denoise-data/{lang}/{train,valid}``: the text encoded with the run's vocabulary; done.json last."""
    denoise = run_path / DENOISE_DIR
    shutil.rmtree(denoise, ignore_errors=True)
    processor = load_spm(run_path / "sentence.bpe.model")
    symbols = read_dictionary(run_path / "dict.txt")
    table = piece_table(processor, symbols)
    denoise.mkdir(parents=True)
    shutil.copyfile(run_path / "dict.txt", denoise / "dict.txt")
    counts = {}
    for lang in languages:
        (denoise / lang).mkdir()
        for split in ("train", "valid"):
            lines = texts[lang][split]
            writer = IndexedWriter(denoise / lang / split, len(symbols))
            flat, sizes = ids_with_eos(processor.encode(lines, out_type=int), table)
            writer.add_batch(flat, sizes)
            writer.close()
            counts.setdefault(lang, {})[split] = len(lines)
    write_json(denoise / "done.json", {"inputs": inputs, "sentences": counts})
