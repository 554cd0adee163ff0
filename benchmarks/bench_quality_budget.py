"""Quality per CPU budget: nmt, Marian and OpenNMT-py trained on the same data for the same CPU time.

    python benchmarks/bench_quality_budget.py --work /tmp/qb --budgets 30,120 --threads 1

Every system trains one multilingual model on the same ml50-mini split (``quality/data.py``:
de_DE and ko_KR <-> en_XX by default, with in-domain held-out test and validation lines), on the
same number of threads, until its process tree has used the budget in CPU-seconds (measured
from /proc, ``quality/budget.py``). Then each system translates the in-domain test lines and
FLORES-200 devtest with its own decoder (beam 5), and ``nmt evaluate --compare`` scores every
hypothesis file the same way (BLEU, chrF, paired bootstrap against nmt). Every system trains one
run per budget, with its warm-up fitted to the updates that budget allows (nmt by its own rule;
the peers by the same rule, from a calibrated rate), and is scored on the last checkpoint it wrote
within the budget. Peers run in their own virtual environments (``quality/peers.py``).
``--systems name@30`` trains and scores a system at the 30-minute budget only.

Writes ``WORK/report/`` (the evaluate reports), ``benchmarks/results/quality_budget.json`` and
the RESULTS.md section. Stages are resumable: rerunning skips what is done.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "quality"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import budget as budgeting  # noqa: E402
import data as bench_data  # noqa: E402
import peers  # noqa: E402
from common import PY, REPO, SHARED, machine, update_results  # noqa: E402

RESULTS_JSON = REPO / "benchmarks" / "results" / "quality_budget.json"
# the peers' model: the "small transformer" shape (nmt's small preset), their shared vocabulary size
PEER_SHAPE = dict(embed_dim=256, ffn_dim=1024, heads=4, encoder_layers=3, decoder_layers=3, vocab=8000,
                  batch_tokens=4096)
# Marian at its recipe's small shape, and at nmt's tiny preset's shape (a control: toolkit apart from shape)
MARIAN_SHAPES = {"marian": PEER_SHAPE,
                 "marian-tiny": dict(PEER_SHAPE, embed_dim=128, ffn_dim=256, heads=4, encoder_layers=2,
                                     decoder_layers=2)}
FLORES_CODES = {}  # filled from the shared table


def nmt_cmd(*args) -> list[str]:
    return [PY, "-m", "nmt.cli", *map(str, args)]


def sh(cmd, log: Path | None = None, **kw) -> None:
    if log is None:
        subprocess.run([str(c) for c in cmd], check=True, **kw)
        return
    with open(log, "ab") as out:
        r = subprocess.run([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, **kw)
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}), see {log}: {' '.join(map(str, cmd))[:300]}")


def env_threads(threads: int) -> dict:
    t = str(threads)
    return {**os.environ, "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}


def warmup_for(expected_updates: float) -> int:
    """nmt's automatic warm-up rule (nmt/fairseq_backend/schedule.py), applied to a peer's expected updates."""
    from nmt.fairseq_backend.schedule import WARMUP_MAX, WARMUP_MIN, WARMUP_SHARE

    return int(min(WARMUP_MAX, max(WARMUP_MIN, WARMUP_SHARE * expected_updates)))


# -- test sets ---------------------------------------------------------------------------------

def test_sets(work: Path, pairs: list[str]) -> dict:
    """{testset: {direction: (source path, reference path)}}."""
    table = dict(line.split("\t") for line in (SHARED / "flores200" / "ml50_to_flores.tsv")
                 .read_text().split("\n") if "\t" in line)
    flores = SHARED / "flores200" / "devtest"
    out = {"in-domain": {}, "flores200": {}}
    for s, t in peers.directions(pairs):
        lang = s if s != "en_XX" else t
        out["in-domain"][f"{s}-{t}"] = (work / "raw" / f"test.{lang}-en_XX.{s}", work / "raw" / f"test.{lang}-en_XX.{t}")
        out["flores200"][f"{s}-{t}"] = (flores / f"{table[s]}.devtest", flores / f"{table[t]}.devtest")
    return out


def tagged(src: Path, tgt_lang: str, out: Path) -> Path:
    out.write_text("".join(f"{peers.tag(tgt_lang)} {line}\n" for line in src.read_text(encoding="utf-8").splitlines()),
                   encoding="utf-8")
    return out


# -- nmt -----------------------------------------------------------------------------------------

def run_nmt(args, work: Path, minutes: float, name: str) -> dict:
    run = work / "nmt" / f"{name}-{minutes:g}"
    done = run / "bench.json"
    if done.exists():
        return json.loads(done.read_text())
    data = work / "nmt-data"
    log = work / "logs" / f"{name}-{minutes:g}.log"
    if not (data / "manifest.json").exists():
        sh(nmt_cmd("prepare", "--raw", work / "raw", "--out", data, "--eval-set", SHARED / "flores200" / "devtest",
                   "--workers", 1, *args.nmt_prepare), log=work / "logs" / "nmt-prepare.log")
    own = [s.split(":", 1)[1] for s in args.nmt_set if s.split(":", 1)[0] == name]
    sets = [f"data={data}", f"training.max_cpu_minutes={minutes}", f"training.threads={args.threads}",
            "training.max_updates=10000000", *own]
    cmd = nmt_cmd("train", "--output", run, *[x for s in sets for x in ("--set", s)])
    stats = budgeting.run_budgeted(cmd, log, None, env=env_threads(args.threads))
    if stats["returncode"]:
        raise SystemExit(f"nmt train failed, see {log}")
    training = json.loads((run / "training.json").read_text())
    sh(nmt_cmd("export", "--model", run, "--quantization", "float32"), log=log)
    config = (run / "config.yaml").read_text()
    cpu_s = stats["cpu_s"]
    if len(training.get("starts", [])) > 1:  # resumed (an earlier invocation was stopped): this one saw only
        cpu_s = max(cpu_s, training.get("cpu_seconds") or 0.0)  # its part; nmt's own count spans all of them
    result = {"config": config, "cpu_s": cpu_s, "wall_s": stats["wall_s"], "starts": len(training.get("starts", [])),
              "updates": training.get("updates"), "model": str(run)}
    done.write_text(json.dumps(result, indent=1))
    return result


def translate_nmt(work: Path, result: dict, sets: dict, out: Path) -> None:
    """``result["model"]`` translates every test set (beam 5, float32) into ``out/TESTSET/DIRECTION.hyp``."""
    for testset, dirs in sets.items():
        for direction, (src, _) in dirs.items():
            hyp = out / testset / f"{direction}.hyp"
            if hyp.exists():
                continue
            hyp.parent.mkdir(parents=True, exist_ok=True)
            s, t = direction.split("-")
            sh(nmt_cmd("translate", "--model", result["model"], "-s", s, "-t", t, "-i", src, "-o", hyp,
                       "--quantization", "float32", "--beam", 5, "--threads", 2, "--no-shortlist"),
               log=work / "logs" / "translate.log")


def calibrated(cal: Path, measure) -> float:
    """A peer's updates per CPU-second on this machine: the one recorded in ``cal/rate.json``, or
    ``measure(cal)`` (a short run of its own in a fresh ``cal``, giving updates and CPU-seconds)."""
    record = cal / "rate.json"
    if record.exists():
        return json.loads(record.read_text())["updates_per_cpu_s"]
    shutil.rmtree(cal, ignore_errors=True)
    cal.mkdir(parents=True)
    updates, cpu_s = measure(cal)
    rate = updates / cpu_s if updates else 0.0
    record.write_text(json.dumps({"updates": updates, "cpu_s": cpu_s, "updates_per_cpu_s": rate}))
    return rate


# -- Marian ----------------------------------------------------------------------------------------

def marian_calibrate(python: Path, work: Path, pdata: Path, langs: list[str], threads: int, seconds: float,
                     system: str = "marian") -> float:
    """Updates per CPU-second of the peer's recipe on this machine (a short run of its own; it includes
    training Marian's vocabulary, so it is a lower bound: it only sets the warm-up and the save interval)."""
    def measure(cal: Path) -> tuple[int, float]:
        if system != "marian" and not (cal / "vocab.spm").exists():  # the vocabulary the small shape trained
            shutil.copyfile(work / "marian" / "calibration" / "vocab.spm", cal / "vocab.spm")
        argv = peers.marian_train_args(MARIAN_SHAPES[system], pdata, cal, langs, threads, 100000)
        stats = budgeting.run_budgeted([python, "-m", "pymarian", *argv], cal / "log.txt", seconds,
                                       env=env_threads(threads))
        progress = (cal / "model.npz.progress.yml").read_text()
        return int(next(line.split(":")[1] for line in progress.splitlines() if line.startswith("batches:"))), \
            stats["cpu_s"]

    return calibrated(work / system / "calibration", measure)


