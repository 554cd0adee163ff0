"""Romanization (issue 26's evidence): uroman's speed and equality on real text, and whether romanizing
an unseen script helps a model adapt to it, at equal budgets.

    .venv/bin/python benchmarks/bench_romanize.py speed --lines 1000
    .venv/bin/python benchmarks/bench_romanize.py adapt --work work/romanize --preset small \\
        --base-minutes 60 --adapt-updates 2000 --new-pieces 4000 --flores-lines 1-1012 --test-lines 300 --threads 1

Budgets (one thread, the 2-core development machine): ``speed`` ~1 CPU-minute plus uroman-fast
if installed. ``adapt`` as above (the section's command) is hours, not minutes: the base model's
60 minutes, then three fine-tunings of 2,000 small-preset updates (~0.5-1 update/s: ~40-60 min
each) and six FLORES-200 + held-out evaluations at beam 5 (tens of minutes each for a weak model,
which decodes up to the length cap): ~4-5 CPU-hours in all; a GPU makes the training part minutes.
Run again, it reuses a finished base model, the extensions and prepared data in --work (each
fine-tuning starts over). A smoke run of
the whole pipeline in ~10 CPU-minutes (numbers meaningless; written to another file):

    .venv/bin/python benchmarks/bench_romanize.py --results /tmp/smoke.md adapt --work /tmp/romanize \\
        --preset tiny --base-lines 500 --vocab-size 2000 --base-updates 20 --base-validate 20 \\
        --adapt-updates 10 --adapt-validate 10 --new-pieces 1500 --test-lines 20 --valid-lines 20 \\
        --flores-lines 1-10 --threads 1

``speed``: for ten languages (ar, bn, fa, he, hi, ja, ko, ru, uk, zh), the first --lines lines of
ml50-mini's training text and all of FLORES-200 devtest, romanized three ways: uroman as nmt runs it
(word cache on), uroman without its cache, and uroman-fast (a Rust port; skipped when not installed).
Lines per second on one core, and how many lines each gives exactly as nmt's does (after nmt's
whitespace step). Section "Romanization speed (uroman, uroman-fast)".

``adapt``:
1. Base model: --preset, trained from scratch for --base-minutes (or --base-updates) on the
   --base-langs <-> English directions of ml50-mini (Latin and Cyrillic scripts only; FLORES-200
   devtest kept out). Its sentencepiece vocabulary has never seen Bengali or Hangul.
2. The base model is extended with bn_IN and ko_KR (nmt extend-langs) three ways, and each is
   fine-tuned on ml50-mini bn_IN->en_XX and ko_KR->en_XX for the same --adapt-updates (same batch
   size, learning rate, seed; optionally capped at --adapt-minutes):
   native     native script, the original vocabulary (Bengali/Hangul become <unk>, or bytes with
              --byte-fallback);
   extended   native script, the vocabulary extended with --new-pieces pieces learnt on the
              adaptation text (nmt extend-langs --new-pieces-from);
   romanized  romanized with uroman (nmt prepare --romanize, extend-langs --romanize), the original
              vocabulary.
3. nmt evaluate --compare romanized native extended (baseline: romanized) on FLORES-200 devtest
   (--flores-lines) and on --test-lines held-out in-domain pairs per language, paired bootstrap per
   direction; segmentation statistics per system (pieces per FLORES source line, <unk> share).
Section "Romanization: adapting to unseen scripts (bn_IN, ko_KR -> en_XX)".

--results FILE writes the section there instead of benchmarks/RESULTS.md (smoke runs).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import common
from common import BIN, REPO, SHARED, machine, run, update_results

LANGS10 = ("ar_AR", "bn_IN", "fa_IR", "he_IL", "hi_IN", "ja_XX", "ko_KR", "ru_RU", "uk_UA", "zh_CN")
NEW = ("bn_IN", "ko_KR")
BASE_LANGS = "de_DE,cs_CZ,ru_RU,es_XX,fr_XX,uk_UA,tr_TR,vi_VN"  # Latin and Cyrillic scripts
ARMS = ("romanized", "native", "extended")  # the first is the evaluation baseline


# ----------------------------------------------------------------------------- speed

def speed(args) -> None:
    from nmt import langs, romanize
    from nmt.text import normalize

    texts = {}
    for lang in LANGS10:
        train = (SHARED / "ml50-mini" / "raw" / f"train.{lang}-en_XX.{lang}").read_text(encoding="utf-8")
        flores = (SHARED / "flores200" / "devtest" / f"{langs.get(lang).flores}.devtest").read_text(encoding="utf-8")
        texts[lang] = [normalize(x) for x in train.splitlines()[:args.lines] + flores.splitlines()]
    romanize.load()
    import uroman

    plain = uroman.Uroman()  # no word cache: each line as one lattice
    try:
        import uroman_fast
    except ImportError:
        uroman_fast = None
    rows, totals = [], {"nmt": [0, 0.0], "nocache": [0, 0.0], "fast": [0, 0.0]}
    diffs = []
    for lang, lines in texts.items():
        code = romanize.lcode(lang)
        timed = {}
        t0 = time.process_time()
        ours = romanize.romanize_lines(lines, lang)
        timed["nmt"] = time.process_time() - t0
        t0 = time.process_time()
        nocache = [" ".join(plain.romanize_string(x, lcode=code).split()) for x in lines]
        timed["nocache"] = time.process_time() - t0
        fast = None
        if uroman_fast is not None:
            t0 = time.process_time()
            fast = [" ".join(uroman_fast.romanize(x, lang=code).split()) for x in lines]
            timed["fast"] = time.process_time() - t0
        for key, seconds in timed.items():
            totals[key][0] += len(lines)
            totals[key][1] += seconds
        same_nocache = sum(a == b for a, b in zip(ours, nocache))
        same_fast = sum(a == b for a, b in zip(ours, fast)) if fast else None
        if fast:
            for x, a, b in zip(lines, ours, fast):
                if a != b and len(diffs) < 6 and not any(d[0] == lang for d in diffs):
                    diffs.append((lang, x, a, b))
        rate = {k: f"{len(lines) / s:,.0f}" for k, s in timed.items()}
        rows.append(f"| {lang} | {len(lines):,} | {rate['nmt']} | {rate['nocache']} | {same_nocache:,} | "
                    f"{rate.get('fast', 'n/a')} | {f'{same_fast:,}' if same_fast is not None else 'n/a'} |")
    rate = {k: f"{n / s:,.0f}" if s else "n/a" for k, (n, s) in totals.items()}
    n_all = totals["nmt"][0]
    fast_version = _version("uroman-fast") if uroman_fast else "not installed"
    body = f"""
