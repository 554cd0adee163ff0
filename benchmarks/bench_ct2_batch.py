"""Benchmark: CTranslate2 CPU speed against sentences per batch, for two model widths and three beams.

    .venv/bin/python benchmarks/bench_ct2_batch.py --model small=work/bench_presets/small \\
        --model base=work/bench_translate/base [--lines 150]

Evidence for the default batch size of ``nmt translate --backend ctranslate2`` on CPU
(``CTranslate2Backend.batch_sentences``: 2,621,440 // (beam x model width^2) sentences).
Each bundle needs an int8 export (bench_translate.py makes both). Every setting decodes the
same FLORES-200 devtest lines (every k-th line, so that all lengths are represented) with
``--threads 2`` (two batches in parallel, one thread each), in this one process, after a
warm-up; sentences/s excludes model loading.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, machine, update_results  # noqa: E402

SIZES = {1: (8, 16, 32, 64), 5: (2, 4, 8, 16, 32), 10: (1, 2, 4, 8, 16)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=BUNDLE (with a ctranslate2-int8 export)")
    parser.add_argument("--lines", type=int, default=150)
    parser.add_argument("--src", default="en_XX")
    parser.add_argument("--tgt", default="de_DE")
    parser.add_argument("--beams", default="1,5,10")
    parser.add_argument("--flores-dir", type=Path, default=REPO / "data_prep" / "sample" / "flores200" / "devtest")
    args = parser.parse_args()
    from nmt import langs
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator

    lines = (args.flores_dir / f"{langs.get(args.src).flores}.devtest").read_text(encoding="utf-8").splitlines()
    lines = lines[::max(1, len(lines) // args.lines)][:args.lines]
    beams = [int(b) for b in args.beams.split(",")]
    rows, ratios = [], []
    for spec in args.model:
        name, _, path = spec.partition("=")
        translator = Translator(path, backend="ctranslate2", quantization="int8", threads=2, shortlist=False)
        backend = translator.backend
        translator.translate_text(lines[:8], args.src, args.tgt)  # warm-up
        for beam in beams:
            options = DecodeOptions(beam=beam)
            picked = backend.batch_sentences(options)
            cells = []
            speeds = {}
            for size in sorted(set(SIZES.get(beam, (2, 4, 8, 16, 32))) | {picked}):
                t0 = time.perf_counter()
                translator.translate(lines, args.src, args.tgt, options, max_batch_sentences=size)
                speeds[size] = len(lines) / (time.perf_counter() - t0)
                print(f"{name} beam {beam} batch {size}: {speeds[size]:.2f} sent/s", flush=True)
            best = max(speeds, key=speeds.get)
            for size, speed in speeds.items():
                cell = f"{size}: {speed:.1f}"
                cells.append(f"**{cell}**" if size == best else cell)
            ratios.append(speeds[picked] / speeds[best])
            verdict = f"{picked} ({ratios[-1]:.0%} of the fastest)"
            rows.append(f"| {name} | {backend.model_dim} | {beam} | {' · '.join(cells)} | {verdict} |")
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_ct2_batch.py {' '.join('--model ' + m for m in args.model)} --lines {args.lines}`
({time.strftime('%Y-%m-%d')}). {len(lines)} FLORES-200 devtest lines {args.src} -> {args.tgt} (every
{max(1, 1012 // args.lines)}th), CTranslate2 int8, `--threads 2` (2 batches in parallel, 1 thread each),
output cap 1.5 x source + 10 tokens, one process, model loaded once; sentences/s per batch size
(sentences per batch: sentences/s), the fastest in bold.

| model | width | beam | sentences per batch: sentences/s | nmt's default (2,621,440 // (beam x width²)) |
|---|---:|---:|---|---|
""" + "\n".join(rows) + f"""

A batch's decoder holds sentences x beam rows of the model's width; `nmt translate` on CPU takes
2,621,440 // (beam x width²) sentences per batch (40 rows at width 256, 10 at 512) unless
`--batch-sentences` says otherwise. In this run that default decoded at {min(ratios):.0%} to {max(ratios):.0%}
of the fastest batch size of each row.
"""
    update_results("CTranslate2 sentences per batch on CPU", body)
    print(body)


if __name__ == "__main__":
    main()