def run_marian(args, work: Path, minutes: float, system: str = "marian") -> dict:
    run = work / system / f"run-{minutes:g}"
    done = run / "bench.json"
    if done.exists():
        return json.loads(done.read_text())
    python = peers.venv(work, "marian")
    pdata = work / "peer-data"
    langs = sorted({"en_XX", *args.pairs})
    top = minutes * 60
    rate = marian_calibrate(python, work, pdata, langs, args.threads, args.calibration_s, system)
    warmup = warmup_for(rate * top)
    save = max(20, int(rate * args.save_every_s))
    schedule = {"learn_rate": 3e-4, "warmup": warmup}
    run.mkdir(parents=True, exist_ok=True)
    # Marian trains its SentencePiece vocabulary when the file is missing: the calibration run made it
    # (same data and options), so the budget counts training only, as nmt's (its prepare is not counted)
    if not (run / "vocab.spm").exists():
        shutil.copyfile(work / "marian" / "calibration" / "vocab.spm", run / "vocab.spm")
    argv = peers.marian_train_args(MARIAN_SHAPES[system], pdata, run, langs, args.threads, save, adapted=schedule)
    (run / "command.txt").write_text(" ".join(argv))
    watch = budgeting.CheckpointWatch(run, "model.iter*.npz", run / "checkpoints.json")
    stats = budgeting.run_budgeted([python, "-m", "pymarian", *argv], run / "stdout.txt", top, watch=watch,
                                   env=env_threads(args.threads))
    progress = (run / "model.npz.progress.yml").read_text()
    updates = int(next(line.split(":")[1] for line in progress.splitlines() if line.startswith("batches:")))
    checkpoints = dict(watch.seen)
    checkpoints["model.npz"] = stats["cpu_s"]  # saved on SIGTERM at the budget
    result = {"config": {"recipe": "Helsinki-NLP/OPUS-MT-train lib/train.mk (OPUS-MT)", "shape": MARIAN_SHAPES[system],
                         "warmup_updates": warmup, "learn_rate": 3e-4, "save_every_updates": save,
                         "calibration_updates_per_cpu_s": rate, "argv": argv},
              "cpu_s": stats["cpu_s"], "wall_s": stats["wall_s"], "updates": updates,
              "checkpoints": checkpoints, "updates_at": {}}
    done.write_text(json.dumps(result, indent=1))
    return result


