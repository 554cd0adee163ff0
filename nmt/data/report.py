"""``nmt data report DATA``: what cleaning did to each pair, before any GPU time is spent.

Reads a prepared-data directory (``nmt prepare --out DATA``): the filter counts
from its ``manifest.json`` and the cleaned training text under ``clean/``. Per
pair it writes, into ``report.md`` (Markdown) and one PNG per pair:

- the pairs read and those each filter dropped, in the order the filters run,
  and the pairs kept (as in the manifest);
- sentence lengths of source and target (words, or word equivalents for
  unspaced scripts, as the length filters count them): percentiles and a histogram;
- the source/target length ratio: percentiles and a histogram (log scale);
- the most repeated source lines and target lines left in the training text
  (exact duplicate *pairs* are already removed; one side repeated with different
  partners often means boilerplate or a misalignment);
- a few training pairs drawn with a fixed seed.

The report directory is built under a temporary name and renamed into place.
"""
from __future__ import annotations

import collections
import math
import random
import shutil
import tempfile
from pathlib import Path

from nmt import langs
from nmt.data.manifest import load_prepared
from nmt.errors import NmtError
from nmt.fileio import read_lines, replace_dir

PERCENTILES = (1, 10, 50, 90, 99)


def _percentile(sorted_values: list, p: float):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def pair_stats(src_lines, tgt_lines, src: str, tgt: str, top: int, samples: int, seed: int) -> dict:
    """Length and ratio distributions, repeated lines and sample pairs of one pair's training text."""
    a, b = langs.get(src), langs.get(tgt)
    len_src = [a.length(x) for x in src_lines]
    len_tgt = [b.length(y) for y in tgt_lines]
    ratios = [x / y for x, y in zip(len_src, len_tgt) if x and y]
    rng = random.Random(f"{seed}:{src}-{tgt}")
    picks = sorted(rng.sample(range(len(src_lines)), min(samples, len(src_lines))))

    def repeated(lines):
        return [(line, n) for line, n in collections.Counter(lines).most_common(top) if n > 1]

    return {"pairs": len(src_lines), "len_src": len_src, "len_tgt": len_tgt, "ratios": ratios,
            "percentiles": {name: {p: _percentile(sorted(values), p) for p in PERCENTILES}
                            for name, values in (("source", len_src), ("target", len_tgt), ("ratio", ratios))},
            "repeated_src": repeated(src_lines), "repeated_tgt": repeated(tgt_lines),
            "samples": [(src_lines[i], tgt_lines[i]) for i in picks]}


def plot_pair(stats: dict, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    src, tgt = name.split("-")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    top = max(1, int(_percentile(sorted(stats["len_src"] + stats["len_tgt"]), 99.5) or 1))
    bins = range(0, top + 2)
    left.hist([min(x, top + 1) for x in stats["len_src"]], bins=bins, alpha=0.6, label=f"{src} (source)")
    left.hist([min(y, top + 1) for y in stats["len_tgt"]], bins=bins, alpha=0.6, label=f"{tgt} (target)")
    left.set_xlabel("length (words or word equivalents; last bin: longer)")
    left.set_ylabel("pairs")
    left.legend(fontsize=8)
    logs = [math.log2(r) for r in stats["ratios"]]
    right.hist(logs, bins=40, color="#55a868")
    right.set_xlabel("log2(source length / target length)")
    right.set_title(f"{len(stats['ratios']):,} pairs", fontsize=9)
    fig.suptitle(f"{name}: training text after cleaning", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _fmt(value) -> str:
    return "-" if value is None else (f"{value:.2f}" if isinstance(value, float) and value % 1 else f"{value:g}")


def _cell(text: str, width: int = 90) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def pair_markdown(name: str, counts: dict, stats: dict, png: str) -> list[str]:
    out = [f"## {name}", "", "| step | pairs |", "| --- | ---: |", f"| read | {counts['read']:,} |"]
    if counts.get("bad_utf8"):
        out.append(f"| dropped: bad UTF-8 | {counts['bad_utf8']:,} |")
    out += [f"| dropped: {reason} | {n:,} |" for reason, n in counts["dropped"].items()]
    out += [f"| **kept** | **{counts['kept']:,}** |", "",
            f"Training text in clean/: {stats['pairs']:,} pairs.",
            "", "| distribution | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |",
            "| --- | " + " | ".join("---:" for _ in PERCENTILES) + " |"]
    for label, key in (("source length", "source"), ("target length", "target"), ("source/target ratio", "ratio")):
        out.append(f"| {label} | " + " | ".join(_fmt(stats["percentiles"][key][p]) for p in PERCENTILES) + " |")
    out += ["", f"![{name} lengths and ratios]({png})", ""]
    for side, key in (("source", "repeated_src"), ("target", "repeated_tgt")):
        rows = stats[key]
        if rows:
            out += [f"Most repeated {side} lines:", "", "| count | line |", "| ---: | --- |"]
            out += [f"| {n:,} | {_cell(line)} |" for line, n in rows] + [""]
        else:
            out += [f"No {side} line occurs twice.", ""]
    out += ["Sample pairs:", "", "| source | target |", "| --- | --- |"]
    out += [f"| {_cell(x, 70)} | {_cell(y, 70)} |" for x, y in stats["samples"]] + [""]
    return out


def report(data, out=None, top: int = 5, samples: int = 5, seed: int = 1) -> Path:
    """Write DATA's report into ``out`` (default DATA/report); returns the Markdown file."""
    data = Path(data)
    manifest = load_prepared(data)
    out = Path(out) if out else data / "report"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        lines = [f"# Data report: {data}", "",
                 f"{len(manifest['pairs'])} pair(s); filters and their settings: `{manifest['settings']['filters']}`.",
                 ""]
        if manifest.get("romanization"):
            roman = manifest["romanization"]
            lines[-1:-1] = [f"Romanized with {roman['romanizer']} (the text below is in Latin letters): "
                            f"{', '.join(roman['languages'])}"
                            f"{' (as targets too, for analysis)' if roman.get('target') else ''}.", ""]
        for name, info in manifest["pairs"].items():
            src, tgt = name.split("-")
            texts = []
            for lang in (src, tgt):
                path = data / "clean" / f"train.{name}.{lang}"
                if not path.is_file():
                    raise NmtError(f"{path} is missing: {data} is not a complete prepared-data directory")
                texts.append(read_lines(path)[0])
            stats = pair_stats(texts[0], texts[1], src, tgt, top, samples, seed)
            plot_pair(stats, name, tmp / f"{name}.png")
            lines += pair_markdown(name, info["train"], stats, f"{name}.png")
        (tmp / "report.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "report.md"
