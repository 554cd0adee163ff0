"""Benchmark: does `nmt prepare` scale? ml50-mini at 1x, 4x and 16x, against spm_encode + fairseq-preprocess.

    nice -n 10 .venv/bin/python benchmarks/bench_prepare_scale.py [--scales 1,4,16] [--fairseq-scales 1,4]
        [--workers 2] [--vocab-size 8000] [--budget-minutes 50]

1. Scaled copies of `ml50-mini/raw` are written under the work directory: copy k of every
   training line gets the suffix " k" (so no copy is a duplicate of another); 1x is copy 0.
2. A sentencepiece model and dictionary are trained once (`nmt prepare` at 1x, its spm
   stage); every measured run gets them with `--spm-model/--dict`, so the measured runs
   clean and binarize only (the spm stage costs the same at any size: its sample is capped).
3. Per scale: `nmt prepare --workers N`: wall time and peak RSS of the whole process tree
   (the sum over the command and all its descendants, sampled every 0.1 s), peak of the
   largest single process, CPU seconds of the whole tree and of the main process.
4. The reference at the scales in `--fairseq-scales`: `spm_encode` per file (N processes) and
   `fairseq-preprocess --workers N` per pair on our clean text with the same model and
   dictionary; the binaries are compared byte for byte with ours.
Runs that would start after `--budget-minutes` are skipped and reported as such.
Results: a section of benchmarks/RESULTS.md and benchmarks/prepare_scale.png.
"""
import argparse
import ast
import json
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_prepare import spm_encode  # noqa: E402
from common import BIN, PY, REPO, SHARED, machine, tree_peak, update_results  # noqa: E402

ML50_PAIRS = 230e6  # the real ML50 training set (Tang et al. 2020), sentence pairs


def make_scaled(raw: Path, dst: Path, copies: int) -> None:
    dst.mkdir(parents=True)
    for src in sorted(raw.iterdir()):
        with open(src, "rb") as fin:
            lines = fin.read().splitlines()
        with open(dst / src.name, "wb") as out:
            for k in range(copies):
                suffix = f" {k}".encode()
                out.write(b"".join(line + suffix + b"\n" for line in lines))


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(cmd) -> dict:
    cpu0 = cpu_of_children()
    seconds, tree, one, main_cpu = tree_peak(cmd)
    return {"seconds": seconds, "tree_mib": tree, "one_mib": one, "cpu": cpu_of_children() - cpu0,
            "main_cpu": main_cpu}


def reference(ours: Path, ref: Path, workers: int) -> dict:
    """spm_encode + fairseq-preprocess on our clean text, with the peak RSS of each step."""
    from concurrent.futures import ProcessPoolExecutor

    enc = ref / "spm"
    enc.mkdir(parents=True)
    model = ours / "spm" / "spm.model"
    pairs = sorted(json.loads((ours / "manifest.json").read_text())["pairs"])
    jobs = [(model, src, enc / src.name) for src in sorted((ours / "clean").glob("*.*-*.*"))]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(spm_encode, jobs))
    t_encode = time.perf_counter() - t0
    peak = 0.0
    t_pre = 0.0
    for name in pairs:
        a, b = name.split("-")
        cmd = [BIN / "fairseq-preprocess", "--source-lang", a, "--target-lang", b, "--trainpref",
               enc / f"train.{name}", "--validpref", enc / f"valid.{name}", "--destdir", ref / "bin",
               "--srcdict", ours / "bin" / "dict.txt", "--tgtdict", ours / "bin" / "dict.txt",
               "--workers", workers, "--dataset-impl", "mmap"]
        if (enc / f"test.{name}.{a}").exists():
            cmd += ["--testpref", enc / f"test.{name}"]
        seconds, tree, _, _ = tree_peak(cmd)
        t_pre += seconds
        peak = max(peak, tree)
    compared = identical = 0
    for path in sorted((ref / "bin").glob("*.bin")) + sorted((ref / "bin").glob("*.idx")):
        compared += 1
        identical += path.read_bytes() == (ours / "bin" / path.name).read_bytes()
    shutil.rmtree(enc)
    return {"seconds": t_encode + t_pre, "encode": t_encode, "preprocess": t_pre, "tree_mib": peak,
            "identical": identical, "compared": compared}