def translate_marian(args, work: Path, model: Path, sets: dict, out: Path, system: str = "marian") -> None:
    python = peers.venv(work, "marian")
    script = work / "marian" / "translate.py"
    script.write_text(peers.MARIAN_TRANSLATE)
    for testset, dirs in sets.items():
        for direction, (src, _) in dirs.items():
            hyp = out / testset / f"{direction}.hyp"
            if hyp.exists():
                continue
            hyp.parent.mkdir(parents=True, exist_ok=True)
            inp = tagged(src, direction.split("-")[1], out / testset / f"{direction}.src")
            sh([python, script, model, model.parent / "vocab.spm", inp, str(hyp) + ".tmp", 2],
               log=work / "logs" / "marian-translate.log")
            os.replace(str(hyp) + ".tmp", hyp)


# -- OpenNMT-py ------------------------------------------------------------------------------------

def onmt_setup(python: Path, work: Path, pdata: Path, langs: list[str]) -> tuple[Path, Path]:
    base = work / "onmt"
    spm, vocab = base / "spm.model", base / "vocab.txt"
    if spm.exists() and vocab.exists():
        return spm, vocab
    base.mkdir(parents=True, exist_ok=True)
    marian_vocab = work / "marian" / "calibration" / "vocab.spm"
    if not spm.exists() and marian_vocab.exists():
        # the SentencePiece model Marian trained on the same text (unigram, the same size and tags): one
        # thread of sentencepiece's own trainer stalled for 45+ minutes in seed extraction on this text
        shutil.copyfile(marian_vocab, spm)
    if not spm.exists():
        both = base / "spm-train.txt"
        with open(both, "w", encoding="utf-8") as f:
            for name in ("train.src", "train.tgt"):
                for line in (pdata / name).read_text(encoding="utf-8").splitlines():
                    # the language tags are user-defined symbols, not text to learn pieces from
                    f.write(line.split(" ", 1)[1] + "\n" if line.startswith(">>") else line + "\n")
        (base / "spm_train.py").write_text(peers.SPM_TRAIN)
        sh([python, base / "spm_train.py", both, base / "spm", PEER_SHAPE["vocab"],
            ",".join(peers.tag(x) for x in langs)], log=work / "logs" / "onmt-setup.log")
    cfg = peers.onmt_config(PEER_SHAPE, pdata, base / "vocab-build", spm, vocab, 1, 100, 100, 1.0)
    (base / "vocab.yaml").write_text(json.dumps(cfg))
    sh([python.parent / "onmt_build_vocab", "-config", base / "vocab.yaml", "-n_sample", "-1", "-num_threads", 1],
       log=work / "logs" / "onmt-setup.log", env=env_threads(1))
    return spm, vocab