Machine: {machine()}. Command: `benchmarks/bench_romanize.py speed --lines {args.lines}` ({time.strftime('%Y-%m-%d')}).
uroman {romanize.version()} (pure Python), uroman-fast {fast_version} (Rust). Text: per language the first
{args.lines:,} lines of ml50-mini's training text (short, mostly Tatoeba) and FLORES-200 devtest (1,012 news
sentences), normalised as nmt prepare does. One core, CPU time of the romanization calls only (loading uroman's
tables takes ~2.4 s and ~60 MB once per process). "same" counts lines identical to nmt's output (uroman with its
word cache, whitespace runs collapsed).

| language | lines | nmt (uroman, cache) lines/s | uroman, no cache lines/s | same | uroman-fast lines/s | same |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
| all | {n_all:,} | {rate['nmt']} | {rate['nocache']} | | {rate['fast']} | |

{_diff_text(diffs)}
"""
    update_results_in(args.results, "Romanization speed (uroman, uroman-fast)", body)
    print(body)


def _diff_text(diffs) -> str:
    if not diffs:
        return "uroman-fast gave every line exactly as uroman does."
    out = ["Where uroman-fast differs (first line per language):", ""]
    for lang, src, ours, fast in diffs:
        out.append(f"- {lang}: `{src[:70]}` -> uroman `{ours[:70]}`, uroman-fast `{fast[:70]}`")
    return "\n".join(out)


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def update_results_in(path: Path | None, section: str, body: str) -> None:
    if path is not None:
        common.RESULTS = Path(path)
    update_results(section, body)


# ----------------------------------------------------------------------------- adaptation

def _nmt(*args) -> float:
    seconds, _ = run([BIN / "nmt", *args])
    return seconds


def _sets(items: dict) -> list:
    return [x for key, value in items.items() for x in ("--set", f"{key}={value}")]


def base_model(args, work: Path) -> Path:
    data, model = work / "data-base", work / "base"
    if (model / "training.json").is_file() and json.loads((model / "training.json").read_text()).get("stop_reason"):
        return model  # finished by an earlier invocation
    pairs = ",".join(f"{x}-en_XX,en_XX-{x}" for x in args.base_langs.split(","))
    raw = SHARED / "ml50-mini" / "raw"
    if args.base_lines:  # the first N pairs of each language
        raw = work / "raw-base"
        raw.mkdir(exist_ok=True)
        for lang in args.base_langs.split(","):
            for side in (lang, "en_XX"):
                name = f"train.{lang}-en_XX.{side}"
                lines = (SHARED / "ml50-mini" / "raw" / name).read_text(encoding="utf-8").splitlines()
                (raw / name).write_text("".join(x + "\n" for x in lines[:args.base_lines]), encoding="utf-8")
    _nmt("prepare", "--raw", raw, "--eval-set", SHARED / "flores200" / "devtest",
         "--out", data, "--pairs", pairs, "--vocab-size", args.vocab_size, "--workers", args.threads,
         *(["--byte-fallback"] if args.byte_fallback else []))
    if args.base_cpu_minutes:  # nmt train's own defaults (budget schedule), a CPU-time budget
        config = []
        budget = {"training.max_cpu_minutes": args.base_cpu_minutes, "training.max_updates": 10_000_000}
    else:  # the quickstart config (inverse square root schedule), wall clock or updates
        config = ["--config", REPO / "recipes" / "configs" / "quickstart.yaml"]
        budget = ({"training.max_time_minutes": args.base_minutes, "training.max_updates": 10_000_000}
                  if args.base_updates is None else {"training.max_updates": args.base_updates,
                                                     "training.max_time_minutes": 0})
    _nmt("train", *config, "--data", data, "--output", model, "--reset", "--preset", args.preset,
         *_sets({**budget, "training.threads": args.threads, "validation.every_updates": args.base_validate,
                 "checkpoint.every_updates": args.base_validate}))
    return model


def adaptation_raw(args, work: Path) -> Path:
    """bn_IN/ko_KR <-> en_XX from ml50-mini as an ML50 raw directory: train, and --test-lines held out."""
    raw = work / "raw-new"
    raw.mkdir(parents=True, exist_ok=True)
    for lang in NEW:
        base = SHARED / "ml50-mini" / "raw" / f"train.{lang}-en_XX"
        xx = Path(f"{base}.{lang}").read_text(encoding="utf-8").splitlines()
        en = Path(f"{base}.en_XX").read_text(encoding="utf-8").splitlines()
        order = list(range(len(xx)))
        random.Random(f"bench_romanize:{lang}").shuffle(order)
        test, train = sorted(order[:args.test_lines]), sorted(order[args.test_lines:])
        for split, ids in (("train", train), ("test", test)):
            for side, lines in ((lang, xx), ("en_XX", en)):
                (raw / f"{split}.{lang}-en_XX.{side}").write_text("".join(lines[i] + "\n" for i in ids),
                                                                   encoding="utf-8")
    return raw


def arm(args, work: Path, base: Path, raw: Path, name: str) -> dict:
    ext, data, run_dir = work / f"ext-{name}", work / f"data-{name}", work / f"run-{name}"
    extra = []
    if name == "romanized":
        extra = ["--romanize", ",".join(NEW)]
    elif name == "extended":
        extra = [x for lang in NEW for x in ("--new-pieces-from", f"{lang}={raw / f'train.{lang}-en_XX.{lang}'}")]
        extra += ["--new-pieces", args.new_pieces]
    if not (ext / "bundle.json").is_file():
        _nmt("extend-langs", "-m", base, "--add", ",".join(NEW), "-o", ext, *extra)
    bundle = json.loads((ext / "bundle.json").read_text())
    lang_list = work / f"langs-{name}.txt"
    lang_list.write_text("\n".join(bundle["languages"]) + "\n", encoding="utf-8")
    _nmt("prepare", "--raw", raw, "--eval-set", SHARED / "flores200" / "devtest", "--out", data,
         "--pairs", ",".join(f"{x}-en_XX" for x in NEW), "--spm-model", ext / bundle["spm"],
         "--dict", ext / bundle["dictionary"], "--lang-list", lang_list, "--valid-size", args.valid_lines,
         "--workers", args.threads, *(["--romanize", ",".join(NEW)] if name == "romanized" else []))
    budget = {"training.max_updates": args.adapt_updates, "training.max_time_minutes": args.adapt_minutes}
    seconds = _nmt("train", "--config", REPO / "recipes" / "configs" / "quickstart.yaml", "--data", data,
                   "--output", run_dir, "--reset",
                   *_sets({**budget, "init.pretrained": ext, "training.lr": args.adapt_lr,
                           "training.warmup_updates": args.adapt_warmup, "training.threads": args.threads,
                           "validation.every_updates": args.adapt_validate,
                           "checkpoint.every_updates": args.adapt_validate}))
    info = json.loads((run_dir / "training.json").read_text())
    return {"run": run_dir, "data": data, "ext": ext, "seconds": seconds, "updates": info.get("updates"),
            "cpu_seconds": info.get("cpu_seconds") or 0,
            "best": info.get("best"), "stop": info.get("stop_reason")}


def segmentation(args, runs: dict) -> list[str]:
    """Per system: subword pieces per FLORES source line and the share of <unk>, as the model sees them."""
    from nmt import langs
    from nmt.bundle import Bundle
    from nmt.romanize import romanize_lines
    from nmt.vocab import UNK, SubwordCodec

    rows = []
    first, last = (int(x) for x in args.flores_lines.split("-"))
    for name, info in runs.items():
        bundle = Bundle.load(info["run"], need_checkpoint=False)
        codec = SubwordCodec.for_bundle(bundle)
        cells = []
        for lang in NEW:
            path = SHARED / "flores200" / "devtest" / f"{langs.get(lang).flores}.devtest"
            lines = [codec.normalize(x) for x in path.read_text(encoding="utf-8").splitlines()[first - 1:last]]
            if bundle.romanized.source(lang):
                lines = romanize_lines(lines, lang)
            ids = codec.encode(lines)
            pieces = sum(len(x) for x in ids)
            unk = sum(i == UNK for x in ids for i in x)
            cells.append(f"{pieces / len(ids):.1f} / {100 * unk / max(1, pieces):.1f}%")
        rows.append(f"| {name} | {len(codec.symbols) - 4:,} | " + " | ".join(cells) + " |")
    return rows


def evaluate(args, work: Path, runs: dict, raw: Path) -> dict:
    systems = [f"{name}={runs[name]['run']}" for name in ARMS]
    directions = ",".join(f"{x}-en_XX" for x in NEW)
    common_args = ["--compare", *systems, "-d", directions, "--no-comet", "--paired-test", "bs",
                   "--threads", args.threads, "--backend", "fairseq"]
    reports = {}
    for name, testset in (("flores", ["--testset", "flores200", "--flores-dir", SHARED / "flores200" / "devtest",
                                      "--lines", args.flores_lines]),
                          ("in-domain", ["--testset", "ml50", "--ml50-dir", raw, "--split", "test"])):
        out = work / f"eval-{name}"
        _nmt("evaluate", *common_args, *testset, "-o", out)
        reports[name] = (out / "report.md").read_text(encoding="utf-8")
        if args.results is None:  # the evidence the section's tables are made from, next to the section
            shutil.copyfile(out / "report.json", REPO / "benchmarks" / "results" / f"romanize-adapt-{name}.json")
    return reports


def adapt(args) -> None:
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = base_model(args, work)
    base_info = json.loads((base / "training.json").read_text())
    raw = adaptation_raw(args, work)
    runs = {name: arm(args, work, base, raw, name) for name in ARMS}
    reports = evaluate(args, work, runs, raw)
    seg = segmentation(args, runs)
    manifest = json.loads((work / "data-romanized" / "manifest.json").read_text())
    counts = ", ".join(f"{d} {v['train']:,}" for d, v in manifest["directions"].items())
    roman = manifest["romanization"]
    arms = "\n".join(f"| {name} | {info['updates']} | {info['cpu_seconds'] / 60:.1f} | {info['stop']} | "
                     f"{(info['best'] or {}).get('score')} |" for name, info in runs.items())
    command = "benchmarks/bench_romanize.py " + shlex.join(sys.argv[1:])  # exactly as it was run
    body = f"""
