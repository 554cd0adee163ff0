"""The in-memory model of a WMT test set, shared by its three formats (``nmt.wmt.formats``).

``TestSet`` -> ``Document`` -> paragraphs -> ``Unit``. A *unit* is what a system
translates as one line: a ``<seg>`` in XML, a line of the txt format, a line of a
JSONL document's ``src_text``.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from nmt.errors import NmtError

FORMATS = ("xml", "txt", "jsonl")
CANARY_PREFIX = "CANARY GUID"


@dataclass


class Unit:
    """One translatable line: an XML segment, a txt line or a line of a JSONL document."""

    doc: "Document" = field(repr=False, compare=False)
    seg: str = ""  # XML seg id; for txt and JSONL the line number within the document (1-based)
    text: str = ""
    position: int = 0  # 0-based index in the test set's unit list

    @property
    def canary(self) -> bool:
        return self.doc.canary or self.text.startswith(CANARY_PREFIX)

    @property
    def label(self) -> str:
        kind = "segment" if self.doc.testset.format == "xml" else "line"
        where = f"document {self.doc.id!r}, {kind} {self.seg}"
        if self.doc.testset.format == "txt":
            where += f" (line {self.position + 1} of {self.doc.testset.path.name})"
        return where


@dataclass


class Document:
    testset: "TestSet" = field(repr=False, compare=False)
    id: str = ""
    src_lang: str | None = None
    tgt_lang: str | None = None
    domain: str | None = None
    collection: str | None = None
    paragraphs: list = field(default_factory=list, repr=False)  # list of lists of Unit
    element: ET.Element | None = field(default=None, repr=False)  # the XML <doc> (mirrored when writing XML)
    record: dict | None = field(default=None, repr=False)  # the JSONL object (its other fields are kept)

    @property
    def key(self) -> tuple:
        return (self.collection, self.id, self.tgt_lang if self.testset.format == "jsonl" else None)

    @property
    def canary(self) -> bool:
        return self.id == "canary" or self.domain == "canary"

    @property
    def units(self) -> list[Unit]:
        return [unit for paragraph in self.paragraphs for unit in paragraph]


@dataclass


class TestSet:
    __test__ = False  # not a pytest test class

    path: Path
    format: str
    name: str
    docs: list = field(default_factory=list, repr=False)
    root: ET.Element | None = field(default=None, repr=False)  # parsed XML (format xml)

    @property
    def units(self) -> list[Unit]:
        return [unit for doc in self.docs for unit in doc.units]

    def pairs(self) -> list[tuple[str | None, str | None]]:
        seen = {}
        for doc in self.docs:
            seen.setdefault((doc.src_lang, doc.tgt_lang), None)
        return list(seen)

    def set_languages(self, src: str | None = None, tgt: str | None = None) -> None:
        """Fill in (or check) the languages given on the command line."""
        for doc in self.docs:
            for attr, given in (("src_lang", src), ("tgt_lang", tgt)):
                have = getattr(doc, attr)
                if given and have and have != given and self.format == "jsonl":
                    raise NmtError(f"{self.path}: document {doc.id!r} has {attr} {have!r}, not {given!r} as given")
                if given:
                    setattr(doc, attr, given)

    def _numbered(self) -> "TestSet":
        for i, unit in enumerate(self.units):
            unit.position = i
        return self


def detect_format(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        return "xml"
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    return "txt"


def pair_from_name(path: Path) -> tuple[str | None, str | None]:
    match = re.search(r"(?<![A-Za-z])([a-z]{2,3}(?:_[A-Za-z]{2,4})?)-([a-z]{2,3}(?:_[A-Za-z]{2,4})?)(?![A-Za-z])",
                      path.name)
    return (match.group(1), match.group(2)) if match else (None, None)
