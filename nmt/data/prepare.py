"""``nmt prepare``: raw ML50-style bitext -> data that ``nmt train`` reads.

Three stages, each in its own directory under the output directory:

``clean/``  normalised, filtered, de-duplicated text per pair and split, with
            evaluation overlap removed and a held-out validation split when none
            was given;
``spm/``    one SentencePiece model shared by all languages (or a given one);
``bin/``    fairseq ``translation_multi_simple_epoch`` data: one shared
            ``dict.txt`` (plus ``dict.{lang}.txt`` copies fairseq wants),
            ``lang_dict.txt`` fixing the language-token ids, and mmap datasets.

A stage is built in a temporary directory and renamed into place when it is
complete, with a ``stage.json`` holding the fingerprint of its inputs and
settings. A rerun skips a stage whose fingerprint matches, redoes it when the
settings or inputs changed, and ``force`` redoes everything. So an interrupted
run never leaves a stage that looks finished but is not.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


from nmt import __version__, langs, vocab
from nmt.data import clean as cleaning
from nmt.data.bin_stage import stage_bin, synthetic_plan
from nmt.data.clean_stage import stage_clean
from nmt.data import corpus as corpora
from nmt.data import lid
from nmt.data import spm as spm_lib
from nmt.data.manifest import FORMAT_VERSION
from nmt.data import stages
from nmt.errors import NmtError
from nmt.fairseq_backend import binarize
from nmt.fileio import read_text, write_json
from nmt.locks import OutputLock
from nmt.romanize import Romanization

log = logging.getLogger("nmt.prepare")

STAGES = ("clean", "spm", "bin")
_RUN_ONLY = ("out", "force", "workers", "chunk_lines")  # settings that do not change the output


MAX_VOCAB = 1 << 20  # far above any real vocabulary; sentencepiece cannot even parse sizes past 2**31


@dataclass
class PrepareConfig:
    out: str
    raw: list = field(default_factory=list)  # ML50-layout directories
    manifest: str | None = None  # and/or a YAML manifest (real corpora, synthetic corpora)
    synthetic_ratio: float | None = None  # at most this many synthetic pairs per real pair (None: manifest's / all)
    pairs: str = "all"  # all | to-en | from-en | de_DE-en_XX,en_XX-de_DE,...
    filters: cleaning.FilterConfig = field(default_factory=cleaning.FilterConfig)
    valid_size: int = 500  # held-out pairs per language pair when no valid split is given
    eval_sets: list = field(default_factory=list)  # extra files/dirs whose lines leave training
    on_bad_utf8: str = "error"  # error | skip
    vocab_size: int = 8000
    spm_model_type: str = "unigram"
    character_coverage: float = 0.9995
    byte_fallback: bool = False
    spm_temperature: float = 5.0
    spm_sample_size: int = 2_000_000
    spm_model: str | None = None  # reuse an existing sentencepiece model ...
    dictionary: str | None = None  # ... and its fairseq dict.txt (e.g. mBART's)
    lang_list: str | None = None  # a file with the language order (e.g. mBART-50's)
    lang_tok_style: str = "multilingual"
    seed: int = 1
    romanize: Romanization = field(default_factory=Romanization)  # languages written in Latin letters (uroman)
    shards: int = 1  # training data split into this many fairseq shards (bin/shard0, ...), one per epoch
    chunk_lines: int = 10_000  # line pairs per chunk read and cleaned at once (memory, not output)
    workers: int = 0  # 0: all CPU cores
    force: bool = False

    def check(self) -> None:
        self.filters.check()
        self.romanize.check()
        if not self.raw and not self.manifest:
            raise NmtError("give the corpora: --raw DIR (ML50 layout) or --manifest FILE")
        if self.synthetic_ratio is not None and not 0 < self.synthetic_ratio < float("inf"):
            raise NmtError(f"--synthetic-ratio must be a positive number, got {self.synthetic_ratio}")
        if self.on_bad_utf8 not in ("error", "skip"):
            raise NmtError(f"--on-bad-utf8 must be error or skip, not {self.on_bad_utf8!r}")
        if self.shards < 1:
            raise NmtError(f"--shards must be >= 1, got {self.shards}")
        if self.chunk_lines < 1:
            raise NmtError(f"--chunk-lines must be >= 1, got {self.chunk_lines}")
        if self.valid_size < 1:
            raise NmtError(f"--valid-size must be >= 1, got {self.valid_size}")
        if (self.spm_model is None) != (self.dictionary is None):
            raise NmtError("--spm-model and --dict go together: give both or neither")
        if self.spm_model is not None:
            spm_lib.check_model_file(self.spm_model)
            binarize.check_dictionary_file(self.dictionary)
            vocab.check_pair(self.spm_model, self.dictionary)
        if not 0 <= self.seed < 2 ** 31:
            raise NmtError(f"--seed must be between 0 and {2 ** 31 - 1}, got {self.seed}")
        if not 0 < self.spm_temperature < float("inf"):
            raise NmtError(f"--spm-temperature must be a positive number, got {self.spm_temperature}")
        if self.spm_model is None and not 16 <= self.vocab_size <= MAX_VOCAB:
            raise NmtError(f"--vocab-size must be between 16 and {MAX_VOCAB:,}, got {self.vocab_size}")
        if self.spm_model_type not in ("unigram", "bpe", "char", "word"):
            raise NmtError(f"--spm-model-type must be unigram, bpe, char or word, not {self.spm_model_type!r}")
        langs.lang_token("xx", self.lang_tok_style)
        for path in self.eval_sets:
            if not Path(path).exists():
                raise NmtError(f"evaluation set {path} does not exist")

    @property
    def n_workers(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


# --------------------------------------------------------------------------- helpers

def _progress(iterable=None, **kwargs):
    from tqdm import tqdm

    return tqdm(iterable, file=sys.stderr, disable=None, leave=False, **kwargs)


# --------------------------------------------------------------------------- stage 2: spm

def _stage_spm(cfg: PrepareConfig, clean_dir: Path, clean_info: dict, pair_names: list, out: Path) -> dict:
    if cfg.spm_model:
        shutil.copyfile(cfg.spm_model, out / "spm.model")
        shutil.copyfile(cfg.dictionary, out / "dict.txt")
        symbols = binarize.read_dictionary(cfg.dictionary)
        return {"source": "given", "spm_model": str(cfg.spm_model), "dictionary": str(cfg.dictionary),
                "dictionary_size": len(symbols)}
    files: dict[str, list[Path]] = {}
    counts: dict[str, int] = {}
    for name in pair_names:
        kept = clean_info["pairs"][name]["train"]["kept"]
        for lang in name.split("-"):
            files.setdefault(lang, []).append(clean_dir / f"train.{name}.{lang}")
            counts[lang] = counts.get(lang, 0) + kept
    sample, taken = spm_lib.sample_by_temperature(files, counts, cfg.spm_sample_size, cfg.spm_temperature,
                                                  cfg.seed, cfg.chunk_lines)
    log.info("training sentencepiece (%s, %d pieces) on %d sentences: %s", cfg.spm_model_type,
             cfg.vocab_size, len(sample), ", ".join(f"{k} {v}" for k, v in sorted(taken.items())))
    model = spm_lib.train(sample, out / "spm", cfg.vocab_size, cfg.spm_model_type,
                          cfg.character_coverage, cfg.byte_fallback, cfg.seed, cfg.n_workers)
    processor = spm_lib.load(model)
    pieces = spm_lib.pieces(processor)
    if pieces[:4] != ["<s>", "<pad>", "</s>", "<unk>"]:
        raise RuntimeError(f"unexpected sentencepiece specials {pieces[:4]}")
    binarize.write_dictionary(out / "dict.txt", pieces[4:])
    (out / "spm.vocab").unlink(missing_ok=True)
    os.replace(model, out / "spm.model")
    return {"source": "trained", "vocab_size": cfg.vocab_size, "model_type": cfg.spm_model_type,
            "character_coverage": cfg.character_coverage, "byte_fallback": cfg.byte_fallback,
            "temperature": cfg.spm_temperature, "sentences_per_language": taken,
            "lines_per_language": counts}


# --------------------------------------------------------------------------- driver

def _language_list(cfg: PrepareConfig, directions) -> list:
    used = {lang for d in directions for lang in d}
    if cfg.lang_list:
        listed = [x.strip() for x in read_text(cfg.lang_list, "--lang-list").replace(",", "\n").split()
                  if x.strip()]
        langs.check_codes(listed)
        missing = sorted(used - set(listed))
        if missing:
            raise NmtError(f"--lang-list {cfg.lang_list} lacks {', '.join(missing)}, used by the chosen directions")
        return listed
    return [code for code in langs.MBART50_LANGS if code in used]


def prepare(cfg: PrepareConfig) -> dict:
    """Run (or resume) all stages; return the manifest."""
    cfg.check()
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise NmtError(f"--out {out} is a file; give a directory for the prepared data")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with OutputLock(out, "nmt prepare"):
            return _prepare_locked(cfg, out)
    except BaseException:
        # an early error leaves no empty output directory behind (finished stages are kept)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _prepare_locked(cfg: PrepareConfig, out: Path) -> dict:
    t_start = time.time()
    pairs, synthetic, ratio = _corpora(cfg)
    directions = corpora.resolve_directions(cfg.pairs, pairs)
    used_pairs = {}
    for direction in directions:
        pair = corpora.pair_for(direction, pairs)
        used_pairs[pair.name] = pair
    unused = sorted(set(synthetic) - {f"{s}-{t}" for s, t in directions})
    if unused:
        raise NmtError(f"synthetic corpora for {', '.join(unused)}, a direction that is not prepared (--pairs "
                       f"{cfg.pairs}); add it to --pairs or remove it from the manifest")
    pair_names = sorted(used_pairs)
    language_list = _language_list(cfg, directions)
    cfg.romanize.check_directions(directions)
    unused_roman = sorted(set(cfg.romanize.languages) - {lang for d in directions for lang in d})
    if unused_roman:
        raise NmtError(f"--romanize {', '.join(unused_roman)}: not a language of the prepared directions "
                       f"({', '.join(f'{s}-{t}' for s, t in directions)})")
    tags = [corpora.BT_TAG] if any(d.tag for d in synthetic.values()) else []
    if tags and cfg.dictionary and corpora.BT_TAG not in binarize.read_dictionary(cfg.dictionary):
        log.warning("tagged synthetic corpora: the tag %s is appended to the given dictionary %s; a model "
                    "initialised from a pretrained checkpoint with that dictionary cannot take it (set 'tag: "
                    "false' there)", corpora.BT_TAG, cfg.dictionary)

    inputs = {name: {split: [[stages.file_stamp(p) for _, p in c.files] for c in pair.splits[split]]
                     for split in corpora.SPLITS} for name, pair in sorted(used_pairs.items())}
    if synthetic:
        inputs["synthetic"] = {name: [d.kind, d.tag, d.replace_real, [[stages.file_stamp(p) for _, p in c.files]
                                                      for c in d.splits["train"]]]
                               for name, d in sorted(synthetic.items())}
    eval_stamps = [stages.file_stamp(p) for path in cfg.eval_sets
                   for p in ([path] if Path(path).is_file() else sorted(Path(path).rglob("*")))
                   if Path(p).is_file()]
    settings = {k: v for k, v in asdict(cfg).items() if k not in _RUN_ONLY}
    # without --lid the fingerprint is what it was before the filter existed (finished stages stay valid)
    filters_fp = {k: v for k, v in settings["filters"].items() if cfg.filters.lid or not k.startswith("lid")}
    if cfg.filters.lid:
        filters_fp["lid_rule"] = lid.RULE_VERSION
    clean_settings = {"v": FORMAT_VERSION, "inputs": inputs, "eval": eval_stamps, "filters": filters_fp,
                      "valid_size": cfg.valid_size, "on_bad_utf8": cfg.on_bad_utf8, "seed": cfg.seed}
    if any(not pair.splits["valid"] for pair in used_pairs.values()):
        clean_settings["hold_out"] = "per-pair"  # held-out lines leave their own pair's training data only
    if cfg.romanize:  # (without romanization, the fingerprint is what it was before it existed)
        clean_settings["romanize"] = cfg.romanize.record()
    fp_clean = stages.fingerprint(clean_settings)
    spm_given = [stages.file_stamp(cfg.spm_model), stages.file_stamp(cfg.dictionary)] if cfg.spm_model else None
    fp_spm = stages.fingerprint({"clean": fp_clean, "given": spm_given, **{k: settings[k] for k in (
        "vocab_size", "spm_model_type", "character_coverage", "byte_fallback", "spm_temperature",
        "spm_sample_size", "seed")}})
    bin_settings = {"spm": fp_spm, "langs": language_list, "style": cfg.lang_tok_style, "shards": cfg.shards}
    if synthetic:  # (without synthetic data, the fingerprint is what it was before they existed)
        bin_settings["synthetic"] = {"ratio": ratio, "tags": tags}
    fp_bin = stages.fingerprint(bin_settings)

    timings = {}
    stage_info = {}
    for name, fingerprint in (("clean", fp_clean), ("spm", fp_spm), ("bin", fp_bin)):
        stage = stages.Stage(out, name, fingerprint)
        if stage.done() and not cfg.force:
            log.info("stage %s: up to date, skipped", name)
            stage_info[name] = json.loads((stage.final / "stage.json").read_text())
            continue
        log.info("stage %s: building", name)
        t0 = time.time()
        work = stage.begin()
        try:
            if name == "clean":
                info = stage_clean(cfg, used_pairs, work, synthetic)
            elif name == "spm":
                info = _stage_spm(cfg, out / "clean", stage_info["clean"], pair_names, work)
            else:
                info = stage_bin(cfg, out / "clean", out / "spm", language_list, pair_names, work, _progress,
                                 synthetic_plan(directions, stage_info["clean"], synthetic, ratio, cfg.seed), tags,
                                 directions)
            timings[name] = round(time.time() - t0, 2)
            info["seconds"] = timings[name]
            stage.commit(info)
        except BaseException:  # an input error, Ctrl-C, SIGTERM: no half-built stage left behind
            stage.abort()
            raise
        stage_info[name] = {"fingerprint": fingerprint, **info}

    manifest = _manifest(cfg, directions, language_list, stage_info, out)
    manifest["seconds_this_run"] = round(time.time() - t_start, 2)
    write_json(out / "manifest.json", manifest)
    return manifest


def _corpora(cfg: PrepareConfig):
    """Real pairs (--raw directories and/or the manifest's pairs), synthetic corpora, synthetic ratio."""
    pairs = corpora.discover_raw(cfg.raw) if cfg.raw else {}
    synthetic, ratio = {}, None
    if cfg.manifest:
        listed = corpora.load_manifest(cfg.manifest, need_pairs=not cfg.raw)
        twice = sorted(name for name, p in listed.items() if name in pairs or f"{p.tgt}-{p.src}" in pairs)
        if twice:
            raise NmtError(f"pair(s) {', '.join(twice)} are both in --raw and in --manifest {cfg.manifest}; "
                           "list each pair's corpora in one place")
        pairs.update(listed)
        synthetic, ratio = corpora.load_synthetic(cfg.manifest)
        if not pairs:
            raise NmtError(f"{cfg.manifest} lists only synthetic corpora; give the real data too "
                           "(its 'pairs:' or --raw DIR): validation and the real/synthetic ratio need it")
    if cfg.synthetic_ratio is not None:
        ratio = cfg.synthetic_ratio
    return pairs, synthetic, ratio


def _manifest(cfg, directions, language_list, stage_info, out: Path) -> dict:
    pair_info = stage_info["clean"]["pairs"]
    synthetic_counts = stage_info["bin"].get("synthetic", {})
    per_direction = {}
    for src, tgt in directions:
        name = f"{src}-{tgt}" if f"{src}-{tgt}" in pair_info else f"{tgt}-{src}"
        info = pair_info[name]
        per_direction[f"{src}-{tgt}"] = {
            "data": name,
            "train": info["train"]["kept"],
            "valid": info["valid"]["lines"],
            "test": info["test"]["lines"],
        }
        if f"{src}-{tgt}" in synthetic_counts:
            counts = synthetic_counts[f"{src}-{tgt}"]
            per_direction[f"{src}-{tgt}"].update(train=counts["real"] + counts["synthetic"], train_real=counts["real"],
                                                 train_synthetic=counts["synthetic"], synthetic=counts)
    settings = {k: v for k, v in asdict(cfg).items() if k not in _RUN_ONLY or k == "out"}
    return {
        "format_version": FORMAT_VERSION,
        "nmt_version": __version__,
        "data_dir": str(out / "bin"),
        "languages": language_list,
        "lang_tok_style": cfg.lang_tok_style,
        "directions": per_direction,
        "pairs": pair_info,
        "spm": {k: v for k, v in stage_info["spm"].items() if k != "fingerprint"},
        "dictionary_size": stage_info["bin"]["dictionary_size"],
        "shards": stage_info["bin"].get("shards", 1),
        "tags": stage_info["bin"].get("tags", []),
        "tokens": stage_info["bin"]["files"],
        "settings": settings,
        **({"romanization": _romanization(cfg, stage_info["clean"])} if cfg.romanize else {}),
    }


def _romanization(cfg: PrepareConfig, clean_info: dict) -> dict:
    """The manifest's record of romanization: languages, romanizer, and its speed in the cleaning workers."""
    done = clean_info.get("romanized", {})
    lines = sum(x["lines"] for x in done.values())
    seconds = sum(x["cpu_seconds"] for x in done.values())
    return {**cfg.romanize.record(), "training_lines": lines, "cpu_seconds": round(seconds, 3),
            "lines_per_cpu_second": round(lines / seconds, 1) if seconds > 0 else None, "corpora": done}