def onmt_calibrate(python: Path, work: Path, pdata: Path, spm: Path, vocab: Path, threads: int, seconds: float) -> float:
    def measure(cal: Path) -> tuple[int, float]:
        cfg = peers.onmt_config(PEER_SHAPE, pdata, cal, spm, vocab, threads, 10, 8000,
                                peers.noam_factor(peers.ONMT_PEAK, PEER_SHAPE["embed_dim"], 8000))
        (cal / "config.yaml").write_text(json.dumps(cfg))
        watch = budgeting.CheckpointWatch(cal, "model_step_*.pt", cal / "checkpoints.json")
        stats = budgeting.run_budgeted([python.parent / "onmt_train", "-config", cal / "config.yaml"],
                                       cal / "log.txt", seconds, watch=watch, env=env_threads(threads))
        for ckpt in cal.glob("model_step_*.pt"):
            ckpt.unlink()
        # the rate up to the last checkpoint (the steps are known only there)
        steps = max((int(n.split("_")[-1].split(".")[0]) for n in watch.seen), default=0)
        return steps, max(watch.seen.values(), default=stats["cpu_s"])

    return calibrated(work / "onmt" / "calibration", measure)


def run_onmt(args, work: Path, minutes: float, system: str = "onmt") -> dict:
    run = work / "onmt" / f"run-{minutes:g}"
    done = run / "bench.json"
    if done.exists():
        return json.loads(done.read_text())
    python = peers.venv(work, "onmt")
    pdata = work / "peer-data"
    langs = sorted({"en_XX", *args.pairs})
    spm, vocab = onmt_setup(python, work, pdata, langs)
    top = minutes * 60
    rate = onmt_calibrate(python, work, pdata, spm, vocab, args.threads, args.calibration_s)
    warmup = warmup_for(rate * top)
    save = max(10, int(rate * args.save_every_s))
    factor = peers.noam_factor(peers.ONMT_PEAK, PEER_SHAPE["embed_dim"], warmup)
    run.mkdir(parents=True, exist_ok=True)
    cfg = peers.onmt_config(PEER_SHAPE, pdata, run, spm, vocab, args.threads, save, warmup, factor)
    (run / "config.yaml").write_text(json.dumps(cfg))
    watch = budgeting.CheckpointWatch(run, "model_step_*.pt", run / "checkpoints.json")
    stats = budgeting.run_budgeted([python.parent / "onmt_train", "-config", run / "config.yaml"], run / "log.txt",
                                   top, watch=watch, env=env_threads(args.threads))
    steps = max((int(n.split("_")[-1].split(".")[0]) for n in watch.seen), default=0)
    result = {"config": {"recipe": "OpenNMT-py docs/source/FAQ.md, 'How do I use the Transformer model?'",
                         "shape": PEER_SHAPE, "warmup_steps": warmup, "noam_factor": factor,
                         "peak_lr": peers.ONMT_PEAK, "save_every_steps": save,
                         "calibration_updates_per_cpu_s": rate, "yaml": cfg},
              "cpu_s": stats["cpu_s"], "wall_s": stats["wall_s"], "updates": steps, "checkpoints": dict(watch.seen)}
    done.write_text(json.dumps(result, indent=1))
    return result