def plot(rows: dict, refs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    scales = sorted(rows)
    pairs = [rows[s]["pairs"] / 1e6 for s in scales]
    left.plot(pairs, [rows[s]["tree_mib"] for s in scales], "o-", label="nmt prepare (process tree)")
    right.plot(pairs, [rows[s]["seconds"] / rows[s]["pairs"] * 1e6 for s in scales], "o-", label="nmt prepare")
    if refs:
        rs = sorted(refs)
        left.plot([rows[s]["pairs"] / 1e6 for s in rs], [refs[s]["tree_mib"] for s in rs], "s--",
                  label="fairseq-preprocess (largest run)")
        right.plot([rows[s]["pairs"] / 1e6 for s in rs], [refs[s]["seconds"] / rows[s]["pairs"] * 1e6 for s in rs],
                   "s--", label="spm_encode + fairseq-preprocess")
    left.set(xlabel="sentence pairs read (millions)", ylabel="peak RSS (MiB)", title="Memory", ylim=(0, None))
    right.set(xlabel="sentence pairs read (millions)", ylabel="seconds per million pairs", title="Time per pair",
              ylim=(0, None))
    left.legend()
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(SHARED))
    parser.add_argument("--work", default=str(REPO / "work" / "bench_prepare_scale"))
    parser.add_argument("--scales", default="1,4,16")
    parser.add_argument("--fairseq-scales", default="1,4")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--spm-sample-size", type=int, default=300_000)
    parser.add_argument("--budget-minutes", type=float, default=50)
    parser.add_argument("--vocab-from", help="reuse the vocab/ directory of an earlier run instead of training")
    parser.add_argument("--from-log", help="only render the results section from the output of a run")
    args = parser.parse_args()
    if args.from_log:
        from_log(args)
        return
    start = time.time()
    raw = Path(args.shared) / "ml50-mini" / "raw"
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    scales = [int(x) for x in args.scales.split(",")]
    fairseq_scales = [int(x) for x in args.fairseq_scales.split(",") if x]
    nmt = [PY, "-m", "nmt.cli", "prepare", "--workers", args.workers]

    vocab = work / "vocab"
    make_scaled(raw, work / "raw1", 1)
    t0 = time.perf_counter()
    if args.vocab_from:  # the vocabulary of an earlier run of this benchmark (same settings)
        shutil.copytree(args.vocab_from, vocab)
    else:
        tree_peak(nmt + ["--raw", work / "raw1", "--out", vocab, "--vocab-size", args.vocab_size,
                         "--spm-sample-size", args.spm_sample_size])
    t_vocab = time.perf_counter() - t0
    spm_stage = json.loads((vocab / "spm" / "stage.json").read_text())["seconds"]
    given = ["--spm-model", vocab / "spm" / "spm.model", "--dict", vocab / "spm" / "dict.txt"]

    # the references last (fairseq-preprocess starts once per pair): they are what the budget drops
    plan = [("nmt", s) for s in scales] + [("fairseq", s) for s in fairseq_scales]
    rows, refs, skipped = {}, {}, []
    for system, scale in plan:
        if (time.time() - start) / 60 > args.budget_minutes or (system == "fairseq" and scale not in rows):
            skipped.append(f"{system} at {scale}x")
            continue
        data = work / f"raw{scale}"
        if not data.exists():
            make_scaled(raw, data, scale)
        out = work / f"out{scale}"
        if system == "nmt":
            row = measure(nmt + ["--raw", data, "--out", out] + given)
            manifest = json.loads((out / "manifest.json").read_text())
            row["pairs"] = sum(p["train"]["read"] for p in manifest["pairs"].values())
            row["stages"] = {s: json.loads((out / s / "stage.json").read_text())["seconds"] for s in ("clean", "bin")}
            rows[scale] = row
        else:
            refs[scale] = reference(out, work / f"ref{scale}", args.workers)
            shutil.rmtree(work / f"ref{scale}")
        print(system, scale, rows.get(scale) if system == "nmt" else refs[scale], flush=True)
        if system == "nmt":
            shutil.rmtree(data)
        if system == "fairseq" or scale not in fairseq_scales:
            shutil.rmtree(out)

    report(args, rows, refs, skipped, "in an earlier run" if args.vocab_from else f"{t_vocab:.0f} s for a whole 1x run",
           spm_stage)


def from_log(args) -> None:
    """Render the section from the rows a run printed (a run stopped before its end, e.g. at a deadline)."""
    rows, refs = {}, {}
    for line in Path(args.from_log).read_text().splitlines():
        system, _, rest = line.partition(" ")
        if system in ("nmt", "fairseq") and rest[:1].isdigit():
            scale, _, value = rest.partition(" ")
            (rows if system == "nmt" else refs)[int(scale)] = ast.literal_eval(value)
    planned = [("nmt", int(s)) for s in args.scales.split(",")] + \
              [("fairseq", int(s)) for s in args.fairseq_scales.split(",") if s]
    skipped = [f"{system} at {scale}x" for system, scale in planned if scale not in (rows if system == "nmt" else refs)]
    spm_stage = json.loads((Path(args.work) / "vocab" / "spm" / "stage.json").read_text())["seconds"]
    report(args, rows, refs, skipped, "time not logged", spm_stage,
           note=" The run was stopped before its end; this section was rendered from its log (`--from-log`).")


