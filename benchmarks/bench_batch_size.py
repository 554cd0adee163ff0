"""How fast one CTranslate2 decoding thread is at the batch sizes a server sees at low concurrency.

    .venv/bin/python benchmarks/bench_batch_size.py --model BUNDLE [--sentences 240] [--rounds 2]

The first --sentences FLORES-200 devtest sentences (--src -> --tgt, beam 5, nmt's per-sentence output
cap) are cut into groups of G consecutive sentences, as G concurrent one-sentence requests would reach
`nmt serve`; each group is planned as `nmt translate` plans a file (batches hold one output cap), and
every batch is decoded on one thread. G = all is the batch job's cut. Reported: sentences per second
and the mean lines per decoding call, best of --rounds. Section "Decoding speed by batch size (one
CTranslate2 thread)" and benchmarks/results/batch_size.json.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, SHARED, machine, update_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="bundle with a CTranslate2 export")
    parser.add_argument("--src", default="en_XX")
    parser.add_argument("--tgt", default="de_DE")
    parser.add_argument("--sentences", type=int, default=240)
    parser.add_argument("--groups", default="all,32,16,8,4,2,1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--flores-dir", type=Path, default=SHARED / "flores200" / "devtest")
    args = parser.parse_args()
    from nmt import langs
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator

    translator = Translator(args.model, backend="ctranslate2", threads=1)
    path = args.flores_dir / f"{langs.get(args.src).flores}.devtest"
    lines = path.read_text(encoding="utf-8").splitlines()[:args.sentences]
    _, work = translator.prepare(lines, args.src, args.tgt)
    options = DecodeOptions(beam=5)
    backend = translator.backend_for(options)
    rows = []
    for group in args.groups.split(","):
        size = len(work) if group == "all" else int(group)
        best, calls = 0.0, 0
        for _ in range(args.rounds):
            started, calls = time.perf_counter(), 0
            for first in range(0, len(work), size):
                for batch in translator.plan(work[first:first + size], options):
                    backend.generate([ids for _, ids in batch], args.src, args.tgt, options)
                    calls += 1
            best = max(best, len(work) / (time.perf_counter() - started))
        rows.append({"group": group, "sentences_per_s": best, "lines_per_call": len(work) / calls})
        print(rows[-1], flush=True)
    command = "benchmarks/bench_batch_size.py " + " ".join(sys.argv[1:])
    table = "\n".join(f"| {r['group']} | {r['lines_per_call']:.1f} | {r['sentences_per_s']:.1f} | "
                      f"{r['sentences_per_s'] / rows[0]['sentences_per_s']:.2f}x |" for r in rows)
    body = f"""
Machine: {machine()}. Command: `{command}` ({time.strftime('%Y-%m-%d')}). Model: {args.model.name}
(int8 CTranslate2 export), FLORES-200 devtest {args.src} -> {args.tgt}, the first {len(work)} sentences, beam 5,
one thread, best of {args.rounds} rounds. Sentences grouped G at a time (as G concurrent one-sentence
requests), each group planned as `nmt translate` plans a file (one output cap per batch).

| G | lines per decoding call | sentences/s | vs the batch job's cut |
|---|---:|---:|---:|
{table}
"""
    update_results("Decoding speed by batch size (one CTranslate2 thread)", body)
    (REPO / "benchmarks" / "results" / "batch_size.json").write_text(json.dumps(
        {"machine": machine(), "command": command, "model": str(args.model), "rows": rows}, indent=1),
        encoding="utf-8")
    print(body)


if __name__ == "__main__":
    main()