Machine: {machine()}. Command: `{command}` ({time.strftime('%Y-%m-%d')}, {(time.perf_counter() - t0) / 60:.0f} min
in all).

**Base model**: {args.preset} preset ({base_info.get('parameters', 0):,} parameters), {args.base_langs} <-> en_XX
from ml50-mini ({f'the first {args.base_lines:,} pairs per language' if args.base_lines else 'all pairs'};
FLORES-200 devtest removed), shared unigram vocabulary of {args.vocab_size:,} pieces
({'with' if args.byte_fallback else 'without'} byte fallback), {base_info.get('updates')} updates in
{base_info.get('training_seconds', 0) / 60:.1f} min ({base_info.get('cpu_seconds', 0) / 60:.1f} CPU-min,
{'nmt train defaults' if args.base_cpu_minutes else 'the quickstart config'}); best validation chrF {(base_info.get('best') or {}).get('score')}.

**Adaptation**: bn_IN and ko_KR added (nmt extend-langs: language tokens from the mean of the others),
then bn_IN->en_XX and ko_KR->en_XX fine-tuned from it, {args.adapt_updates} updates each (lr {args.adapt_lr},
warmup {args.adapt_warmup}, the quickstart config's batch of 2,048 tokens), on ml50-mini less {args.test_lines}
held-out pairs per language (training pairs: {counts}). romanized: {roman['romanizer']}, {roman['training_lines']:,}
training lines at {roman['lines_per_cpu_second']} lines per CPU second in the cleaning workers. extended: {args.new_pieces}-piece
sentencepiece models learnt on the adaptation text, pieces the vocabulary lacked added (new rows: the mean of
their old segmentation's rows).

| system | updates | CPU-minutes | stopped | best validation chrF |
|---|---:|---:|---|---:|
{arms}

Segmentation of FLORES-200 devtest lines {args.flores_lines} as each model sees them (pieces per line / <unk> share):

| system | dictionary | bn_IN | ko_KR |
|---|---:|---|---|
{chr(10).join(seg)}

### FLORES-200 devtest (lines {args.flores_lines})

{_demote(reports['flores'])}
### In-domain held-out pairs ({args.test_lines} per language, not trained on)

{_demote(reports['in-domain'])}"""
    update_results_in(args.results, "Romanization: adapting to unseen scripts (bn_IN, ko_KR -> en_XX)", body)
    print(body)


def _demote(report: str) -> str:
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", report, flags=re.M)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="write the section to this file (default: benchmarks/RESULTS.md)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_speed = sub.add_parser("speed")
    p_speed.add_argument("--lines", type=int, default=1000, help="training lines per language (plus FLORES)")
    p_adapt = sub.add_parser("adapt")
    p_adapt.add_argument("--work", type=Path, default=REPO / "work" / "romanize")
    p_adapt.add_argument("--preset", default="small")
    p_adapt.add_argument("--base-langs", default=BASE_LANGS)
    p_adapt.add_argument("--base-lines", type=int, default=0, help="first N pairs per base language (0: all)")
    p_adapt.add_argument("--vocab-size", type=int, default=8000)
    p_adapt.add_argument("--byte-fallback", action="store_true", help="base vocabulary with byte fallback")
    p_adapt.add_argument("--base-minutes", type=float, default=60, help="base model's wall-clock budget")
    p_adapt.add_argument("--base-cpu-minutes", type=float, default=0,
                         help="base model's CPU-time budget with nmt train's own defaults (instead of the "
                              "quickstart config and --base-minutes)")
    p_adapt.add_argument("--base-updates", type=int, help="base model's budget in updates (instead of minutes)")
    p_adapt.add_argument("--base-validate", type=int, default=1000, help="validate/checkpoint every N updates")
    p_adapt.add_argument("--adapt-updates", type=int, default=2000, help="fine-tuning updates, every system")
    p_adapt.add_argument("--adapt-minutes", type=float, default=0, help="and a wall-clock cap (0: none)")
    p_adapt.add_argument("--adapt-validate", type=int, default=500)
    p_adapt.add_argument("--adapt-lr", type=float, default=5e-4)
    p_adapt.add_argument("--adapt-warmup", type=int, default=200)
    p_adapt.add_argument("--new-pieces", type=int, default=4000, help="size of the extension's sentencepiece model")
    p_adapt.add_argument("--test-lines", type=int, default=300, help="in-domain pairs held out per language")
    p_adapt.add_argument("--valid-lines", type=int, default=200, help="validation pairs held out per language")
    p_adapt.add_argument("--flores-lines", default="1-1012", help="FLORES-200 devtest lines (FIRST-LAST)")
    p_adapt.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    speed(args) if args.command == "speed" else adapt(args)


if __name__ == "__main__":
    main()
