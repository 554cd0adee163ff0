"""Benchmark: vocabulary shortlists (nmt export --shortlist): coverage, quality and speed per direction.

    .venv/bin/python benchmarks/bench_shortlist.py --bundle work/bench_presets/small \\
        --data work/bench_presets/data-ml50-4 [--lines 1012]

The bundle is copied (without its exports) to work/bench_shortlist/, exported to int8 with
shortlists built from the training bitext under --data, and every direction of the model
translates FLORES-200 devtest twice in this process, with and without the shortlist
(beam 5, 2 threads; sentences/s excludes model loading). Coverage is the share of
reference tokens (the bundle's subwords) inside the target language's list: the tokens a
translation as good as the reference could not produce are the rest.
"""
import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_translate import score  # noqa: E402
from common import BIN, REPO, machine, run, update_results  # noqa: E402


def _signed(x: float) -> str:
    x = round(x, 1) + 0.0  # no "-0.0"
    return f"{x:+.1f}" if x else "0.0"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, type=Path, help="a trained bundle")
    parser.add_argument("--data", required=True, type=Path, help="the prepared-data dir it was trained on")
    parser.add_argument("--lines", type=int, default=1012, help="FLORES-200 devtest lines per direction")
    parser.add_argument("--flores-dir", type=Path, default=REPO / "data_prep" / "sample" / "flores200" / "devtest")
    args = parser.parse_args()
    from nmt import langs
    from nmt.bundle import Bundle
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.shortlist import SHORTLIST_DIR, read_shortlist
    from nmt.translate.translator import Translator

    work = REPO / "work" / "bench_shortlist" / args.bundle.name
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(args.bundle, work, ignore=shutil.ignore_patterns("ctranslate2-*"))
    t_export, _ = run([BIN / "nmt", "export", "-m", work, "--quantization", "int8", "--shortlist", args.data])
    export = work / "ctranslate2-int8"
    info = json.loads((export / "nmt_export.json").read_text())["shortlist"]
    bundle = Bundle.load(work)
    translators = {on: Translator(work, backend="ctranslate2", threads=2, shortlist=on) for on in (False, True)}
    codec = translators[True].codec
    options = DecodeOptions(beam=5)

    def flores(code):
        path = args.flores_dir / f"{langs.get(code).flores}.devtest"
        return path.read_text(encoding="utf-8").splitlines()[:args.lines]

    rows, speedups, deltas = [], [], []
    for src, tgt in bundle.direction_pairs():
        source, refs = flores(src), flores(tgt)
        allowed = read_shortlist(export / SHORTLIST_DIR / f"{tgt}.txt", codec.piece_index)
        ref_ids = [i for ids in codec.encode([codec.normalize(x) for x in refs]) for i in ids]
        coverage = sum(i in allowed or i < 4 for i in ref_ids) / len(ref_ids)
        measured = {}
        for on, translator in translators.items():
            t0 = time.perf_counter()
            hyps = translator.translate_text(source, src, tgt, options=options)
            rate = len(source) / (time.perf_counter() - t0)
            measured[on] = (rate, *score(hyps, refs, tgt))
        (r0, b0, c0), (r1, b1, c1) = measured[False], measured[True]
        speedups.append(r1 / r0)
        deltas.append(b1 - b0)
        rows.append(f"| {src}-{tgt} | {100 * coverage:.2f}% | {len(allowed):,} | {b0:.1f} / {c0:.1f} | "
                    f"{b1:.1f} / {c1:.1f} | {r0:.1f} | {r1:.1f} | **{r1 / r0:.2f}x** |")
        print(rows[-1], flush=True)
    vocab = len(codec.symbols)
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_shortlist.py --bundle {args.bundle} --data {args.data} --lines {args.lines}`
({time.strftime('%Y-%m-%d')}). Shortlists: every token that occurs at least {info['min_count']} time(s) in the target
language's side of the training bitext (up to {info['max_lines']:,} lines per file), built in {t_export:.0f} s (export
included). Vocabulary: {vocab:,} tokens. FLORES-200 devtest, first {args.lines} lines, beam 5, CTranslate2 int8,
2 threads, in one process (model loading excluded). Coverage: the share of reference tokens inside the target
language's list.

| direction | reference-token coverage | tokens in the list | BLEU / chrF, full vocabulary | BLEU / chrF, shortlist | sentences/s, full | sentences/s, shortlist | speed-up |
|---|---:|---:|---|---|---:|---:|---:|
""" + "\n".join(rows) + f"""

Speed-up {min(speedups):.2f}x to {max(speedups):.2f}x; BLEU change {_signed(min(deltas))} to {_signed(max(deltas))}.
A BLEU or chrF difference on a weak model says little about a strong one; coverage does not depend on the
model: a reference token outside the list is one that no translation through the list can produce. With
beam search the list also renormalises each step's probabilities over fewer tokens, so outputs can change even
where they fit the list; greedy search gives the same output wherever the full-vocabulary output fits
(tests/test_shortlist.py).
"""
    update_results(f"Vocabulary shortlists ({args.bundle.name})", body)
    print(body)


if __name__ == "__main__":
    main()