def translate_onmt(args, work: Path, model: Path, sets: dict, out: Path) -> None:
    python = peers.venv(work, "onmt")
    script = work / "onmt" / "spm_apply.py"
    script.write_text(peers.SPM_APPLY)
    spm = work / "onmt" / "spm.model"
    for testset, dirs in sets.items():
        for direction, (src, _) in dirs.items():
            hyp = out / testset / f"{direction}.hyp"
            if hyp.exists():
                continue
            hyp.parent.mkdir(parents=True, exist_ok=True)
            inp = tagged(src, direction.split("-")[1], out / testset / f"{direction}.src")
            pieces = out / testset / f"{direction}.src.sp"
            sh([python, script, spm, "encode", inp, pieces], log=work / "logs" / "onmt-translate.log")
            out_sp = out / testset / f"{direction}.hyp.sp"
            sh([python.parent / "onmt_translate", "-model", model, "-src", pieces, "-output", out_sp,
                "-beam_size", 5, "-batch_size", 32, "-max_length", 500, "-gpu", -1],
               log=work / "logs" / "onmt-translate.log", env=env_threads(args.threads))
            sh([python, script, spm, "decode", out_sp, str(hyp) + ".tmp"], log=work / "logs" / "onmt-translate.log")
            os.replace(str(hyp) + ".tmp", hyp)


def checkpoint_at(result: dict, seconds: float, directory: Path) -> tuple[Path, float]:
    """The last checkpoint a peer had written within ``seconds`` of CPU time."""
    within = [(cpu, name) for name, cpu in result["checkpoints"].items() if cpu <= seconds * 1.01]
    if not within:
        raise SystemExit(f"no checkpoint of {directory} within {seconds} CPU-s")
    cpu, name = max(within)
    return directory / name, cpu


# -- scoring -----------------------------------------------------------------------------------------

