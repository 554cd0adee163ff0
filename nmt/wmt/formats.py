"""WMT test-set formats: read them, write hypotheses back, validate submissions.

Three formats (``xml_format``, ``txt_format``, ``jsonl_format``), one in-memory model
(``nmt.wmt.testset``: ``TestSet`` -> ``Document`` -> paragraphs -> ``Unit``). A *unit*
is what a system translates as one line: a ``<seg>`` in XML, a line of the txt format,
a line of a JSONL document's ``src_text``. This module reads and writes any of them.

XML (WMT21-WMT24; ``wmt-schema.rnc`` from wmt-conference/wmt-format-tools)::

    <dataset id="...">                      collections first, then documents
      <collection id="...">                 optional grouping (WMT22+)
        <doc id="..." origlang="en" [domain=".."] [testsuite=".."]>
          <src lang="en"> <p> <seg id="1">text</seg> ... </p> ... </src>
          <ref lang="de" translator="A"> (same p/seg layout) </ref>      zero or more
          <hyp lang="de" system="NAME"> (same p/seg layout) </hyp>       zero or more
          <supplemental type="..."> ... </supplemental>                  zero or more

  Seg ids are positive integers, unique within each src/ref/hyp of a document.
  A submission adds one ``<hyp system=... lang=...>`` per document that mirrors
  the ``<src>`` exactly (same paragraphs, same seg ids); everything else in the
  file is kept as it was. Files are parsed with defusedxml's parser, DTDs
  forbidden: a DTD or an entity declaration is refused (no external entities,
  no "billion laughs"). ``sample-hyp.xml`` of wmt-format-tools writes the hyp
  language as ``language=``; when reading that spelling is accepted, what nmt
  writes always uses the schema's ``lang=`` (also on hyps it copies).

txt (WMT24 general, wmt-conference/wmt24-news-systems): ``sources/en-de.txt``
  has one paragraph a line; ``documents/en-de.docs`` has ``domain<TAB>doc id``
  for each line (documents are contiguous). Hypotheses are one line per source
  line. The language pair comes from the file name.

JSONL (WMT25 on): one JSON object a line, one document each, with ``doc_id``,
  ``src_lang``, ``tgt_lang``, ``domain``, ``src_text`` (the whole document); a
  submission adds the translated document as ``hypothesis``. nmt translates a
  document line by line (lines split on ``\\n``; empty lines stay empty), so a
  hypothesis has as many lines as its ``src_text``. Other fields are kept.

Canary lines. WMT24's txt sources start with a canary line (``CANARY GUID
<uuid>``, document ``canary`` of domain ``canary``) that marks the data so it
can be found in web crawls; the organisers' references carry it unchanged as
line 1, so a submission must too. nmt never translates canary units: every unit
of a document whose id or domain is ``canary``, and every unit whose text starts
with ``CANARY GUID``, is copied verbatim into the hypothesis, and validation
refuses a submission whose canary differs from the source.

Line breaks. A unit is one line, so a hypothesis holding any character that
``str.splitlines()`` breaks at (``nmt.fileio.LINE_BREAKS``: \\n, \\r,
\\v, \\f, U+001C-U+001E, U+0085, U+2028, U+2029) is refused, in every format,
with a one-line error naming its document and segment (silently replacing it
would change the translation). JSONL output escapes U+0085, U+2028 and U+2029
(``\\u2028``) so every object stays on one line. A ``.docs`` file (the txt
format's, and ``nmt unwrap``'s) refuses a document id or domain holding a line
break or a tab, naming the document; ``nmt unwrap`` replaces line breaks inside
segment text by spaces and counts them.

JSONL input that Python's ``json`` cannot take (nesting too deep, an integer of
more than 4300 digits, a lone surrogate such as ``"\\ud800"``) is a one-line
error naming the line.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from nmt.errors import NmtError
from nmt.fileio import line_break_in
from nmt.wmt.jsonl_format import read_jsonl, read_jsonl_hypotheses, render_jsonl
from nmt.wmt.testset import CANARY_PREFIX, FORMATS, Document, TestSet, Unit, detect_format
from nmt.wmt.txt_format import (docs_line, find_docs_file, read_txt, read_txt_hypotheses, render_docs,
                                render_source_txt, render_txt)
from nmt.wmt.unwrap import unwrap
from nmt.wmt.xml_format import (SCHEMA, XML_BAD_CHARS, check_structure, parse_xml, read_xml, read_xml_hypotheses,
                                render_xml, seg_number, xml_lang)

__all__ = ["CANARY_PREFIX", "FORMATS", "SCHEMA", "Document", "TestSet", "Unit", "check_hypotheses", "check_output",
           "check_structure", "detect_format", "docs_line", "find_docs_file", "parse_xml", "read_hypotheses",
           "read_jsonl", "read_test_set", "read_txt", "read_xml", "render", "render_docs", "render_jsonl",
           "render_source_txt", "render_txt", "render_xml", "seg_number", "unwrap", "xml_lang"]


def read_test_set(path, docs: str | None = None, src_lang: str | None = None,
                  tgt_lang: str | None = None) -> TestSet:
    """Read a WMT test set in any of the three formats (chosen by the file suffix)."""
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"test set {path} does not exist" if not path.exists() else f"{path} is not a file")
    fmt = detect_format(path)
    if docs and fmt != "txt":
        raise NmtError(f"--docs is for the txt format; {path} is {fmt}")
    testset = {"xml": read_xml, "jsonl": read_jsonl, "txt": lambda p: read_txt(p, docs)}[fmt](path)
    testset.set_languages(src_lang, tgt_lang)
    if not testset.units:
        raise NmtError(f"test set {path} has no segments")
    return testset


def read_hypotheses(path, testset: TestSet, system: str | None = None) -> list[str]:
    """Existing hypotheses for ``testset``, one per unit in order.

    Plain text: one line per unit. XML: the ``<hyp>`` of each document (the only
    system, or the one named ``system``), matched by document and seg id. JSONL:
    the ``hypothesis`` of each document, matched by ``doc_id`` (and ``tgt_lang``).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "txt":
        return read_txt_hypotheses(path, testset)
    if fmt == "xml":
        return read_xml_hypotheses(path, testset, system)
    return read_jsonl_hypotheses(path, testset)


