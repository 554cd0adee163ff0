"""Distillation and back-translation at this machine's scale (issue 16's evidence).

    .venv/bin/python benchmarks/bench_distill.py --work work/distill [--reuse-teacher]

1. Teacher: the small preset, many-to-many on ml50-mini PAIRS <-> en_XX (--pairs, default de_DE,bn_IN; FLORES-200
   devtest removed from training), trained for --teacher-minutes of wall-clock time on one thread
   (so its CPU time is about the same; measured with GNU time and reported).
2. (a) recipes/distill.sh: the teacher translates the first --max-lines training sources of each
   direction (all of the low-resource pair's), the worst 5% by teacher score and ratio outliers are dropped, and a
   tiny multilingual student learns from that; BASELINE=1 trains the same student, same number of
   updates, on the original pairs. One nmt evaluate --compare report: teacher, student, baseline.
3. (b) recipes/back_translation.sh: English text from the de_DE-en_XX pair (lines the distillation
   subset does not use) is translated into the last pair's language; a tiny XX->en_XX model is trained
   on the real pairs plus the tagged synthetic ones, against the same model on the real pairs alone.
Both reports evaluate on FLORES-200 devtest (all 1,012 lines; validation used held-out training
bitext) and are copied into benchmarks/RESULTS.md with the teacher's budget.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from common import BIN, REPO, SHARED, machine, run, update_results

from nmt.bundle import Bundle


def directions_of(pairs: list[str]) -> str:
    return ",".join(d for lang in pairs for d in (f"{lang}-en_XX", f"en_XX-{lang}"))


def teacher(args, work: Path) -> dict:
    if args.teacher:  # a teacher trained elsewhere (e.g. the quality-per-budget benchmark's best nmt run)
        return given_teacher(args, work)
    data, model = work / "data-teacher", work / "teacher"
    reuse = args.reuse_teacher and (model / "training.json").is_file()
    if not reuse:  # (a finished teacher keeps the data it was trained on)
        run([BIN / "nmt", "prepare", "--raw", SHARED / "ml50-mini" / "raw", "--eval-set",
             SHARED / "flores200" / "devtest", "--out", data, "--pairs", directions_of(args.pairs), "--vocab-size", "12000",
             "--workers", "2"])
        sets = ["model.preset=small", f"training.max_time_minutes={args.teacher_minutes}",
                "training.max_updates=1000000", "training.threads=1", "validation.every_updates=500",
                "checkpoint.every_updates=500"]
        cmd = ["/usr/bin/time", "-v", BIN / "nmt", "train", "--config", REPO / "recipes" / "configs" / "quickstart.yaml",
               "--data", data, "--output", model, "--reset", *[x for s in sets for x in ("--set", s)]]
        _, result = run(cmd)
        (work / "teacher.time").write_text(result.stderr)
    if not list(model.glob("ctranslate2*")):  # once, before the recipes (which may run at the same time)
        run([BIN / "nmt", "export", "--model", model, "--quantization", "int8"])
    timing = (work / "teacher.time").read_text()
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", timing))
    info = json.loads((model / "training.json").read_text())
    return {"cpu_minutes": cpu / 60, "updates": info["updates"], "parameters": info["parameters"],
            "training_minutes": info["training_seconds"] / 60, "best": info["best"], "preset": "small",
            "cpu_source": "GNU time, user + system, incl. validation", "runs_text": ""}


def given_teacher(args, work: Path) -> dict:
    """Link --teacher and --teacher-data into the work directory; the teacher's CPU time from its training.json."""
    for link, target in (("teacher", args.teacher), ("data-teacher", args.teacher_data)):
        path = work / link
        if not path.exists():
            path.symlink_to(Path(target).resolve())
    model = work / "teacher"
    if not list(model.glob("ctranslate2-int8")):
        run([BIN / "nmt", "export", "--model", model, "--quantization", "int8"])
    info = json.loads((model / "training.json").read_text())
    chain = training_chain(model.resolve())
    return {"cpu_minutes": sum(r["cpu_seconds"] for r in chain) / 60, "updates": sum(r["updates"] for r in chain),
            "parameters": info["parameters"], "best": info["best"],
            "training_minutes": sum(r["training_seconds"] for r in chain) / 60,
            "preset": info.get("preset", "?"), "cpu_source": "the runs' own CPU-time measure, incl. validation",
            "runs_text": "" if len(chain) == 1 else " of the last run; trained as " + ", then continued as ".join(
                f"{r['run']} ({r['updates']:,} updates, {r['cpu_seconds'] / 60:.1f} CPU min)" for r in chain)}