def score(work: Path, label: str, systems: list[str], sets: dict, raw: Path) -> dict:
    """``nmt evaluate --compare`` per test set of the hypotheses under ``work/hyps/label`` (the first system
    is the baseline of the paired tests; ``raw``: the held-out in-domain lines); {testset: report.json}."""
    reports = {}
    for testset in sets:
        out = work / "report" / label / testset
        done = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
        if [entry["name"] for entry in done.get("systems", [])] != systems:  # none yet, or other systems
            shutil.rmtree(out, ignore_errors=True)
            hyps = [f"{name}={work / 'hyps' / label / name / testset}" for name in systems]
            if testset == "in-domain":
                kind = ["--testset", "ml50", "--ml50-dir", raw, "--split", "test"]
            else:
                kind = ["--testset", "flores200", "--flores-dir", SHARED / "flores200" / "devtest"]
            sh(nmt_cmd("evaluate", "--compare", *hyps, *kind, "-d", ",".join(sets[testset]), "-o", out,
                       "--no-comet", "--paired-test", "bs"), log=work / "logs" / "evaluate.log")
        reports[testset] = json.loads((out / "report.json").read_text())
    return reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--budgets", default="30,120", help="CPU minutes, comma-separated")
    ap.add_argument("--systems", default="nmt,marian,onmt")
    ap.add_argument("--pairs", default="de_DE,ko_KR")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nmt-set", action="append", default=[], metavar="SYSTEM:KEY=VALUE",
                    help="an nmt train --set for one nmt system (systems named nmt-...: several configurations)")
    ap.add_argument("--nmt-prepare", nargs="*", default=[], help="extra nmt prepare options")
    ap.add_argument("--calibration-s", type=float, default=180.0)
    ap.add_argument("--save-every-s", type=float, default=90.0, help="peers: a checkpoint about every N CPU-s")
    ap.add_argument("--stage", choices=("train", "all"), default="all")
    args = ap.parse_args()
    args.pairs = args.pairs.split(",")
    budgets = [float(b) for b in args.budgets.split(",")]
    at: dict[str, set[float]] = {}  # system -> the budgets it runs at
    for spec in args.systems.split(","):
        name, _, only = spec.partition("@")
        at[name] = {float(m) for m in only.split("+")} if only else set(budgets)
        if not at[name] <= set(budgets):
            ap.error(f"--systems {spec!r}: {name} runs at budgets that --budgets does not list")
    systems = list(at)
    if args.stage == "all" and (systems[0] != "nmt" or at["nmt"] != set(budgets)):
        ap.error("--systems: list nmt first, at every budget (the paired tests compare each system with it)")
    for s in args.nmt_set:
        if ":" not in s or s.split(":", 1)[0] not in systems or not s.startswith("nmt"):
            ap.error(f"--nmt-set {s!r}: write it as SYSTEM:KEY=VALUE for an nmt system named in --systems")
    work = args.work
    (work / "logs").mkdir(parents=True, exist_ok=True)
    split = bench_data.split(SHARED, args.pairs, work)
    sets = test_sets(work, args.pairs)
    if any(s in ("onmt", *MARIAN_SHAPES) for s in systems):
        for part in ("train", "valid", "test"):
            peers.concatenated(work / "raw", args.pairs, part, work / "peer-data")
    results: dict = {}
    for system in systems:
        run = {**{s: run_marian for s in MARIAN_SHAPES}, "onmt": run_onmt}.get(system, run_nmt)
        results[system] = {b: run(args, work, b, system) for b in budgets if b in at[system]}
    if args.stage == "train":
        return
    # translate
    per_budget: dict = {}
    for b in budgets:
        per_budget[b] = {}
        for system in systems:
            if b not in at[system]:
                continue
            out = work / "hyps" / f"{b:g}" / system
            res = results[system][b]
            if system in MARIAN_SHAPES:
                model, cpu = checkpoint_at(res, b * 60, work / system / f"run-{b:g}")
                translate_marian(args, work, model, sets, out, system)
                per_budget[b][system] = {"config": res["config"], "cpu_s": cpu, "checkpoint": model.name,
                                         "updates": _marian_updates(model, res)}
            elif system == "onmt":
                model, cpu = checkpoint_at(res, b * 60, work / "onmt" / f"run-{b:g}")
                translate_onmt(args, work, model, sets, out)
                per_budget[b][system] = {"config": res["config"], "cpu_s": cpu, "checkpoint": model.name,
                                         "updates": int(model.stem.split("_")[-1])}
            else:
                translate_nmt(work, res, sets, out)
                per_budget[b][system] = {k: res[k] for k in ("config", "cpu_s", "updates")}
    write_results(work, budgets, systems, sets, per_budget, split, args)


def _marian_updates(model: Path, res: dict) -> int:
    if model.name == "model.npz":
        return res["updates"]
    return int(model.name.split(".iter")[1].split(".")[0])


def write_results(work, budgets, systems, sets, per_budget, split, args) -> None:
    doc = {"machine": machine(), "threads": args.threads, "pairs": args.pairs, "split": split,
           "command": " ".join(sys.argv), "budgets": {},
           "nmt_sets": {n: [x.split(":", 1)[1] for x in args.nmt_set if x.split(":", 1)[0] == n]
                        for n in systems if n.startswith("nmt")}}
    for b in budgets:
        names = list(per_budget[b])
        reports = score(work, f"{b:g}", names, sets, work / "raw")
        entry = {}
        for system in names:
            dirs: dict = {}
            for testset, report in reports.items():
                for direction in sets[testset]:
                    cell = direction_scores(report, system, direction)
                    dirs.setdefault(direction, {})[testset] = cell
            entry[system] = {**per_budget[b][system], "directions": dirs}
        doc["budgets"][f"{b:g}"] = entry
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    update_results("Quality per CPU budget: nmt vs Marian vs OpenNMT-py", markdown(doc))
    print(f"wrote {RESULTS_JSON} and the RESULTS.md section")


