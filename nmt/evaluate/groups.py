"""Direction groups for averages: by English side and by training-data size.

English side: *into English* (x -> en_XX), *out of English* (en_XX -> x) and
*non-English* (neither side English; usually zero-shot for English-centric
models). Averages are unweighted means of the per-direction corpus scores
(each direction counts once, whatever its test-set size), the usual way
multilingual results are summarised; they are not a corpus score over the
pooled test sets.

Resource buckets need training counts: the ``directions: {dir: {train: N}}``
table of a bundle's ``training.json`` (or of ``nmt prepare``'s
``manifest.json``). Default thresholds, in training pairs per direction,
follow the bands common in the multilingual-NMT literature (e.g. the ML50 /
mBART-50 analyses):

    high      >= 1,000,000
    medium    >=   100,000
    low       >=    10,000
    very-low  <     10,000
    zero-shot      no training data for the direction (not in the table)

``--resource-buckets "high=1000000,medium=100000,low=10000,very-low=0"``
changes them (any names, any number of bands; the band with threshold 0
catches the rest).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmt import langs
from nmt.errors import NmtError
from nmt.fileio import read_json

DEFAULT_BUCKETS = "high=1000000,medium=100000,low=10000,very-low=0"
ZERO_SHOT = "zero-shot"


@dataclass(frozen=True)
class Buckets:
    bands: tuple  # ((name, min_pairs), ...), largest threshold first

    @classmethod
    def parse(cls, spec: str | None) -> "Buckets":
        bands = []
        for item in filter(None, (p.strip() for p in (spec or DEFAULT_BUCKETS).split(","))):
            name, sep, value = item.partition("=")
            try:
                threshold = int(value.replace("_", ""))
            except ValueError:
                threshold = -1
            if not sep or not name.strip() or threshold < 0:
                raise NmtError(f"bad --resource-buckets item {item!r}: write NAME=MIN_PAIRS, e.g. {DEFAULT_BUCKETS}")
            bands.append((name.strip(), threshold))
        bands.sort(key=lambda b: -b[1])
        if bands[-1][1] != 0:
            raise NmtError(f"--resource-buckets needs a band with threshold 0 to catch the smallest directions "
                           f"(e.g. ...,very-low=0); got {spec!r}")
        if len({b[0] for b in bands}) != len(bands) or ZERO_SHOT in {b[0] for b in bands}:
            raise NmtError(f"--resource-buckets names must be unique and not {ZERO_SHOT!r}")
        return cls(tuple(bands))

    def bucket(self, pairs: int | None) -> str | None:
        if pairs is None:
            return None
        if pairs == 0:
            return ZERO_SHOT
        return next(name for name, threshold in self.bands if pairs >= threshold)

    def label(self, name: str) -> str:
        """``"low (10k-100k pairs)"``: the bucket name with its band."""
        if name == ZERO_SHOT:
            return "zero-shot (no training data)"
        low = dict(self.bands)[name]
        higher = [t for _, t in self.bands if t > low]
        if not higher:
            return f"{name} (>= {_human(low)} pairs)" if low else name
        if low == 0:
            return f"{name} (< {_human(min(higher))} pairs)"
        return f"{name} ({_human(low)}-{_human(min(higher))} pairs)"

    def order(self) -> list[str]:
        return [name for name, _ in self.bands] + [ZERO_SHOT]

    def describe(self) -> dict:
        return {name: threshold for name, threshold in self.bands}


def _human(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % (size // 10) == 0:
            text = f"{n / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return str(n)


def english_side(src: str, tgt: str) -> str:
    if tgt == langs.ENGLISH:
        return "into English"
    if src == langs.ENGLISH:
        return "out of English"
    return "non-English"


ENGLISH_GROUPS = ("into English", "out of English", "non-English")


def load_train_counts(path) -> dict[str, int]:
    """``{direction: training pairs}`` from a bundle dir, training.json or prepare manifest.json."""
    path = Path(path)
    if path.is_dir():
        for name in ("training.json", "manifest.json"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise NmtError(f"{path} has neither training.json (a model bundle) nor manifest.json (prepared data)")
    data = read_json(path)
    table = data.get("directions") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise NmtError(f"{path} has no 'directions' table with training counts")
    counts = {}
    for direction, info in table.items():
        if isinstance(info, dict) and isinstance(info.get("train"), int):
            counts[direction] = info["train"]
    if not counts:
        raise NmtError(f"{path}: its 'directions' table has no 'train' counts")
    return counts


def average(values) -> float | None:
    """Mean of the values, or None when any is missing (an average over n/a is n/a)."""
    values = list(values)
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)
