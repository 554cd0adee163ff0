"""Paragraph-level translation with and without sentence splitting, on the WMT24 general
test sets (one paragraph a line, several sentences each; paragraph references).

    nice -n 10 .venv/bin/python benchmarks/bench_paragraphs.py --model BUNDLE [--lines N] [--write-results]

For each of the four pairs in ../shared/data/wmt24-general (en-de, en-ja, en-ru, en-zh;
line 1 of every file is the canary line and is left out of the scores) whose two
languages the model has: the test set is translated with ``--split-sentences auto``
and with ``never`` (same model, beam, batching), and the table gives

- chrF and BLEU of each (sacrebleu, the target language's BLEU tokenizer), and the
  p-value of the difference (sacrebleu's paired bootstrap resampling, 1,000 samples,
  seed 12345);
- output/input length ratio: characters of all hypotheses over characters of all
  sources (for reference, the references' own ratio): a sentence-level model that
  stops after the first sentence of a paragraph shows up as a low ratio;
- translation time of each.

Then the WMT24 submission package for the same pairs is built with splitting
(``nmt package``'s own code, which validates every file and reads it back) and the
archive is checked member by member: the check fails loudly if packaging fails.
``--lines N`` takes the first N paragraphs of each pair (for a quick check).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import SHARED, machine, update_results

from nmt import langs
from nmt.bundle import Bundle
from nmt import metrics
from nmt.evaluate.significance import sacrebleu_paired
from nmt.translate.backends import DecodeOptions, EngineOptions
from nmt.translate.translator import Translator
from nmt.wmt.package import PackageConfig, build_package

PAIRS = ("en-de", "en-ja", "en-ru", "en-zh")


def _read(path: Path, lines: int | None) -> list[str]:
    rows = path.read_text(encoding="utf-8").split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    rows = rows[1:]  # the canary line
    return rows[:lines] if lines else rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Model bundle.")
    parser.add_argument("--data", type=Path, default=SHARED / "wmt24-general")
    parser.add_argument("--lines", type=int, help="Only the first N paragraphs of each pair.")
    parser.add_argument("--beam", type=int, default=DecodeOptions.beam)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Write every number as JSON here.")
    parser.add_argument("--write-results", action="store_true", help="Put the table into benchmarks/RESULTS.md.")
    args = parser.parse_args()
    if not (args.data / "sources").is_dir():
        raise SystemExit(f"no WMT24 test sets in {args.data} (sources/, references/, documents/)")
    bundle = Bundle.load(args.model)
    translator = Translator(bundle, backend=args.backend, device=args.device, threads=args.threads)
    rows, done = {}, []
    for pair in PAIRS:
        src_iso, tgt_iso = pair.split("-")
        src, tgt = langs.resolve(src_iso, bundle.languages), langs.resolve(tgt_iso, bundle.languages)
        if not src or not tgt:
            print(f"{pair}: skipped, the model lacks {src_iso if not src else tgt_iso}", file=sys.stderr)
            continue
        sources = _read(args.data / "sources" / f"{pair}.txt", args.lines)
        refs = _read(args.data / "references" / f"{pair}.refA.txt", args.lines)
        hyps, seconds = {}, {}
        for mode in ("never", "auto"):
            options = DecodeOptions(beam=args.beam, split_sentences=mode)
            started = time.perf_counter()
            hyps[mode] = translator.translate_text(sources, src, tgt, options=options, too_long="truncate")
            seconds[mode] = time.perf_counter() - started
        outcome = sacrebleu_paired([hyps["never"], hyps["auto"]], ["never", "auto"], refs,
                                   {"BLEU": metrics.bleu_metric(tgt), "chrF": metrics.chrf_metric()}, "bs", 1000)
        src_chars = sum(len(s) for s in sources)
        rows[pair] = {
            "paragraphs": len(sources),
            "reference_ratio": sum(len(r) for r in refs) / src_chars,
            **{mode: {"chrF": outcome.results["chrF"][k].score, "BLEU": outcome.results["BLEU"][k].score,
                      "ratio": sum(len(h) for h in hyps[mode]) / src_chars, "seconds": seconds[mode]}
               for k, mode in enumerate(("never", "auto"))},
            "p_chrF": outcome.results["chrF"][1].p_value, "p_BLEU": outcome.results["BLEU"][1].p_value,
            # a weak model can answer a non-empty source ("@user2") with nothing: counted, and the package
            # below is then built with --allow-empty, as a user would have to
            "empty": {mode: sum(1 for s, h in zip(sources, hyps[mode]) if s.strip() and not h.strip())
                      for mode in ("never", "auto")},
        }
        done.append(pair)
        print(f"{pair}: chrF {rows[pair]['never']['chrF']:.1f} -> {rows[pair]['auto']['chrF']:.1f}", file=sys.stderr)
    if not done:
        raise SystemExit(f"the model ({', '.join(bundle.languages)}) has none of the pairs {', '.join(PAIRS)}")
    package = _check_package(args, done, allow_empty=any(rows[p]["empty"]["auto"] for p in done))
    lines = [f"Model `{Path(args.model).resolve().name}` ({bundle.kind}, {translator.backend_name}, beam {args.beam}); "
             f"{'first ' + str(args.lines) + ' paragraphs' if args.lines else 'all paragraphs'} of each pair, canary "
             f"line left out; {machine()}; {datetime.date.today()}.", "",
             "| pair | paragraphs | chrF never | chrF auto | p | BLEU never | BLEU auto | p | out/in chars never | "
             "out/in auto | ref/src | s never | s auto | empty never | empty auto |", "|---" * 15 + "|"]
    for pair, r in rows.items():
        n, a = r["never"], r["auto"]
        lines.append(f"| {pair} | {r['paragraphs']} | {n['chrF']:.1f} | {a['chrF']:.1f} | {r['p_chrF']:.3f} | "
                     f"{n['BLEU']:.1f} | {a['BLEU']:.1f} | {r['p_BLEU']:.3f} | {n['ratio']:.2f} | {a['ratio']:.2f} | "
                     f"{r['reference_ratio']:.2f} | {n['seconds']:.0f} | {a['seconds']:.0f} | "
                     f"{r['empty']['never']} | {r['empty']['auto']} |")
    lines += ["", f"Submission package with splitting: {package}. p: sacrebleu paired bootstrap (1,000 samples), "
                  "auto against never. empty: hypotheses left empty for a non-empty source."]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "package": package}, indent=1), encoding="utf-8")
    if args.write_results:
        update_results("Paragraphs: sentence splitting on WMT24 (bench_paragraphs.py)", table)


def _check_package(args, pairs, allow_empty: bool) -> str:
    """Build the WMT24 submission with splitting in a temporary directory; raise if it does not validate
    (``allow_empty``: empty hypotheses are accepted and counted, as ``nmt package --allow-empty`` does)."""
    with tempfile.TemporaryDirectory(prefix="bench-paragraphs-") as tmp:
        sets = []
        for pair in pairs:  # nmt package reads the txt layout: sources + documents
            source = Path(tmp) / pair / "sources" / f"{pair}.txt"
            docs = Path(tmp) / pair / "documents" / f"{pair}.docs"
            for path, origin in ((source, args.data / "sources" / f"{pair}.txt"),
                                 (docs, args.data / "documents" / f"{pair}.docs")):
                path.parent.mkdir(parents=True, exist_ok=True)
                rows = origin.read_text(encoding="utf-8").split("\n")
                keep = rows[:args.lines + 1] if args.lines else rows
                path.write_text("\n".join(keep).rstrip("\n") + "\n", encoding="utf-8")
            sets.append(str(source))
        archive = Path(tmp) / "submission.tar.gz"
        result = build_package(PackageConfig(
            test_sets=sets, output=str(archive), team="nmt", system="split", constrained=True, model=args.model,
            allow_empty=allow_empty,
            options=DecodeOptions(beam=args.beam, split_sentences="auto"),
            engine=EngineOptions(backend=args.backend, device=args.device, threads=args.threads)))
        with tarfile.open(archive) as tar:
            names = tar.getnames()
        missing = [f.path for f in result.files if not any(n.endswith(f.path) for n in names)]
        if missing or result.metadata["model"]["decoding"]["split_sentences"] != "auto":
            raise SystemExit(f"the submission package is incomplete: {missing or 'split_sentences not recorded'}")
        segments = sum(f.segments for f in result.files)
        return (f"validated{' with --allow-empty' if allow_empty else ''}, {len(result.files)} files, {segments} "
                f"segments, {len(result.warnings)} warnings, decoding recorded as split_sentences=auto")


if __name__ == "__main__":
    main()
