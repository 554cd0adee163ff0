"""Benchmark: training throughput of `nmt train` vs a direct `fairseq-train` call, same settings.

    .venv/bin/python benchmarks/bench_train.py [--preset small] [--updates 300] [--repeats 2]

Both runs get the identical fairseq arguments (`nmt train --print-fairseq-args`),
on the prepared embedded sample. Validation and checkpointing are kept out of the
measured window on both sides (fairseq-train: --disable-validation --no-save; nmt:
validation/checkpoint intervals beyond the budget). Throughput is fairseq's own
words-per-second meter, averaged over the log intervals after the first; runs
alternate (nmt, fairseq, nmt, fairseq, ...) so that machine noise hits both.
"""
import argparse
import re
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import BIN, REPO, machine, run, update_results  # noqa: E402

WPS = re.compile(r"wps[= ]([0-9.]+)")


def wps_values(log: str) -> list[float]:
    """Per-interval words/s: fairseq-train's mid-epoch lines ('... wps=8233, ...') or nmt's update lines."""
    values = [float(m.group(1)) for line in log.splitlines() if "wps=" in line or "nmt.train | update" in line
              for m in [WPS.search(line)] if m]
    return values[1:]  # the first interval includes warm-up


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", default=str(REPO / "work" / "bench_train"))
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sample = REPO / "data_prep" / "sample"
    run([BIN / "nmt", "prepare", "--raw", sample / "ml50" / "raw", "--eval-set", sample / "flores200" / "devtest",
         "--out", work / "data", "--vocab-size", "4000"])
    sets = [f"model.preset={args.preset}", f"training.max_updates={args.updates}", "training.log_every=25",
            f"validation.every_updates={10 * args.updates}", f"checkpoint.every_updates={10 * args.updates}",
            "training.warmup_updates=100", "validation.max_sentences=10"]
    set_args = [x for item in sets for x in ("--set", item)]
    _, printed = run([BIN / "nmt", "train", "--data", work / "data", "--output", work / "x", *set_args,
                      "--print-fairseq-args"])
    fairseq_args = shlex.split(printed.stdout.strip())[1:]
    nmt_wps, fs_wps, nmt_wall, fs_wall = [], [], [], []
    for i in range(args.repeats):
        out = work / f"nmt{i}"
        t0 = time.perf_counter()
        _, result = run([BIN / "nmt", "train", "--data", work / "data", "--output", out, *set_args])
        nmt_wall.append(time.perf_counter() - t0)
        nmt_wps.append(statistics.mean(wps_values(result.stderr)))
        save = work / f"fs{i}"
        argv = [a if a != str(work / "x" / "checkpoints") else str(save) for a in fairseq_args]
        t0 = time.perf_counter()
        # the allow-list is only needed to read checkpoints; fairseq-train starts from scratch here
        _, result = run([BIN / "fairseq-train", *argv, "--disable-validation", "--no-save"])
        fs_wall.append(time.perf_counter() - t0)
        fs_wps.append(statistics.mean(wps_values(result.stdout + result.stderr)))
    nmt_m, fs_m = statistics.median(nmt_wps), statistics.median(fs_wps)
    overhead = (fs_m - nmt_m) / fs_m * 100
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_train.py --preset {args.preset} --updates {args.updates} --repeats {args.repeats}`
({time.strftime('%Y-%m-%d')}); data: the embedded sample (8 directions), identical fairseq arguments on both sides.

| runner | words/s per run (fairseq's wps meter) | median | wall time per run (s, incl. start-up) |
|---|---|---:|---|
| `fairseq-train` | {', '.join(f'{x:.0f}' for x in fs_wps)} | {fs_m:.0f} | {', '.join(f'{x:.0f}' for x in fs_wall)} |
| `nmt train` | {', '.join(f'{x:.0f}' for x in nmt_wps)} | {nmt_m:.0f} | {', '.join(f'{x:.0f}' for x in nmt_wall)} |

Overhead of `nmt train` in training throughput: **{overhead:+.1f}%** (target: under 3%; negative = faster).
`nmt train`'s wall time also includes its final validation (per-direction translation) and checkpoint.
"""
    update_results(f"Training throughput (`nmt train` vs `fairseq-train`, {args.preset} preset)", body)
    print(body)


if __name__ == "__main__":
    main()
