"""WMT test-set formats: read them, write hypotheses back, validate submissions.

Three formats, one in-memory model (``TestSet`` -> ``Document`` -> paragraphs ->
``Unit``). A *unit* is what a system translates as one line: a ``<seg>`` in XML,
a line of the txt format, a line of a JSONL document's ``src_text``.

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
  file is kept as it was. Files are parsed with a hardened parser: a DTD or an
  entity declaration is refused before parsing (no external entities, no
  "billion laughs"). ``sample-hyp.xml`` of wmt-format-tools writes the hyp
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
``str.splitlines()`` breaks at (``nmt.translate.stream.LINE_BREAKS``: \\n, \\r,
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

import copy
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from nmt.errors import NmtError
from nmt.fileio import iter_lines_bytes, read_lines
from nmt.translate.stream import json_line, line_break_in

FORMATS = ("xml", "txt", "jsonl")
CANARY_PREFIX = "CANARY GUID"
SCHEMA = "wmt-schema.rnc"

# ---------------------------------------------------------------------------
# the in-memory model


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


# ---------------------------------------------------------------------------
# hardened XML parsing and the schema's structure

_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ENCODING = re.compile(r"""\A<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']""")
_LANG = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")
_POSITIVE = re.compile(r"\s*\+?[0-9]+\s*")
_XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def parse_xml(path) -> ET.Element:
    """Parse a UTF-8 XML file, refusing DTDs and entity declarations before the parser sees them."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NmtError(f"missing file {path}") from None
    except IsADirectoryError:
        raise NmtError(f"{path} is a directory, expected an XML file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NmtError(f"{path}: not valid UTF-8 (byte {exc.start}); WMT XML files are UTF-8") from None
    declared = _ENCODING.match(text)
    if declared and declared.group(1).lower() not in ("utf-8", "utf8"):
        raise NmtError(f"{path}: declares encoding {declared.group(1)!r}; WMT XML files must be UTF-8")
    if _DECLARATION.search(text):
        raise NmtError(f"{path}: refusing XML with a DTD or entity declaration (<!DOCTYPE/<!ENTITY): it could "
                       "expand entities or read external files; WMT files never need one, remove it")
    parser = ET.XMLParser()
    try:
        parser.feed(text)
        return parser.close()
    except ET.ParseError as exc:
        raise NmtError(f"{path}: not well-formed XML ({exc})") from None


def _fail(name, doc, message) -> NmtError:
    where = f"document {doc!r}: " if doc is not None else ""
    return NmtError(f"{name}: {where}{message} (WMT XML, see {SCHEMA})")


def _check_attrs(el, required, optional, name, doc, aliases=()):
    for attr in el.attrib:
        if attr not in required and attr not in optional and attr not in aliases:
            raise _fail(name, doc, f"<{el.tag}> has an attribute {attr!r} the schema does not allow")
    for attr in required:
        if attr not in el.attrib and not any(a in el.attrib for a in aliases):
            raise _fail(name, doc, f"<{el.tag}> lacks the required attribute {attr!r}")


def _check_no_text(el, name, doc):
    """Only whitespace between elements (the schema declares text in <seg> only)."""
    if el.text and el.text.strip():
        raise _fail(name, doc, f"text {el.text.strip()[:30]!r} directly inside <{el.tag}>")
    for child in el:
        if child.tail and child.tail.strip():
            raise _fail(name, doc, f"text {child.tail.strip()[:30]!r} after <{child.tag}> inside <{el.tag}>")


def _check_lang(el, attr, name, doc):
    value = el.get(attr)
    if value is not None and not _LANG.fullmatch(value):
        raise _fail(name, doc, f"<{el.tag} {attr}={value!r}> is not a language tag like 'en' or 'zh-Hant'")


def seg_number(value: str | None) -> int | None:
    """The value of an xsd:positiveInteger, or None when it is not one."""
    if value is None or not _POSITIVE.fullmatch(value):
        return None
    number = int(value)
    return number if number > 0 else None


_SECTIONS = {"src": 0, "ref": 1, "hyp": 2, "supplemental": 3}


def check_structure(root: ET.Element, name: str, hyp_language_alias: bool = False) -> None:
    """Check element names, nesting, order, required attributes and seg ids against wmt-schema.rnc.

    Raises NmtError naming the first offending document (and segment).
    """
    if root.tag != "dataset":
        raise _fail(name, None, f"the root element is <{root.tag}>, expected <dataset>")
    _check_attrs(root, ("id",), (), name, None)
    _check_no_text(root, name, None)
    seen_docs, docs_started = set(), False
    for child in root:
        if child.tag == "collection":
            if docs_started:
                raise _fail(name, None, f"<collection id={child.get('id')!r}> after a <doc>: collections come first")
            _check_attrs(child, ("id",), (), name, None)
            _check_no_text(child, name, None)
            if not len(child):
                raise _fail(name, None, f"<collection id={child.get('id')!r}> has no <doc>")
            for doc in child:
                if doc.tag != "doc":
                    raise _fail(name, None, f"<{doc.tag}> inside <collection>, expected <doc>")
                _check_doc(doc, name, child.get("id"), seen_docs, hyp_language_alias)
        elif child.tag == "doc":
            docs_started = True
            _check_doc(child, name, None, seen_docs, hyp_language_alias)
        else:
            raise _fail(name, None, f"<{child.tag}> inside <dataset>, expected <collection> or <doc>")


def _check_doc(doc, name, collection, seen, hyp_language_alias):
    doc_id = doc.get("id")
    _check_attrs(doc, ("id", "origlang"), ("testsuite", "domain"), name, doc_id)
    _check_lang(doc, "origlang", name, doc_id)
    if (collection, doc_id) in seen:
        raise _fail(name, doc_id, "duplicate document id")
    seen.add((collection, doc_id))
    _check_no_text(doc, name, doc_id)
    rank, sources = 0, 0
    for section in doc:
        if section.tag not in _SECTIONS:
            raise _fail(name, doc_id, f"<{section.tag}> inside <doc>, expected src, ref, hyp or supplemental")
        if _SECTIONS[section.tag] < rank:
            raise _fail(name, doc_id, f"<{section.tag}> after <{_order_name(rank)}>: the order is src, ref*, "
                                      "hyp*, supplemental*")
        rank = _SECTIONS[section.tag]
        sources += section.tag == "src"
        if section.tag in ("src", "ref"):
            _check_attrs(section, ("lang",), ("translator",), name, doc_id)
        elif section.tag == "hyp":
            aliases = ("language",) if hyp_language_alias and "lang" not in section.attrib else ()
            _check_attrs(section, ("lang", "system"), (), name, doc_id, aliases=aliases)
            if aliases and "system" not in section.attrib:
                raise _fail(name, doc_id, "<hyp> lacks the required attribute 'system'")
        else:
            _check_attrs(section, ("type",), (), name, doc_id)
        _check_lang(section, "lang", name, doc_id)
        _check_paragraphs(section, name, doc_id)
    if sources != 1 or doc[0].tag != "src":
        raise _fail(name, doc_id, f"has {sources} <src> elements, expected exactly one, first")


def _order_name(rank):
    return next(tag for tag, r in _SECTIONS.items() if r == rank)


def _check_paragraphs(section, name, doc_id):
    _check_no_text(section, name, doc_id)
    if not len(section):
        raise _fail(name, doc_id, f"<{section.tag}> has no <p>")
    ids = set()
    for p in section:
        if p.tag != "p":
            raise _fail(name, doc_id, f"<{p.tag}> inside <{section.tag}>, expected <p>")
        if p.attrib:
            raise _fail(name, doc_id, f"<p> has attributes {sorted(p.attrib)}; the schema allows none")
        _check_no_text(p, name, doc_id)
        for seg in p:
            if seg.tag != "seg":
                raise _fail(name, doc_id, f"<{seg.tag}> inside <p>, expected <seg>")
            _check_attrs(seg, ("id",), ("type",), name, doc_id)
            number = seg_number(seg.get("id"))
            if number is None:
                raise _fail(name, doc_id, f"<{section.tag}> segment id {seg.get('id')!r} is not a positive integer")
            if number in ids:
                raise _fail(name, doc_id, f"<{section.tag}> has segment id {number} twice")
            ids.add(number)
            if len(seg):
                raise _fail(name, doc_id, f"segment {number} contains <{seg[0].tag}>; segments hold text only")


# ---------------------------------------------------------------------------
# readers


def detect_format(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        return "xml"
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    return "txt"


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


def _pair_from_name(path: Path) -> tuple[str | None, str | None]:
    match = re.search(r"(?<![A-Za-z])([a-z]{2,3}(?:_[A-Za-z]{2,4})?)-([a-z]{2,3}(?:_[A-Za-z]{2,4})?)(?![A-Za-z])",
                      path.name)
    return (match.group(1), match.group(2)) if match else (None, None)


def read_xml(path) -> TestSet:
    path = Path(path)
    root = parse_xml(path)
    check_structure(root, str(path), hyp_language_alias=True)
    testset = TestSet(path, "xml", root.get("id") or path.stem, root=root)
    # the target language: the references' (or existing hypotheses') if they agree, else the file name's
    targets = {ref.get("lang") for ref in root.iter("ref")} or \
        {hyp.get("lang") or hyp.get("language") for hyp in root.iter("hyp")}
    name_src, name_tgt = _pair_from_name(path)
    for collection, doc_el in _iter_docs(root):
        src_el = doc_el.find("src")
        src_lang = src_el.get("lang")
        tgt = next(iter(targets)) if len(targets) == 1 else (name_tgt if name_src == src_lang else None)
        doc = Document(testset, doc_el.get("id"), src_lang, tgt, doc_el.get("domain"), collection, element=doc_el)
        for p in src_el:
            doc.paragraphs.append([Unit(doc, str(seg_number(seg.get("id"))), seg.text or "") for seg in p])
        testset.docs.append(doc)
    return testset._numbered()


def _iter_docs(root):
    for child in root:
        if child.tag == "collection":
            for doc in child:
                yield child.get("id"), doc
        else:
            yield None, child


def find_docs_file(path: Path) -> Path:
    """``x/en-de.docs`` next to the source, or the WMT24 layout ``../documents/en-de.docs``."""
    for candidate in (path.with_suffix(".docs"), path.parent.parent / "documents" / f"{path.stem}.docs"):
        if candidate.is_file():
            return candidate
    raise NmtError(f"no document file for {path} (looked for {path.with_suffix('.docs')} and "
                   f"{path.parent.parent / 'documents' / (path.stem + '.docs')}); pass --docs FILE")


def read_txt(path, docs=None) -> TestSet:
    path = Path(path)
    docs_path = Path(docs) if docs else find_docs_file(path)
    lines, _ = read_lines(path)
    doc_lines, _ = read_lines(docs_path)
    if len(doc_lines) != len(lines):
        raise NmtError(f"{docs_path} has {len(doc_lines)} lines but {path} has {len(lines)}; "
                       "the document file needs one 'domain<TAB>doc id' line per source line")
    src, tgt = _pair_from_name(path)
    testset = TestSet(path, "txt", path.stem)
    finished: set[str] = set()
    doc = None
    for number, (text, info) in enumerate(zip(lines, doc_lines), start=1):
        fields = info.split("\t")
        if len(fields) != 2 or not fields[1]:
            raise NmtError(f"{docs_path}: line {number} is {info!r}, expected 'domain<TAB>document id'")
        domain, doc_id = fields
        if doc is None or doc.id != doc_id:
            if doc_id in finished:
                raise NmtError(f"{docs_path}: line {number}: document {doc_id!r} appears again after other "
                               "documents; a document's lines must be contiguous")
            if doc is not None:
                finished.add(doc.id)
            doc = Document(testset, doc_id, src, tgt, domain or None)
            testset.docs.append(doc)
        doc.paragraphs.append([Unit(doc, str(len(doc.paragraphs) + 1), text)])
    return testset._numbered()


def _json_lines(path):
    for number, raw in enumerate(iter_lines_bytes(path), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise NmtError(f"{path}: line {number} is not valid UTF-8 (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise NmtError(f"{path}: line {number} is not valid JSON ({exc.msg}); expected one object a line") from None
        except RecursionError:
            raise NmtError(f"{path}: line {number}: JSON nested too deeply for Python's json module; expected one "
                           "flat object a line") from None
        except ValueError as exc:  # an integer of more than sys.get_int_max_str_digits() digits
            raise NmtError(f"{path}: line {number}: {str(exc).split(':')[0]} (a number too long to read)") from None
        if not isinstance(obj, dict):
            raise NmtError(f"{path}: line {number} is a JSON {type(obj).__name__}, expected an object per document")
        if _has_surrogate(obj):
            raise NmtError(f"{path}: line {number} holds a lone surrogate escape (\\ud800-\\udfff without its "
                           "pair), which is not text; fix the file")
        yield number, obj


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(obj) -> bool:
    """Whether any key or string of a parsed JSON value holds a lone surrogate (iterative: any depth)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _field(obj, name, path, number, required=True):
    value = obj.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise NmtError(f"{path}: line {number}: field {name!r} is {'missing' if value is None else 'not a string'}")
    return str(value)


