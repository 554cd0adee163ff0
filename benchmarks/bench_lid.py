"""Language identification on FLORES-200 devtest: how often does the detector that
`nmt prepare --lid` and `nmt evaluate` use recognise each language, and how fast?

    nice -n 10 .venv/bin/python benchmarks/bench_lid.py [--flores DIR]

For every language in DIR (default ../shared/data/flores200/devtest, mapped with
ml50_to_flores.tsv): the share of lines whose best label is the language itself
(or a variety it is not told apart from), the share that the filter would drop
(confidently another language, at the default threshold), the same drop share on
short segments (the first five words of each line, at threshold 0.5), and lines/s on one core.
FLORES is clean, correctly labelled text: every drop here is a false drop.
"""
from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

from common import SHARED, machine, update_results

from nmt import langs
from nmt.data import lid


def _rows(flores: Path):
    mapping = flores.parent / "ml50_to_flores.tsv"
    for line in mapping.read_text(encoding="utf-8").splitlines():
        code, fcode = line.split("\t")
        path = flores / f"{fcode}.devtest"
        if path.is_file():
            yield code, path.read_text(encoding="utf-8").splitlines()


def _first_words(text: str, code: str, n: int) -> str:
    """The first n words (for unspaced scripts: n word equivalents of characters)."""
    lang = langs.get(code)
    if lang.spaces:
        return " ".join(text.split()[:n])
    return text[: round(n * lang.chars_per_word)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flores", type=Path, default=SHARED / "flores200" / "devtest")
    args = parser.parse_args()
    lid.identify("warm-up")
    table = [f"| language | lines | identified as itself | dropped (threshold {lid.DEFAULT_THRESHOLD}) "
             "| dropped at 0.5, first 5 words | lines/s |", "|---|---:|---:|---:|---:|---:|"]
    total_lines = total_time = 0.0
    for code, lines in _rows(args.flores):
        if not lid.supports(code):
            table.append(f"| {code} | {len(lines)} | n/a (no label in the model) | | | |")
            continue
        t0 = time.perf_counter()
        results = [lid.identify(x) for x in lines]
        seconds = time.perf_counter() - t0
        own = sum(label in lid.accepted(code) for label, _ in results)
        dropped = sum(lid.off_target(x, code) for x in lines)
        short = sum(lid.off_target(_first_words(x, code, 5), code, 0.5) for x in lines)
        total_lines += len(lines)
        total_time += seconds
        table.append(f"| {code} | {len(lines)} | {100 * own / len(lines):.1f}% | {100 * dropped / len(lines):.1f}% "
                     f"| {100 * short / len(lines):.1f}% | {len(lines) / seconds:,.0f} |")
    body = (f"Machine: {machine()}.\n"
            f"Command: `nice -n 10 .venv/bin/python benchmarks/bench_lid.py` ({datetime.date.today()}); "
            f"detector: {lid.DETECTOR_NAME}.\n"
            "Data: FLORES-200 devtest, every language in `../shared/data/flores200` (clean, correctly labelled "
            "text: every drop is a false drop). 'identified as itself': best label is the language (hr also "
            "accepts sh/bs/sr, id also ms, zh also wuu); 'dropped': best label another language with probability "
            f">= {lid.DEFAULT_THRESHOLD} on a line of at least {lid.MIN_WORDS} words (what `nmt prepare --lid` "
            "drops and `nmt evaluate` counts as off-target, with the defaults); 'first 5 words': each line cut "
            "to its first five words (word equivalents for zh/ja), judged at threshold 0.5 (short segments, "
            "where detectors are weak). "
            "Speed: one line per call, one core, on a machine shared with other jobs (lines/s vary about 2x "
            "between runs).\n\n" + "\n".join(table) +
            f"\n\nOverall: {total_lines / total_time:,.0f} lines/s.\n")
    print(body)
    update_results("Language identification (FLORES-200 devtest)", body)


if __name__ == "__main__":
    main()
