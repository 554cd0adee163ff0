"""WMT XML (WMT21-WMT24; ``wmt-schema.rnc`` from wmt-conference/wmt-format-tools): parse it
safely, check it against the schema's structure, read test sets and hypotheses, write submissions.

Files are parsed by defusedxml, with DTDs forbidden: a DTD or an entity declaration is refused
(no external entities, no "billion laughs"). Text that XML 1.0 cannot hold (control characters,
lone surrogates) is refused when writing, naming the document; a carriage return in text is
written as ``&#13;`` so that it reads back as itself.
"""
from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from nmt.errors import NmtError
from nmt.wmt.testset import Document, TestSet, Unit, pair_from_name

SCHEMA = "wmt-schema.rnc"

_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ENCODING = re.compile(r"""\A<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']""")
_LANG = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")
_POSITIVE = re.compile(r"\s*\+?[0-9]+\s*")
XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")  # what XML 1.0 cannot hold


def parse_xml(path) -> ET.Element:
    """Parse a UTF-8 XML file with defusedxml's parser, which refuses a DTD (and with it any entity
    declaration: no external entities, no "billion laughs") as soon as it starts."""
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
    refused = NmtError(f"{path}: refusing XML with a DTD or entity declaration (<!DOCTYPE/<!ENTITY): it could "
                       "expand entities or read external files; WMT files never need one, remove it")
    # ElementTree's own (C) tree builder: defusedxml's default builds pure-Python elements, which the
    # C ElementTree refuses to mix with its own when a submission adds <hyp> elements
    parser = DefusedXMLParser(target=ET.TreeBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(text)
        return parser.close()
    except DefusedXmlException:
        raise refused from None
    except ET.ParseError as exc:
        if _DECLARATION.search(text):  # one spelt so that XML does not know it (<!doctype): the same refusal
            raise refused from None
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


def read_xml(path) -> TestSet:
    path = Path(path)
    root = parse_xml(path)
    check_structure(root, str(path), hyp_language_alias=True)
    testset = TestSet(path, "xml", root.get("id") or path.stem, root=root)
    # the target language: the references' (or existing hypotheses') if they agree, else the file name's
    targets = {ref.get("lang") for ref in root.iter("ref")} or \
        {hyp.get("lang") or hyp.get("language") for hyp in root.iter("hyp")}
    name_src, name_tgt = pair_from_name(path)
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


def read_xml_hypotheses(path, testset: TestSet, system: str | None) -> list[str]:
    """The ``<hyp>`` of each document of ``testset`` in the XML file ``path`` (the only system, or
    ``system``), matched by document and seg id."""
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


def xml_lang(code: str) -> str:
    """WMT25 codes such as ``cs_CZ`` as an xsd:language tag (``cs-CZ``)."""
    return code.replace("_", "-")


def _xml_value(value: str | None, what: str, doc: Document) -> str | None:
    """``value`` if XML 1.0 can hold it; a control character or lone surrogate is refused, naming the document."""
    bad = XML_BAD_CHARS.search(value or "")
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