def check_hypotheses(testset: TestSet, hyps: list, allow_empty: bool = False, reasons: dict | None = None
                     ) -> list[str]:
    """Every unit has exactly one usable hypothesis. Returns warnings; raises NmtError on the first problem.

    ``reasons`` (unit position -> text) explains why a hypothesis may be empty (the translator's warning).
    """
    reasons = reasons or {}
    units = testset.units
    if len(hyps) != len(units):
        raise NmtError(f"{len(hyps)} hypotheses for the {len(units)} segments of {testset.path.name}")
    for doc in testset.docs:
        if not doc.tgt_lang:
            raise NmtError(f"{testset.path.name}: document {doc.id!r} has no target language; pass --tgt-lang")
    warnings = []
    for unit, hyp in zip(units, hyps):
        if not isinstance(hyp, str):
            raise NmtError(f"{unit.label}: no hypothesis")
        line_break = line_break_in(hyp)
        if line_break:
            raise NmtError(f"{unit.label}: the hypothesis contains a line break, {line_break}; one line per "
                           "segment: replace it (e.g. by a space)")
        bad = XML_BAD_CHARS.search(hyp)
        if bad:
            raise NmtError(f"{unit.label}: the hypothesis contains U+{ord(bad.group()):04X}, a character WMT files "
                           "cannot hold; remove it")
        if unit.canary and hyp != unit.text:
            raise NmtError(f"{unit.label} is the canary line; it must be copied unchanged, not translated")
        if unit.text.strip() and not hyp.strip():
            why = f" ({reasons[unit.position]})" if unit.position in reasons else ""
            if not allow_empty:
                raise NmtError(f"{unit.label}: empty hypothesis for a non-empty source{why}; fix it, or pass "
                               "--allow-empty to submit it anyway")
            warnings.append(f"{unit.label}: empty hypothesis for a non-empty source{why}")
    return warnings


def check_output(data: bytes, fmt: str, testset: TestSet, hyps: list, system: str) -> None:
    """Read a rendered submission back and check it holds exactly ``hyps`` in the source's structure."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{testset.path.stem}.{fmt}"
        path.write_bytes(data)
        if fmt == "xml":
            root = parse_xml(path)
            check_structure(root, f"output for {testset.path.name}")  # strict: lang= on <hyp>
        got = read_hypotheses(path, testset, system)
    if got != hyps:
        index = next(i for i, (a, b) in enumerate(zip(got, hyps)) if a != b)
        raise NmtError(f"internal check failed: the written {fmt} differs at {testset.units[index].label}")


def render(fmt: str, testset: TestSet, hyps: list, system: str) -> bytes:
    if fmt == "xml":
        return render_xml(testset, hyps, system)
    if fmt == "jsonl":
        return render_jsonl(testset, hyps)
    if fmt == "txt":
        return render_txt(hyps)
    raise NmtError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