def training_chain(model: Path) -> list[dict]:
    """The training runs behind a bundle, first run first: a run that continued an earlier nmt run
    (``init.pretrained`` pointing at a translation bundle) counts that run's updates and CPU time too."""
    chain = []
    while model is not None and (model / "training.json").is_file():
        chain.insert(0, {**json.loads((model / "training.json").read_text()), "run": str(model)})
        before = Bundle.load(model).pretrained
        model = Path(before) if before else None
    return chain


def teacher_quality(quality_work: Path, chain: list[dict], pairs: list[str], work: Path) -> tuple[str, dict]:
    """The teacher (and each run it continued) on the quality benchmark's held-out in-domain lines and
    FLORES-200 devtest, decoded and scored as bench_quality_budget.py does (beam 5, float32, paired bootstrap
    against the first run): (the reports as markdown, {testset: report.json})."""
    import bench_quality_budget as quality

    sets = quality.test_sets(quality_work, pairs)
    out = work / "teacher-eval"
    (out / "logs").mkdir(parents=True, exist_ok=True)
    names = []
    for r in chain:
        model = Path(r["run"])
        if not (model / "ctranslate2-float32").is_dir():
            run([BIN / "nmt", "export", "--model", model, "--quantization", "float32"])
        quality.translate_nmt(out, {"model": model}, sets, out / "hyps" / "teacher" / model.name)
        names.append(model.name)
    reports = quality.score(out, "teacher", names, sets, quality_work / "raw")
    text = "\n".join(_demote((out / "report" / "teacher" / testset / "report.md").read_text()) for testset in sets)
    return text, reports


def recipes(jobs: list[tuple[str, dict, Path]], parallel: bool) -> list[float]:
    """Run the recipes (one after the other, or all at once); their wall times in seconds."""
    started, seconds = [], []
    for name, env, log in jobs:
        cmd = ["bash", str(REPO / "recipes" / name)]
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, **{k: str(v) for k, v in env.items()}})
        started.append((name, proc, time.perf_counter(), log))
        if not parallel:
            seconds.append(_wait(*started[-1]))
    if parallel:
        seconds = [_wait(*job) for job in started]
    return seconds


