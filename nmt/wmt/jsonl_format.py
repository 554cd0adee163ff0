"""The JSONL format (WMT25 on): one JSON object a line, one document each, with ``doc_id``,
``src_lang``, ``tgt_lang``, ``domain``, ``src_text`` (the whole document); a submission adds the
translated document as ``hypothesis``. A document is translated line by line (lines split on
``\\n``), so a hypothesis has as many lines as its ``src_text``; other fields are kept.

Input that Python's ``json`` cannot take (nesting too deep, an integer of more than 4300
digits, a lone surrogate such as ``"\\ud800"``) is a one-line error naming the line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from nmt.errors import NmtError
from nmt.fileio import iter_lines_bytes, json_line
from nmt.wmt.testset import Document, TestSet, Unit


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


def read_jsonl_hypotheses(path, testset: TestSet) -> list[str]:
    """The ``hypothesis`` of each document of ``testset``, matched by ``doc_id`` (and ``tgt_lang``),
    split into one line per unit."""
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
