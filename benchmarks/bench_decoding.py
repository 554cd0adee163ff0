"""Decoding for quality (issue 25's evidence): what MBR and pivoting buy, and what they cost.

The evidence run, from the repository root, with the best trained bundle as MODEL (a bundle
directory with a CTranslate2 export, e.g. the one bench_presets.py or bench_quality_budget.py
trained) and, if there is one, a local COMET model directory as COMET:

    nice -n 10 .venv/bin/python benchmarks/bench_decoding.py --model MODEL --write-results
    nice -n 10 .venv/bin/python benchmarks/bench_decoding.py --model MODEL --comet-model COMET --write-results

It decodes all 1,012 FLORES-200 devtest lines of every trained direction with two or three
systems (beam search; MBR-chrF over 16 epsilon samples per line, decoded on the fairseq
checkpoint since CTranslate2 has no epsilon cut-off; with --comet-model, COMET-MBR over the
same kind of samples) and every non-English direction twice (direct; pivot = two
translations per line): likely hours of CPU for a small model (an estimate, not measured).
`--lines 1-200 --candidates 8` cuts that about tenfold. The utility measurement alone needs no
model and a few CPU-minutes:

    nice -n 10 .venv/bin/python benchmarks/bench_decoding.py --utility-only --write-results

1. The MBR utility (no model needed): chrF between N candidates per sentence, nmt's cached
   statistics (nmt.translate.mbr.ChrfUtility) against the naive loop of N*(N-1) calls of
   sacrebleu's sentence chrF, on real FLORES-200 English sentences with N word-dropout
   variants each as candidates. Every expected utility is checked for exact equality.
2. With --model: every trained direction of the bundle on FLORES-200 devtest, one
   `nmt evaluate --compare` report: beam search (the baseline), MBR with chrF, and, when
   --comet-model gives a local COMET model, MBR with COMET. Per direction: chrF, BLEU (and
   COMET, scored with that same model: a COMET-MBR system is then judged by its own
   utility, so its COMET gain is an upper bound; chrF/BLEU are the fair comparison), the
   paired bootstrap's verdict against beam search, and seconds per sentence of each
   system (candidates and choosing included, model loading excluded). Without a COMET
   model the COMET-MBR row says n/a and why.
3. With --model: the non-English directions (zero-shot for an English-centric model),
   direct vs pivoted through English: chrF, off-target % and seconds per sentence.

Every number comes from nmt evaluate's report.json; --write-results puts the tables into
benchmarks/RESULTS.md under "Decoding for quality". Keep --threads modest on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from common import BIN, REPO, SHARED, machine, run, update_results

sys.path.insert(0, str(REPO))

SECTION = "Decoding for quality (MBR, pivoting; FLORES-200 devtest)"


# -- 1. the utility ---------------------------------------------------------------------------
def variants(sentence: str, n: int, rng: random.Random) -> list[str]:
    words = sentence.split()
    out = []
    for _ in range(n):
        kept = [w for w in words if rng.random() > 0.15] or words[:1]
        if len(kept) > 3 and rng.random() < 0.5:
            i = rng.randrange(len(kept) - 1)
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
        out.append(" ".join(kept))
    return out


def utility_benchmark(flores: Path, sizes: list[int], sentences: int) -> tuple[list[str], dict]:
    from sacrebleu.metrics import CHRF

    from nmt.translate.mbr import ChrfUtility

    english = (flores / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()[:sentences]
    ChrfUtility().utilities(variants(english[0], 4, random.Random(1)), 4)  # imports (numpy) outside the clock
    rng = random.Random(0)
    rows, raw = [], {}
    for n in sizes:
        lists = [variants(s, n, rng) for s in english]
        chrf = CHRF()
        t0 = time.perf_counter()
        naive = []
        for cands in lists:
            expected = []
            for k in range(n):
                values = [chrf.sentence_score(cands[k], [cands[j]]).score for j in range(n) if j != k]
                expected.append(sum(values) / len(values))
            naive.append(expected)
        t_naive = time.perf_counter() - t0
        t0 = time.perf_counter()
        utility = ChrfUtility()
        cached = [utility.utilities(cands, n) for cands in lists]
        t_cached = time.perf_counter() - t0
        # the cached utilities are per distinct candidate: compare at each candidate's first position
        equal = all(c == [e[cands.index(t)] for t in dict.fromkeys(cands)]
                    for c, e, cands in zip(cached, naive, lists))
        if not equal:
            raise SystemExit(f"N={n}: the cached chrF utilities differ from sacrebleu's sentence chrF")
        raw[n] = {"naive_ms": 1000 * t_naive / len(lists), "cached_ms": 1000 * t_cached / len(lists)}
        rows.append(f"| {n} | {raw[n]['naive_ms']:.1f} | {raw[n]['cached_ms']:.1f} | "
                    f"{t_naive / t_cached:.1f}x | exact |")
    table = ["| candidates N | naive sacrebleu loop (ms/sentence) | cached statistics (ms/sentence) | speed-up "
             "| equal |", "| ---: | ---: | ---: | ---: | --- |"] + rows
    note = (f"{len(english)} FLORES-200 English sentences, N word-dropout variants each as candidates and "
            "pseudo-references (every candidate against the N-1 others); one process, one thread.")
    return [note, ""] + table, raw


# -- 2. and 3. through nmt evaluate --------------------------------------------------------------
def evaluate(args, out: Path, systems: list[str], options: list[str], directions: str, comet: bool) -> dict:
    cmd = [BIN / "nmt", "evaluate", "--compare", *systems, "-d", directions, "--lines", args.lines,
           "--flores-dir", args.flores, "--threads", str(args.threads), "-o", out]
    for option in options:
        cmd += ["--system-option", option]
    cmd += ["--comet-model", args.comet_model, "--comet-batch-size", "32"] if comet else ["--no-comet"]
    if args.comet_gpus:
        cmd += ["--comet-gpus", "1"]
    run(cmd)
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _cell(report: dict, direction: dict, name: str, metric: str) -> str:
    result = direction["systems"][name]
    score = result["scores"].get(metric, {}).get("score")
    if score is None:
        return "n/a"
    if name == report["baseline"] or metric not in result.get("significance", {}).get("bs", {}):
        return f"{score:.1f}"
    base = direction["systems"][report["baseline"]]["scores"][metric]["score"]
    p = result["significance"]["bs"][metric]["p_value"]
    return f"{score:.1f} ({score - base:+.1f}{'*' if p < 0.05 else ''})"


def _seconds(report: dict) -> dict:
    speed = {}
    for system in report["systems"]:
        rate = (system.get("speed") or {}).get("sentences_per_s")
        speed[system["name"]] = f"{1 / rate:.3f}" if rate else "n/a"
    return speed


def mbr_tables(args, work: Path) -> list[str]:
    bundle = f"{args.model}"
    systems = [f"beam={bundle}", f"mbr-chrf={bundle}"]
    per = [f"mbr-chrf:mbr=chrf", f"mbr-chrf:candidates={args.candidates}"]
    per += [f"mbr-chrf:{kv}" for kv in filter(None, args.candidate_options.split(","))]
    comet = bool(args.comet_model)
    if comet:
        systems.append(f"comet-mbr={bundle}")
        per += ["comet-mbr:mbr=comet", f"comet-mbr:candidates={args.candidates}",
                f"comet-mbr:comet-model={args.comet_model}"]
        per += [f"comet-mbr:{kv}" for kv in filter(None, args.candidate_options.split(","))]
    report = evaluate(args, work / "mbr", systems, per, "trained", comet)
    names = [s["name"] for s in report["systems"]]
    metrics = ["chrF", "BLEU"] + (["COMET"] if comet else [])
    head = "| direction | " + " | ".join(f"{m} {n}" for m in metrics for n in names) + " |"
    rows = [head, "|" + " --- |" + " ---: |" * (len(metrics) * len(names))]
    for d in report["directions"]:
        cells = [_cell(report, d, n, m) for m in metrics for n in names]
        rows.append(f"| {d['direction']} | " + " | ".join(cells) + " |")
    speed = _seconds(report)
    lines = [f"Candidates: {args.candidates} per line ({args.candidate_options or 'beam search n-best'}); "
             f"pseudo-references: all of them. `*`: paired bootstrap resampling (1000 resamples) says the "
             "difference to beam search is significant at p < 0.05.", ""] + rows + [
        "", "Seconds per sentence (every test line of the report, model loading excluded): "
        + ", ".join(f"{n} {speed[n]}" for n in names) + "."]
    if not comet:
        lines.append("COMET-MBR: n/a: no local COMET model given (--comet-model DIR); nothing is downloaded.")
    else:
        lines.append(f"COMET model: {report['comet'].get('signature', report['comet'].get('reason'))}; the COMET "
                     "column scores with the model COMET-MBR chose by, so its COMET gain is an upper bound.")
    return lines


def pivot_tables(args, work: Path) -> list[str]:
    bundle = f"{args.model}"
    report = evaluate(args, work / "pivot", [f"direct={bundle}", f"pivot={bundle}"], ["pivot:pivot=en_XX"],
                      "non-en", False)
    names = [s["name"] for s in report["systems"]]
    rows = ["| direction | chrF direct | chrF pivot | off-target % direct | off-target % pivot |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for d in report["directions"]:
        rows.append(f"| {d['direction']} | {_cell(report, d, 'direct', 'chrF')} | {_cell(report, d, 'pivot', 'chrF')}"
                    f" | {_cell(report, d, 'direct', 'off-target %')} | {_cell(report, d, 'pivot', 'off-target %')} |")
    speed = _seconds(report)
    return ["Every non-English pair of the bundle's languages that FLORES-200 has; pivot: source -> en_XX -> "
            "target in one nmt call (two translations per line).", ""] + rows + [
        "", "Seconds per sentence: " + ", ".join(f"{n} {speed[n]}" for n in names) + "."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="Model bundle (with a CTranslate2 export for speed).")
    parser.add_argument("--comet-model", help="Local COMET model directory for COMET-MBR (and the COMET column).")
    parser.add_argument("--comet-gpus", type=int, default=0)
    parser.add_argument("--flores", default=str(SHARED / "flores200" / "devtest"))
    parser.add_argument("--lines", default="1-1012", help="FLORES-200 devtest lines (1-based ranges).")
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--candidate-options", default="sampling=true,epsilon=0.02,seed=1",
                        help="Decoding options of the MBR systems' candidates, KEY=VALUE,... (nmt evaluate "
                             "--system-option keys); empty: beam search n-best.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--utility-only", action="store_true")
    parser.add_argument("--utility-sizes", default="8,16,32")
    parser.add_argument("--utility-sentences", type=int, default=200)
    parser.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "decoding"))
    parser.add_argument("--write-results", action="store_true", help="Update benchmarks/RESULTS.md.")
    args = parser.parse_args()
    flores = Path(args.flores)
    if not (flores / "eng_Latn.devtest").is_file():
        raise SystemExit(f"no FLORES-200 devtest at {flores} (--flores DIR)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    body = [f"Machine: {machine()}.", "", "### The chrF utility: cached statistics vs the naive loop", ""]
    table, raw = utility_benchmark(flores, [int(n) for n in args.utility_sizes.split(",")], args.utility_sentences)
    body += table
    if not args.utility_only:
        if not args.model:
            raise SystemExit("give --model BUNDLE (or --utility-only)")
        body += ["", f"### Beam search vs MBR (bundle {Path(args.model).resolve().name}, lines {args.lines})", ""]
        body += mbr_tables(args, work)
        body += ["", "### Direct vs pivot through English (non-English directions)", ""]
        body += pivot_tables(args, work)
    text = "\n".join(body) + "\n"
    print(text)
    (work / "summary.md").write_text(text, encoding="utf-8")
    (work / "utility.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    if args.write_results:
        update_results(SECTION, text)


if __name__ == "__main__":
    main()