def _wait(name: str, proc, t0: float, log: Path) -> float:
    if proc.wait() != 0:
        raise SystemExit(f"recipes/{name} failed ({proc.returncode}); see {log}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=REPO / "work" / "distill")
    parser.add_argument("--teacher-minutes", type=float, default=47)
    parser.add_argument("--reuse-teacher", action="store_true", help="use a teacher an earlier run finished")
    parser.add_argument("--max-lines", type=int, default=12000)
    parser.add_argument("--student-updates", type=int, default=1500)
    parser.add_argument("--mono-lines", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", action="store_true", help="run the two recipes at the same time")
    parser.add_argument("--pairs", default="de_DE,bn_IN",
                        help="languages paired with English; the last one is the back-translation direction's source")
    parser.add_argument("--teacher", type=Path, help="an existing teacher bundle (instead of training one)")
    parser.add_argument("--teacher-data", type=Path, help="the prepared data --teacher was trained on")
    parser.add_argument("--quality-work", type=Path,
                        help="bench_quality_budget.py's --work (with --teacher): score the teacher on its held-out "
                             "in-domain lines and FLORES-200 devtest, against the runs it continued")
    args = parser.parse_args()
    args.pairs = args.pairs.split(",")
    if bool(args.teacher) != bool(args.teacher_data):
        parser.error("--teacher and --teacher-data go together")
    if args.quality_work and not args.teacher:
        parser.error("--quality-work goes with --teacher (a teacher trained by bench_quality_budget.py's data)")
    DIRECTIONS = directions_of(args.pairs)
    low = args.pairs[-1]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    info = teacher(args, work)
    held_out = ""
    if args.quality_work:
        import bench_quality_budget as quality

        chain = training_chain((work / "teacher").resolve())
        text, reports = teacher_quality(args.quality_work.resolve(), chain, args.pairs, work)
        high = f"{args.pairs[0]}-en_XX"  # the high-resource pair into English (the teacher's bar: chrF 40)
        chrf = quality.direction_scores(reports["in-domain"], Path(chain[-1]["run"]).name, high)["chrf"]
        held_out = (f"\nThe teacher on the quality benchmark's held-out lines ({args.quality_work}/raw, never trained "
                    f"on) and FLORES-200 devtest, beside the run{'s' if len(chain) > 2 else ''} it continued "
                    f"(beam 5, float32, as in \"Quality per CPU budget\"): **in-domain {high.replace('-', '->')} chrF "
                    f"{chrf:.1f}**.\n\n{text}")
    student = (f"--preset tiny --set training.max_time_minutes=0 --set training.max_updates={args.student_updates}"
               f" --set training.threads={args.threads} --set validation.every_updates=500"
               f" --set checkpoint.every_updates=500")
    common = {"TEACHER": work / "teacher", "THREADS": args.threads, "LINES": "1-1012", "BASELINE": 1,
              "FLORES": SHARED / "flores200" / "devtest"}
    english = work / "data-teacher" / "clean" / "train.de_DE-en_XX.en_XX"
    mono = work / "mono.en_XX"
    lines = english.read_text(encoding="utf-8").splitlines()
    mono.write_text("\n".join(lines[args.max_lines:args.max_lines + args.mono_lines]) + "\n", encoding="utf-8")
    distill_s, bt_s = recipes([
        ("distill.sh", {**common, "TEACHER_DATA": work / "data-teacher", "DIRECTIONS": DIRECTIONS,
                        "MAX_LINES": args.max_lines, "STUDENT_ARGS": student, "WORKDIR": work / "kd"},
         work / "kd.log"),
        ("back_translation.sh", {**{k: v for k, v in common.items() if k != "TEACHER"}, "MODEL": work / "teacher",
                                 "DATA": work / "data-teacher", "DIRECTION": f"{low}-en_XX", "MONO": mono,
                                 "TRAIN_ARGS": student, "WORKDIR": work / "bt"},
         work / "bt.log")], args.parallel)
    distill_s, bt_s = recipe_times(work / "recipe-times.json", distill_s, bt_s)
    kd_report = (work / "kd" / "report" / "report.md").read_text()
    kd_pair = student_pair(work, DIRECTIONS)
    bt_report = (work / "bt" / "report" / "report.md").read_text()
    kd_manifest = json.loads((work / "kd" / "data-student" / "manifest.json").read_text())
    bt_manifest = json.loads((work / "bt" / "data-bt" / "manifest.json").read_text())
    kd_counts = ", ".join(f"{d} {v['train']:,}" for d, v in kd_manifest["directions"].items())
    bt_dir = bt_manifest["directions"][f"{low}-en_XX"]
    filters = {d: json.loads((work / "kd" / "distill" / f"{d}.kept.filter.json").read_text())
               for d in DIRECTIONS.split(",")}
    kept = ", ".join(f"{d} {f['kept']:,}/{f['lines']:,}" for d, f in filters.items())
    bt_record = work / "bt" / "synthetic" / "kept.filter.json"
    bt_kept = (f"kept {json.loads(bt_record.read_text())['kept']:,} after filtering" if bt_record.is_file() else
               "the filter's own record of this run was lost (an earlier version of the recipe wrote it into the "
               "model's run directory, which was reset; fixed)")
    def best(run: Path) -> str:
        info = json.loads((run / "training.json").read_text())
        last = (info.get("validations") or [{}])[-1]
        per = ", ".join(f"{d} {v:.1f}" for d, v in (last.get("chrf") or {}).items())
        return f"{run.name}: avg {last.get('avg_chrf')} ({per})"

    validation = "; ".join(best(r) for r in (work / "teacher", work / "kd" / "student", work / "kd" / "student-original",
                                             work / "bt" / "bt", work / "bt" / "baseline"))
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_distill.py {' '.join(sys.argv[1:])}`
({time.strftime('%Y-%m-%d')}). Every model trained and translated on one thread; the budgets are updates,
not wall time, because other jobs shared the machine (the teacher trained beside niced test runs{
', and the two recipes ran at the same time' if args.parallel else ''}), which also makes the
sentences/s columns comparable only within one report.

**Teacher**: {info['preset']} preset ({info['parameters']:,} parameters), many-to-many {DIRECTIONS}
on ml50-mini (FLORES-200 devtest removed), {info['updates']:,} updates in {info['training_minutes']:.1f} min of
training, **{info['cpu_minutes']:.1f} CPU minutes** ({info['cpu_source']}). Best validation
chrF {info['best'].get('score')} at update {info['best'].get('update')}{info['runs_text']}.
{held_out}

### (a) Distilled tiny student vs the same student on the original pairs

recipes/distill.sh: the first {args.max_lines:,} training pairs of each language pair (all of {low}'s), teacher
beam 5 (CTranslate2 int8), worst 5% by teacher score and length-ratio outliers (> 2.5) dropped: kept {kept}.
Students: tiny preset, multilingual, {args.student_updates} updates each, the teacher's vocabulary;
student-original trains on the same source sentences with their original targets. Student training pairs: {kd_counts}.
Recipe wall time: {_minutes(distill_s)}.

{_demote(kd_report)}
The students against each other (paired bootstrap on the same hypotheses, student-original as the baseline):

{_demote(kd_pair)}
### (b) Back-translation for {low} -> en_XX

recipes/back_translation.sh: {args.mono_lines:,} English lines (the de_DE-en_XX pair's English side, after
the distillation subset) translated into {low} by the teacher (beam 5); {bt_kept};
after nmt prepare's own filters {bt_dir['synthetic']['available']:,} synthetic pairs remained, tagged ({bt_manifest['tags']}) and added to the {bt_dir['train_real']:,} real pairs
({bt_dir['train_synthetic']:,} synthetic). Both systems: tiny preset, {low}->en_XX only, {args.student_updates}
updates, the teacher's vocabulary. Recipe wall time: {_minutes(bt_s)}.

{_demote(bt_report)}
In-domain validation chrF at the end of training (the first 100 held-out training pairs per direction,
real references, decoded as `nmt train` validates with quickstart.yaml's settings): {validation}.
"""
    update_results("Distillation and back-translation (recipes/distill.sh, recipes/back_translation.sh)", body)
    print(body)


def student_pair(work: Path, directions: str) -> str:
    """``nmt evaluate --compare`` of the distilled student against student-original (the baseline), on the
    FLORES-200 hypotheses the recipe's report kept; the report as markdown."""
    hyps, out = work / "kd" / "report" / "hyps", work / "kd" / "report-students"
    if not (out / "report.md").is_file():
        run([BIN / "nmt", "evaluate", "--compare", f"student-original={hyps / 'student-original'}",
             f"student={hyps / 'student'}", "--testset", "flores200", "--flores-dir", SHARED / "flores200" / "devtest",
             "-d", directions, "--no-comet", "--paired-test", "bs", "-o", out])
    return (out / "report.md").read_text()


def recipe_times(record: Path, distill_s: float, bt_s: float) -> tuple[float, float]:
    """The recipes' wall times: this invocation's when it ran them (kept in ``record``), else the recorded
    ones of the invocation that did (a rerun that finds every stage done takes seconds)."""
    if min(distill_s, bt_s) >= 60:
        record.write_text(json.dumps({"distill_s": distill_s, "bt_s": bt_s}))
    elif record.is_file():
        times = json.loads(record.read_text())
        return times["distill_s"], times["bt_s"]
    return distill_s, bt_s


def _minutes(seconds: float) -> str:
    if seconds < 60:  # a rerun that found every stage done
        return "every stage was done by an earlier invocation of this command (see its log for the times)"
    return f"{seconds / 60:.1f} min"


def _demote(report: str) -> str:
    """The report's headings one level down, inside this section."""
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", report, flags=re.M)


if __name__ == "__main__":
    main()
