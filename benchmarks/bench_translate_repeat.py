"""Benchmark: the transformer-base speed comparison of bench_translate.py, repeated in interleaved rounds.

    .venv/bin/python benchmarks/bench_translate_repeat.py --data work/bench_presets/data-ml50-4 --shortlist \\
        [--bundle work/bench_translate/base] [--rounds 3]

One run of bench_translate.py times each system once; on a shared 2-core machine the
CTranslate2 rate moved by about 20% between two such runs on one day while
fairseq-interactive's stayed within 3%. Here every round times fairseq-interactive and
`nmt translate --backend ctranslate2` (int8) back to back on all of FLORES-200 devtest,
and the speed-up is taken within each round. With ``--shortlist`` the int8 export is
re-made with vocabulary shortlists built from ``--data`` (``nmt export --shortlist``)
and a third system uses them (the plain row passes ``--no-shortlist``); ``--avx512`` adds
a row with AVX-512 forced where the CPU has it.
Needs the base-size bundle that bench_translate.py builds.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_translate import (CT2, CT2_AVX512, CT2_SHORTLIST, avx512, fairseq_interactive_cmd,  # noqa: E402
                             parse_interactive, score)
from common import BIN, REPO, gnu_time, machine, run, update_results  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="the prepared-data dir the bundle was built from")
    parser.add_argument("--bundle", type=Path, default=REPO / "work" / "bench_translate" / "base")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", default="en_XX")
    parser.add_argument("--tgt", default="de_DE")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--flores-dir", type=Path, default=REPO / "data_prep" / "sample" / "flores200" / "devtest")
    parser.add_argument("--shortlist", action="store_true", help="also time the export with vocabulary shortlists")
    parser.add_argument("--avx512", action="store_true", help="also time CTranslate2 with AVX-512 forced")
    args = parser.parse_args()
    import json

    from nmt import langs

    src_file = args.flores_dir / f"{langs.get(args.src).flores}.devtest"
    refs = (args.flores_dir / f"{langs.get(args.tgt).flores}.devtest").read_text(encoding="utf-8").splitlines()
    n = len(refs)
    ckpt = args.bundle / json.loads((args.bundle / "bundle.json").read_text())["checkpoint"]
    ct2_cmd = [BIN / "nmt", "translate", "-m", args.bundle, "-s", args.src, "-t", args.tgt, "-i", src_file,
               "--beam", args.beam, "--backend", "ctranslate2", "--quantization", "int8", "--threads", "2"]
    export = [BIN / "nmt", "export", "-m", args.bundle, "--quantization", "int8", "--force"]
    run(export + (["--shortlist", args.data] if args.shortlist else []))
    systems = {"fairseq-interactive": (fairseq_interactive_cmd(args.bundle, args.data / "bin", args.src, args.tgt,
                                                               args.beam, ckpt), None),
               CT2: (ct2_cmd + ["--no-shortlist"], None)}
    if args.shortlist:
        systems[CT2_SHORTLIST] = (ct2_cmd + ["--shortlist"], None)
    if args.avx512 and avx512():
        systems[CT2_AVX512] = (ct2_cmd + ["--no-shortlist"], {**os.environ, "CT2_FORCE_CPU_ISA": "AVX512"})
    rates = {label: [] for label in systems}
    bleus = {}
    for round_ in range(args.rounds):
        for label, (cmd, env) in systems.items():
            stdin_mode = label == "fairseq-interactive"
            kwargs = {"input": src_file.read_text(encoding="utf-8")} if stdin_mode else {}
            t, _, result = gnu_time(cmd, env=env, **kwargs)
            hyps = parse_interactive(result.stdout, n) if stdin_mode else result.stdout.split("\n")[:n]
            bleus[label] = score(hyps, refs, args.tgt)
            rates[label].append(n / t)
            print(f"round {round_ + 1} | {label} | {n / t:.2f} sentences/s", flush=True)
    base = rates["fairseq-interactive"]
    rows = []
    for label, values in rates.items():
        ratios = [v / b for v, b in zip(values, base)]
        rows.append(f"| {label} | {' · '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} | "
                    f"{' · '.join(f'{r:.2f}x' for r in ratios)} | **{statistics.median(ratios):.2f}x** | "
                    f"{bleus[label][0]:.1f} / {bleus[label][1]:.1f} |")
    def span(label):
        ratios = [v / b for v, b in zip(rates[label], base)]
        return (f"{min(ratios):.2f}x to {max(ratios):.2f}x fairseq-interactive over {args.rounds} rounds "
                f"(median {statistics.median(ratios):.2f}x; target 4x)")

    flags = (" --shortlist" if args.shortlist else "") + (" --avx512" if args.avx512 else "")
    verdict = f"With nmt's defaults, CTranslate2 int8 was {span(CT2)}."
    if args.shortlist:
        verdict += f" With the export's vocabulary shortlists it was {span(CT2_SHORTLIST)}."
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_translate_repeat.py --data {args.data} --bundle {args.bundle} --rounds {args.rounds}{flags}`
({time.strftime('%Y-%m-%d')}). The base-size (random weights) bundle of the section above, FLORES-200 devtest
{args.src} -> {args.tgt}, {n} sentences, beam {args.beam}, 2 CPU threads, each command timed end to end (start-up
included); in each round the systems run back to back, and the speed-up is that round's rate over
fairseq-interactive's.

| system | sentences/s per round | median | speed-up per round | median speed-up | BLEU / chrF |
|---|---|---:|---|---:|---|
""" + "\n".join(rows) + f"""

{verdict}
"""
    update_results("Translation speed at transformer-base size, repeated rounds", body)
    print(body)


if __name__ == "__main__":
    main()
