"""The one text normalisation of nmt: training data, translation inputs and evaluation alike.

1. control characters (Unicode category Cc: NUL, escape, ...) are removed;
   tabs, carriage returns and other line/paragraph separators become spaces;
   a byte-order mark (U+FEFF) is removed;
2. Unicode NFC (configurable: NFC, NFKC or none);
3. every run of whitespace (any Unicode space, incl. no-break and ideographic
   spaces) becomes one ASCII space; leading and trailing spaces are stripped.

Zero-width joiners and non-joiners are kept: Indic and Persian spelling needs them.
"""
from __future__ import annotations

import re
import unicodedata

# The Unicode normalizations nmt prepare offers, and the default: what nmt prepare applies unless told
# otherwise, and what a prepared-data manifest or a bundle that does not record one is taken to use.
NORMALIZATION_FORMS = ("NFC", "NFKC", "none")
DEFAULT_NORMALIZATION = "NFC"

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
