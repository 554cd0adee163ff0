"""Text normalisation and the bitext filters of ``nmt prepare``.

Normalisation (applied to every line, training and evaluation alike):

1. control characters (Unicode category Cc: NUL, escape, ...) are removed;
   tabs, carriage returns and other line/paragraph separators become spaces;
   a byte-order mark (U+FEFF) is removed;
2. Unicode NFC (configurable: NFC, NFKC or none);
3. every run of whitespace (any Unicode space, incl. no-break and ideographic
   spaces) becomes one ASCII space; leading and trailing spaces are stripped.

Zero-width joiners and non-joiners are kept: Indic and Persian spelling needs them.

Filters for training pairs (each counted in the prepare manifest):

* ``empty``: either side is empty after normalisation;
* ``too_short`` / ``too_long``: a side's length is outside [min_len, max_len];
* ``ratio``: the longer side is more than ``max_ratio`` times the shorter one;
* ``duplicate``: the exact same (source, target) pair was already kept;
* ``eval_overlap``: the source or the target appears verbatim (after
  normalisation) in any validation or test set, as the ML50 scripts do;
* ``lid`` (only with ``lid=True``): the language identifier of ``nmt.data.lid``
  is confident (probability >= ``lid_threshold``) that the source or the target is
  in another language than its label. A side whose language the detector does not
  know is not judged.

Length is counted in words for languages that separate words with spaces; for
those that do not (Chinese, Japanese, Thai, ...) it is the number of characters
(spaces excluded) divided by the language's characters-per-word figure from the
language table, so that one length limit and one ratio threshold work across scripts.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from nmt import langs
from nmt.data import DEFAULT_NORMALIZATION, NORMALIZATION_FORMS
from nmt.data import lid as language_id
from nmt.errors import NmtError

_CONTROL_TO_SPACE = {"\t", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"}
_WHITESPACE = re.compile(r"\s+")

# A translation table that deletes control characters (category Cc) and maps
# the ones that separate text to spaces. Built once for all of Unicode's Cc.
_CC_TABLE = {
    cp: (" " if chr(cp) in _CONTROL_TO_SPACE else None)
    for cp in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0))
}
_CC_TABLE[0xFEFF] = None  # byte-order mark
_CC_TABLE[0x2028] = " "  # line separator
_CC_TABLE[0x2029] = " "  # paragraph separator


def normalize(text: str, form: str = DEFAULT_NORMALIZATION) -> str:
    text = text.translate(_CC_TABLE)
    if form != "none":
        text = unicodedata.normalize(form, text)
    if text.isascii():
        return " ".join(text.split())
    return _WHITESPACE.sub(" ", text).strip()


def length(text: str, lang: langs.Language) -> int:
    """Length in words, or word equivalents (characters / chars_per_word) for unspaced scripts."""
    return lang.length(text)


@dataclass
class FilterConfig:
    normalization: str = DEFAULT_NORMALIZATION
    min_len: int = 1
    max_len: int = 250
    max_ratio: float = 3.0
    lid: bool = False  # drop pairs with a side confidently in another language (opt-in)
    lid_threshold: float = language_id.DEFAULT_THRESHOLD

    def check(self) -> None:
        if self.normalization not in NORMALIZATION_FORMS:
            raise NmtError(
                f"normalization must be one of {', '.join(NORMALIZATION_FORMS)}, "
                f"not {self.normalization!r}"
            )
        if self.min_len < 0 or self.max_len < max(1, self.min_len):
            raise NmtError(f"need 0 <= min_len <= max_len, got {self.min_len} and {self.max_len}")
        if not self.max_ratio >= 1:  # (NaN too)
            raise NmtError(f"max_ratio must be >= 1, got {self.max_ratio}")
        if not 0 < self.lid_threshold <= 1:
            raise NmtError(f"lid_threshold must be in (0, 1], got {self.lid_threshold}")


FILTER_NAMES = ("empty", "too_short", "too_long", "ratio", "duplicate", "eval_overlap")


@dataclass
class FilterCounts:
    read: int = 0
    bad_utf8: int = 0
    kept: int = 0
    dropped: dict = field(default_factory=lambda: {name: 0 for name in FILTER_NAMES})

    def add(self, other: "FilterCounts") -> None:
        self.read += other.read
        self.bad_utf8 += other.bad_utf8
        self.kept += other.kept
        for name, n in other.dropped.items():
            self.dropped[name] = self.dropped.get(name, 0) + n

    def as_dict(self) -> dict:
        return {"read": self.read, "bad_utf8": self.bad_utf8, "dropped": dict(self.dropped),
                "kept": self.kept}


def pair_filter_reason(src: str, tgt: str, src_lang: langs.Language, tgt_lang: langs.Language,
                       cfg: FilterConfig) -> str | None:
    """Why a normalised pair must be dropped by the length filters, or None to keep it."""
    if not src or not tgt:
        return "empty"
    n_src = length(src, src_lang)
    n_tgt = length(tgt, tgt_lang)
    if n_src < cfg.min_len or n_tgt < cfg.min_len:
        return "too_short"
    if n_src > cfg.max_len or n_tgt > cfg.max_len:
        return "too_long"
    if max(n_src, n_tgt) > cfg.max_ratio * max(1, min(n_src, n_tgt)):
        return "ratio"
    return None


def clean_pair(raw_src: str, raw_tgt: str, src_lang: langs.Language, tgt_lang: langs.Language,
               cfg: FilterConfig) -> tuple[str, str, str | None]:
    """Normalise one line pair; returns ``(src, tgt, reason)`` with the filter that drops it, or None."""
    src = normalize(raw_src, cfg.normalization)
    tgt = normalize(raw_tgt, cfg.normalization)
    reason = pair_filter_reason(src, tgt, src_lang, tgt_lang, cfg)
    if reason is None and cfg.lid and any(
            language_id.supports(lang.code) and language_id.off_target(text, lang.code, cfg.lid_threshold)
            for text, lang in ((src, src_lang), (tgt, tgt_lang))):
        reason = "lid"
    return src, tgt, reason


def clean_pairs(src_lines, tgt_lines, src_code: str, tgt_code: str, cfg: FilterConfig, counts: FilterCounts):
    """Normalise and filter parallel lines, one pair at a time; yields kept ``(src, tgt)`` pairs.

    ``None`` lines (invalid UTF-8 skipped by the reader) drop their pair and are
    counted as ``bad_utf8``. Duplicates and evaluation overlap need the whole
    corpus: the clean stage removes them afterwards, on hashed keys
    (:mod:`nmt.data.dedup`), and counts them in the same ``counts``.
    """
    src_lang, tgt_lang = langs.get(src_code), langs.get(tgt_code)
    if cfg.lid:
        counts.dropped.setdefault("lid", 0)
    for raw_src, raw_tgt in zip(src_lines, tgt_lines):
        counts.read += 1
        if raw_src is None or raw_tgt is None:
            counts.bad_utf8 += 1
            continue
        src, tgt, reason = clean_pair(raw_src, raw_tgt, src_lang, tgt_lang, cfg)
        if reason is not None:
            counts.dropped[reason] += 1
            continue
        yield src, tgt


def lid_summary(src_code: str, tgt_code: str, cfg: FilterConfig) -> dict:
    """What the language-ID filter did for a pair, for the prepare manifest."""
    unknown = [code for code in (src_code, tgt_code) if not language_id.supports(code)]
    return {"detector": language_id.DETECTOR_NAME, "threshold": cfg.lid_threshold,
            "not_judged": unknown, **({"note": f"the detector does not know {', '.join(unknown)}: "
                                               "those sides were passed through"} if unknown else {})}
