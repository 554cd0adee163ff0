"""Romanization: text of a language whose script a model has not seen, written in Latin letters.

A model whose vocabulary never saw a script (Bengali, Hangul, ...) receives text in it as
unknown or byte-level pieces. Written in Latin letters, the same text reuses the pieces
and much of what the model learnt from other languages. ``nmt prepare --romanize LANG``
romanizes a language's side of the training data; the prepared-data manifest and the
model bundle record it, and ``Translator`` then romanizes input in that language itself,
so users type the native script.

What comes from the library: every rule. ``uroman`` (1.3.x, the Python port of Hermjakob,
May and Knight, "Out-of-the-box universal romanization tool uroman", ACL 2018 demos)
romanizes any Unicode script, with language-specific rules chosen by an ISO 639-3 code.
What is nmt's own: which languages are romanized (``Romanization``), the code uroman gets
(the language table's ISO 639-3 macrolanguage), and whitespace afterwards (runs collapsed,
ends stripped: uroman leaves two spaces where it drops a character, and its word cache
moves spaces around punctuation).

The contract: ``romanize_lines`` returns one line per input line, in order. An empty line
stays empty; a line of characters uroman drops (a lone zero-width non-joiner) becomes
empty. Romanized text romanizes to itself (checked on FLORES-200 lines of 15 languages),
so text that is already romanized may be passed again. Romanized output cannot be turned
back into the native script: a language is romanized as a target only for analysis.
``uroman-fast`` (a Rust port) is 8x faster but reads some Chinese characters as numerals
(6% of Chinese lines differ, benchmarks/RESULTS.md), so nmt uses ``uroman`` itself.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Sequence

from nmt import langs
from nmt.errors import NmtError

log = logging.getLogger("nmt.romanize")

PACKAGE = "uroman"
REQUIREMENT = ">=1.3,<1.4"  # the release series setup.cfg pins; another one may romanize differently
CACHE_SIZE = 65_536  # uroman's word cache (entries), as its own command line uses it

_lock = threading.Lock()
_engine = None


@dataclass(frozen=True)
class Romanization:
    """Which languages are romanized, and whether also as targets (analysis only)."""

    languages: tuple = ()  # ML50 codes
    target: bool = False  # romanize them where they are the target too: their output stays romanized
    romanizer: str = ""  # "uroman 1.3.1.1": what romanized the training data (recorded, compared at use)

    def __bool__(self) -> bool:
        return bool(self.languages)

    @classmethod
    def parse(cls, text: str | None, target: bool = False) -> "Romanization":
        """``"bn_IN,ko_KR"`` (the option's value) -> a checked ``Romanization``."""
        codes = tuple(dict.fromkeys(x.strip() for x in (text or "").split(",") if x.strip()))
        made = cls(codes, target)
        made.check()
        return made

    def check(self) -> None:
        langs.check_codes(self.languages)
        if langs.ENGLISH in self.languages:
            raise NmtError(f"--romanize {langs.ENGLISH}: English is already in Latin script; romanize the "
                           "languages whose script the model has not seen (e.g. bn_IN,ko_KR)")
        if self.target and not self.languages:
            raise NmtError("--romanize-target needs --romanize LANG[,LANG]: the languages to romanize")
        if self.languages:
            version()  # installed?

    def source(self, lang: str) -> bool:
        """Whether text in ``lang`` is romanized where it is the source."""
        return lang in self.languages

    def output(self, lang: str) -> bool:
        """Whether a translation into ``lang`` comes out romanized."""
        return self.target and lang in self.languages

    def check_directions(self, directions) -> None:
        """Refuse a romanized language as a target unless ``target`` (its output could not be read back)."""
        if self.target:
            return
        into = sorted({f"{s}-{t}" for s, t in directions if t in self.languages})
        if into:
            raise NmtError(f"--romanize: {', '.join(into)} would teach the model to write romanized "
                           f"{into[0].split('-')[1]}, which cannot be turned back into its script; prepare "
                           "only the directions from it (--pairs to-en, or a list), or pass --romanize-target "
                           "to accept romanized output (for analysis)")

    def record(self) -> dict:
        """What the prepared-data manifest and the bundle store."""
        return {"languages": list(self.languages), "target": self.target,
                "romanizer": self.romanizer or f"{PACKAGE} {version()}"}

    @classmethod
    def from_record(cls, record, where: str) -> "Romanization":
        """A stored record, checked (``where`` names the file in the error)."""
        if record is None:
            return cls()
        try:
            codes = tuple(str(x) for x in record["languages"])
            made = cls(codes, bool(record.get("target", False)), str(record.get("romanizer", "")))
        except (KeyError, TypeError, AttributeError):
            raise NmtError(f"{where}: the romanization record {record!r} is malformed (it needs 'languages'); "
                           "the file is corrupted") from None
        try:
            langs.check_codes(made.languages)
        except NmtError as exc:
            raise NmtError(f"{where}: romanization: {exc}") from None
        return made

    def warn_if_other_romanizer(self, what: str) -> None:
        """A warning when the installed uroman is not the one that romanized the training data."""
        if self.romanizer and self.romanizer != f"{PACKAGE} {version()}":
            log.warning("%s was romanized with %s, this nmt has %s %s: a few lines may romanize differently; "
                        "install the same release", what, self.romanizer, PACKAGE, version())


def version() -> str:
    """The installed uroman's version, or a one-line error saying how to install it."""
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise NmtError(f"romanization needs the {PACKAGE} package: pip install '{PACKAGE}{REQUIREMENT}'") from None


def load():
    """Load uroman's tables now (~2 s, ~60 MB, once per process): before forking workers, which inherit
    them, and outside a timed region."""
    _uroman()


def _uroman():
    """The process's uroman instance (its tables take ~2 s and ~60 MB to load: once per process)."""
    global _engine
    with _lock:
        if _engine is None:
            version()  # a clear error when it is missing
            import uroman

            _engine = uroman.Uroman(cache_size=CACHE_SIZE)
        return _engine


def lcode(lang: str) -> str:
    """The ISO 639-3 code uroman's language-specific rules are keyed by (ara, ben, fas, zho, ...)."""
    return langs.get(lang).iso3


def romanize(text: str, lang: str) -> str:
    """One line (already normalised) in Latin letters, whitespace runs collapsed."""
    if not text:
        return text
    return " ".join(_uroman().romanize_string(text, lcode=lcode(lang)).split())


def romanize_lines(lines: Sequence[str], lang: str) -> list[str]:
    """Every line of ``lines`` romanized as ``lang``: one output line per input line."""
    code = lcode(lang)
    engine = _uroman() if any(lines) else None
    return [" ".join(engine.romanize_string(line, lcode=code).split()) if line else line for line in lines]