def _mark(cell: dict, metric: str) -> str:
    """A peer's score with its paired-bootstrap verdict against nmt: * when p < 0.05 and the rounded
    difference is not zero."""
    score = cell[metric]
    text = f"{score:.1f}"
    test = cell.get("vs_baseline", {}).get(metric) or {}
    p = test.get("p_value")
    base = cell.get("baseline_score", {}).get(metric)
    if p is not None and p < 0.05 and (base is None or round(score - base, 1) != 0):
        text += "*"
    return text


def markdown(doc: dict) -> str:
    """The RESULTS.md section, made from quality_budget.json alone."""
    lines = [f"Machine: {doc['machine']}; {doc['threads']} thread(s) per system.",
             f"Command: `{doc['command']}`.",
             f"Data: ml50-mini, {', '.join(doc['pairs'])} <-> en_XX; held out per pair (seed {doc['split']['seed']}): "
             + "; ".join(f"{lang} {c['train']:,} train / {c['valid']} valid / {c['test']} test"
                         for lang, c in doc["split"]["counts"].items()) + ". Test sets: the held-out in-domain lines "
             "and FLORES-200 devtest (all 1,012 lines). chrF (BLEU in brackets); `*`: differs from nmt's score "
             "with p < 0.05 (paired bootstrap, 1,000 samples, sacrebleu) and by at least 0.1.", ""]
    missing = [peer for peer in ("marian", "onmt") if all(peer not in s for s in doc["budgets"].values())]
    if missing:
        lines += [f"**Not in this run: {', '.join(missing)}** (`--systems` left them out: the tables below compare "
                  "nmt's configurations only, not nmt with its peers).", ""]
    for minutes, systems in doc["budgets"].items():
        names = list(systems)
        lines += [f"### {minutes} CPU-minutes", "",
                  "| system | CPU-s used | updates | config |", "|---|---:|---:|---|"]
        for name in names:
            info = systems[name]
            cfg = info["config"]
            if isinstance(cfg, dict):
                cfg = cfg.get("recipe", "")
            else:
                changed = doc.get("nmt_sets", {}).get(name)
                cfg = ("nmt train defaults" + (f" but {', '.join(changed)}" if changed else "")
                       + " (config.yaml in the run)")
            lines.append(f"| {name} | {info['cpu_s']:.0f} | {info['updates']} | {cfg} |")
        lines += ["", "| direction | test set | " + " | ".join(names) + " |",
                  "|---|---|" + "---:|" * len(names)]
        first = systems[names[0]]["directions"]
        for direction in first:
            for testset in first[direction]:
                row = []
                for name in names:
                    cell = dict(systems[name]["directions"][direction][testset])
                    cell["baseline_score"] = first[direction][testset]
                    row.append(f"{_mark(cell, 'chrf')} ({cell['bleu']:.1f})")
                lines.append(f"| {direction} | {testset} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def direction_scores(report: dict, system: str, direction: str) -> dict:
    """BLEU and chrF of ``system`` in ``direction`` from an ``nmt evaluate --compare`` report.json, with the
    paired bootstrap test against the baseline (the first system: nmt)."""
    for entry in report["directions"]:
        if entry["direction"] == direction:
            res = entry["systems"][system]
            cell = {m.lower(): res["scores"][m]["score"] for m in ("BLEU", "chrF")}
            if "significance" in res:
                cell["vs_baseline"] = {m.lower(): res["significance"]["bs"][m] for m in ("BLEU", "chrF")}
            return cell
    raise KeyError((system, direction))


if __name__ == "__main__":
    main()