def report(args, rows: dict, refs: dict, skipped: list, vocab_run: str, spm_stage: float, note: str = "") -> None:
    plot(rows, refs, REPO / "benchmarks" / "prepare_scale.png")
    base = rows[min(rows)]
    lines = ["| scale | pairs read | wall s | clean s | bin s | s per M pairs | peak RSS tree (MiB) | largest process (MiB) "
             "| CPU s (tree / main process) | reference s (encode + preprocess) | reference peak (MiB) | identical bin files |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for scale in sorted(rows):
        r = rows[scale]
        ref = refs.get(scale)
        ref_cols = (f"{ref['seconds']:.0f} ({ref['encode']:.0f} + {ref['preprocess']:.0f}) | {ref['tree_mib']:.0f} | "
                    f"{ref['identical']}/{ref['compared']}") if ref else "not run | | "
        lines.append(f"| {scale}x | {r['pairs']:,} | {r['seconds']:.1f} | {r['stages']['clean']:.1f} | "
                     f"{r['stages']['bin']:.1f} | {r['seconds'] / r['pairs'] * 1e6:.1f} | {r['tree_mib']:.0f} | "
                     f"{r['one_mib']:.0f} | {r['cpu']:.0f} / {r['main_cpu']:.0f} | {ref_cols} |")
    verdicts = []
    if len(rows) > 1:
        top = rows[max(rows)]
        mem_ratio = top["tree_mib"] / base["tree_mib"]
        time_ratio = (top["seconds"] / top["pairs"]) / (base["seconds"] / base["pairs"])
        verdicts.append(f"Peak RSS of the process tree at {max(rows)}x / {min(rows)}x: **{mem_ratio:.2f}x** "
                        f"(target <= 1.2x): {'met' if mem_ratio <= 1.2 else 'NOT met'}.")
        verdicts.append(f"Time per pair at {max(rows)}x / {min(rows)}x: **{time_ratio:.2f}x** (target <= 1.3x): "
                        f"{'met' if time_ratio <= 1.3 else 'NOT met'}.")
        lo, hi = rows[sorted(rows)[-2]], top
        slope = (hi["seconds"] - lo["seconds"]) / (hi["pairs"] - lo["pairs"])
        cpu_slope = (hi["cpu"] - lo["cpu"]) / (hi["pairs"] - lo["pairs"])
        main_slope = (hi["main_cpu"] - lo["main_cpu"]) / (hi["pairs"] - lo["pairs"])
        verdicts.append(
            f"Slope between {sorted(rows)[-2]}x and {max(rows)}x: {slope * 1e6:.1f} s wall, {cpu_slope * 1e6:.1f} CPU-s "
            f"(all processes), {main_slope * 1e6:.1f} CPU-s (main process) per million pairs. The real ML50 "
            f"(~230M pairs), clean + binarize with a given vocabulary: about **{slope * ML50_PAIRS / 3600:.1f} h** "
            f"at the measured wall-clock slope on this shared machine, **{cpu_slope * ML50_PAIRS / 2 / 3600:.1f} h** "
            f"on 2 cores of its own (CPU slope / 2). On 32 cores (`--workers 32`): the CPU work spread evenly would "
            f"take {cpu_slope * ML50_PAIRS / 32 / 3600:.1f} h, but the main process alone needs "
            f"{main_slope * ML50_PAIRS / 3600:.1f} h (reading, dedup, writing, and the binarize stage's encoding "
            f"threads, which count as its CPU here), so expect about "
            f"**{max(cpu_slope / 32, main_slope) * ML50_PAIRS / 3600:.1f} h**. Memory stays at the values above, "
            f"plus 8 bytes per distinct pair of the largest language pair (dedup keys).")
    for scale, ref in sorted(refs.items()):
        r = rows[scale]
        verdicts.append(f"At {scale}x `nmt prepare` (clean + binarize, {r['seconds']:.0f} s) vs the reference "
                        f"(encode + binarize only, {ref['seconds']:.0f} s): **{ref['seconds'] / r['seconds']:.1f}x** "
                        f"{'faster' if ref['seconds'] > r['seconds'] else 'SLOWER'}.")
    if skipped:
        verdicts.append(f"Not run (or not finished) within the time available: {', '.join(skipped)}.{note}")
    body = f"""
Machine: {machine()} (shared with other jobs while measured: absolute times are inflated, ratios within
the run are what to read). Command: `nice -n 10 .venv/bin/python benchmarks/bench_prepare_scale.py --scales {args.scales}
--fairseq-scales {args.fairseq_scales} --workers {args.workers} --vocab-size {args.vocab_size} --spm-sample-size {args.spm_sample_size}
--budget-minutes {args.budget_minutes:g}` ({time.strftime('%Y-%m-%d')}).
Data: ml50-mini (20 languages <-> English) repeated 1x/4x/16x, each copy's lines with a unique suffix.
The sentencepiece model ({args.vocab_size} pieces) was trained once at 1x ({vocab_run},
spm stage {spm_stage:.0f} s) and given to every measured run (`--spm-model/--dict`). Plot: `benchmarks/prepare_scale.png`.

{chr(10).join(lines)}

{chr(10).join('- ' + v for v in verdicts)}
"""
    update_results("Data preparation at scale (streaming `nmt prepare`, 1x / 4x / 16x ml50-mini)", body)
    print(body)


if __name__ == "__main__":
    main()