def read_jsonl(path) -> TestSet:
    path = Path(path)
    testset = TestSet(path, "jsonl", path.stem)
    seen = set()
    for number, obj in _json_lines(path):
        doc_id = _field(obj, "doc_id", path, number)
        src_text = obj.get("src_text")
        if not isinstance(src_text, str):
            raise NmtError(f"{path}: line {number} (document {doc_id!r}): 'src_text' is missing or not a string")
        doc = Document(testset, doc_id, _field(obj, "src_lang", path, number, False),
                       _field(obj, "tgt_lang", path, number, False), _field(obj, "domain", path, number, False),
                       _field(obj, "collection", path, number, False), record=obj)
        if doc.key in seen:
            raise NmtError(f"{path}: line {number}: document {doc_id!r} (to {doc.tgt_lang}) appears twice")
        seen.add(doc.key)
        doc.paragraphs = [[Unit(doc, str(i), line)] for i, line in enumerate(src_text.split("\n"), start=1)]
        testset.docs.append(doc)
    return testset._numbered()


def read_hypotheses(path, testset: TestSet, system: str | None = None) -> list[str]:
    """Existing hypotheses for ``testset``, one per unit in order.

    Plain text: one line per unit. XML: the ``<hyp>`` of each document (the only
    system, or the one named ``system``), matched by document and seg id. JSONL:
    the ``hypothesis`` of each document, matched by ``doc_id`` (and ``tgt_lang``).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "txt":
        lines, _ = read_lines(path)
        units = testset.units
        if len(lines) != len(units):
            canary = " (the canary line included)" if any(u.canary for u in units) else ""
            raise NmtError(f"{path} has {len(lines)} lines but {testset.path.name} has {len(units)} "
                           f"{'segments' if testset.format == 'xml' else 'lines'}{canary}; one hypothesis a line")
        return lines
    if fmt == "xml":
        return _xml_hypotheses(path, testset, system)
    return _jsonl_hypotheses(path, testset)


def _xml_hypotheses(path, testset, system):
    other = read_xml(path)
    systems = {hyp.get("system") for hyp in other.root.iter("hyp")}
    if not systems:
        raise NmtError(f"{path} has no <hyp> element")
    if system not in systems:
        if len(systems) > 1:
            raise NmtError(f"{path} has hypotheses of several systems ({', '.join(sorted(systems))}); "
                           "name the one to use with --hyp-system")
        system = next(iter(systems))
    by_key = {(doc.collection, doc.id): doc.element for doc in other.docs}
    out = []
    for doc in testset.docs:
        element = by_key.pop((doc.collection, doc.id), None)
        hyp = None if element is None else next((h for h in element.findall("hyp") if h.get("system") == system),
                                                None)
        if hyp is None:
            raise NmtError(f"{path}: document {doc.id!r} has no hypothesis of system {system!r}")
        segs = {seg_number(seg.get("id")): seg.text or "" for p in hyp for seg in p}
        for unit in doc.units:
            if int(unit.seg) not in segs:
                raise NmtError(f"{path}: {unit.label}: no hypothesis")
            out.append(segs.pop(int(unit.seg)))
        if segs:
            raise NmtError(f"{path}: document {doc.id!r}, segment {min(segs)}: hypothesis for a segment the "
                           "source does not have")
    if by_key:
        raise NmtError(f"{path}: document {next(iter(by_key))[1]!r} is not in the test set {testset.path.name}")
    return out


def _jsonl_hypotheses(path, testset):
    found = {}
    for number, obj in _json_lines(path):
        doc_id = _field(obj, "doc_id", path, number)
        key = (_field(obj, "collection", path, number, False), doc_id,
               _field(obj, "tgt_lang", path, number, False) if testset.format == "jsonl" else None)
        if key in found:
            raise NmtError(f"{path}: line {number}: document {doc_id!r} appears twice")
        found[key] = (number, obj.get("hypothesis"))
    out = []
    for doc in testset.docs:
        key = doc.key if doc.key in found else doc.key[:2] + (None,)  # hypotheses without tgt_lang
        if key not in found:
            raise NmtError(f"{path}: document {doc.id!r} has no hypothesis")
        number, hypothesis = found.pop(key)
        if not isinstance(hypothesis, str):
            raise NmtError(f"{path}: line {number} (document {doc.id!r}): 'hypothesis' is missing or not a string")
        lines = hypothesis.split("\n")
        if len(lines) != len(doc.units):
            raise NmtError(f"{path}: document {doc.id!r}: the hypothesis has {len(lines)} lines, the source "
                           f"{len(doc.units)}; nmt needs one hypothesis line per source line")
        out.extend(lines)
    if found:
        raise NmtError(f"{path}: document {next(iter(found))[1]!r} is not in the test set {testset.path.name}")
    return out


# ---------------------------------------------------------------------------
# validation


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
        bad = _XML_BAD_CHARS.search(hyp)
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
    import tempfile

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


# ---------------------------------------------------------------------------
# writers


def xml_lang(code: str) -> str:
    """WMT25 codes such as ``cs_CZ`` as an xsd:language tag (``cs-CZ``)."""
    return code.replace("_", "-")


def _xml_value(value: str | None, what: str, doc: Document) -> str | None:
    """``value`` if XML 1.0 can hold it; a control character or lone surrogate is refused, naming the document."""
    bad = _XML_BAD_CHARS.search(value or "")
    if bad:
        raise NmtError(f"{doc.testset.path.name}: document {doc.id!r}: its {what} contains U+{ord(bad.group()):04X}, "
                       "which XML cannot hold; package it as jsonl or txt (--format), or fix the test set")
    return value


def render_xml(testset: TestSet, hyps: list, system: str) -> bytes:
    """The test set with one ``<hyp system=.. lang=..>`` per document that mirrors its ``<src>``.

    A carriage return in text is written as ``&#13;`` (a raw one would be read back as a line feed).
    """
    it = iter(hyps)
    if testset.root is not None:
        root = copy.deepcopy(testset.root)
        elements = [doc for _, doc in _iter_docs(root)]
        for old in root.iter("hyp"):  # sample-hyp.xml's language= becomes the schema's lang=
            if "language" in old.attrib and "lang" not in old.attrib:
                old.attrib = {("lang" if k == "language" else k): v for k, v in old.attrib.items()}
    else:
        root = ET.Element("dataset", id=testset.name)
        elements = []
        for doc in testset.docs:
            attrs = {"id": _xml_value(doc.id, "id", doc), "origlang": xml_lang(doc.src_lang or "und")}
            if doc.domain:
                attrs["domain"] = _xml_value(doc.domain, "domain", doc)
            element = ET.SubElement(root, "doc", attrs)
            src = ET.SubElement(element, "src", lang=xml_lang(doc.src_lang or "und"))
            for paragraph in doc.paragraphs:
                p = ET.SubElement(src, "p")
                for unit in paragraph:
                    ET.SubElement(p, "seg", id=unit.seg).text = _xml_value(unit.text, f"source line {unit.seg}", doc)
            elements.append(element)
    for doc, element in zip(testset.docs, elements):
        if any(h.get("system") == system for h in element.findall("hyp")):
            raise NmtError(f"{testset.path.name}: document {doc.id!r} already has a hypothesis of system "
                           f"{system!r}; choose another system name")
        hyp = ET.Element("hyp", {"system": system, "lang": xml_lang(doc.tgt_lang)})
        for paragraph in doc.paragraphs:
            p = ET.SubElement(hyp, "p")
            for unit in paragraph:
                ET.SubElement(p, "seg", id=unit.seg).text = next(it)
        before = [i for i, child in enumerate(element) if child.tag != "supplemental"]
        element.insert(before[-1] + 1, hyp)
    ET.indent(root, space="  ")
    # ElementTree escapes \r in attributes only; elsewhere a raw one can only be in text, where it must be a reference
    return ET.tostring(root, encoding="utf-8", xml_declaration=True).replace(b"\r", b"&#13;") + b"\n"


def render_txt(hyps: list) -> bytes:
    """One line a hypothesis; a line break inside one is refused (``check_hypotheses`` names its segment)."""
    for number, hyp in enumerate(hyps, start=1):
        line_break = line_break_in(hyp)
        if line_break:
            raise NmtError(f"line {number} of the txt output would contain a line break, {line_break}; "
                           "one line per segment")
    return "".join(f"{hyp}\n" for hyp in hyps).encode("utf-8")


def docs_line(doc: Document) -> str:
    """``domain<TAB>doc id`` of a ``.docs`` file; a tab or line break in either is refused, naming the document."""
    for what, value in (("id", doc.id), ("domain", doc.domain or "")):
        problem = line_break_in(value) or ("a tab" if "\t" in value else None)
        if problem:
            raise NmtError(f"{doc.testset.path.name}: document {doc.id!r}: its {what} contains {problem}, which "
                           "a .docs file (one 'domain<TAB>doc id' line per segment) cannot hold; fix the "
                           f"document {what}")
    return f"{doc.domain or ''}\t{doc.id}"


def render_docs(testset: TestSet) -> bytes:
    """The WMT24 document file (``domain<TAB>doc id`` per unit) of any test set."""
    return "".join(f"{docs_line(unit.doc)}\n" for unit in testset.units).encode("utf-8")


def render_source_txt(testset: TestSet) -> bytes:
    return render_txt([unit.text for unit in testset.units])


def render_jsonl(testset: TestSet, hyps: list) -> bytes:
    """One object per document with the translated document in ``hypothesis``."""
    out, start = [], 0
    for doc in testset.docs:
        units = doc.units
        lines = hyps[start:start + len(units)]
        start += len(units)
        if doc.record is not None:
            record = dict(doc.record)
            record.setdefault("src_lang", doc.src_lang)
            record["tgt_lang"] = doc.tgt_lang
        else:
            for unit in units:  # src_text is split on \n into units: a segment holding one would become two
                if "\n" in unit.text:
                    raise NmtError(f"{unit.label}: the source segment contains a line feed, which the JSONL "
                                   "format's src_text cannot hold inside one unit; package it as xml or txt")
            record = {"doc_id": doc.id, "src_lang": doc.src_lang, "tgt_lang": doc.tgt_lang, "domain": doc.domain,
                      **({"collection": doc.collection} if doc.collection else {}),
                      "src_text": "\n".join(unit.text for unit in units)}
        record["hypothesis"] = "\n".join(lines)
        out.append(json_line(record) + "\n")
    return "".join(out).encode("utf-8")


def render(fmt: str, testset: TestSet, hyps: list, system: str) -> bytes:
    if fmt == "xml":
        return render_xml(testset, hyps, system)
    if fmt == "jsonl":
        return render_jsonl(testset, hyps)
    if fmt == "txt":
        return render_txt(hyps)
    raise NmtError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# ---------------------------------------------------------------------------
# unwrap: plain text out of an XML test set

_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")  # as str.splitlines()


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "_"


def unwrap(testset: TestSet, skip_testsuites: bool = False) -> tuple[dict, dict]:
    """Plain-text views of an XML test set, aligned line by line with its source segments.

    Returns ``({suffix: lines}, counts)``. Suffixes: ``src.LANG``, ``docs`` (the WMT24
    ``domain<TAB>doc id`` file), ``ref.TRANSLATOR.LANG`` and ``hyp.SYSTEM.LANG``. A segment a
    reference or system lacks becomes an empty line; line breaks inside a segment become spaces. A
    document id or domain with a line break or a tab is refused (the ``docs`` file could not hold it).
    """
    if testset.format != "xml":
        raise NmtError(f"nmt unwrap reads WMT XML files; {testset.path.name} is {testset.format}")
    docs = [d for d in testset.docs if not (skip_testsuites and d.element.get("testsuite") is not None)]
    columns: dict[tuple, dict] = {}  # (kind, name, lang) -> {(doc index, seg): text}
    for index, doc in enumerate(docs):
        for section in doc.element:
            if section.tag not in ("ref", "hyp"):
                continue
            name = section.get("translator" if section.tag == "ref" else "system") or section.tag
            lang = section.get("lang") or section.get("language")
            column = columns.setdefault((section.tag, name, lang), {})
            for p in section:
                for seg in p:
                    column[(index, str(seg_number(seg.get("id"))))] = seg.text or ""
    counts = {"segments": 0, "line_breaks": 0, "missing": {}}
    out: dict[str, list] = {}

    def clean(text):
        flat = _LINE_BREAKS.sub(" ", text)
        counts["line_breaks"] += flat != text
        return flat

    src_langs = {doc.src_lang for doc in docs}
    src_key = f"src.{_safe_name(next(iter(src_langs)) if len(src_langs) == 1 else 'src')}"
    out[src_key], out["docs"] = [], []
    for index, doc in enumerate(docs):
        docs_entry = docs_line(doc)
        for unit in doc.units:
            out[src_key].append(clean(unit.text))
            out["docs"].append(docs_entry)
    counts["segments"] = len(out[src_key])
    for (kind, name, lang), column in columns.items():
        key = f"{kind}.{_safe_name(name)}.{_safe_name(lang or 'und')}"
        if key in out:
            raise NmtError(f"{testset.path.name}: two {kind} columns would both be written as {key}")
        lines = []
        for index, doc in enumerate(docs):
            for unit in doc.units:
                text = column.get((index, unit.seg))
                if text is None:
                    counts["missing"][key] = counts["missing"].get(key, 0) + 1
                    text = ""
                lines.append(clean(text))
        out[key] = lines
    return out, counts
