"""``nmt unwrap``: plain text out of a WMT XML test set, aligned line by line with its source segments."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nmt.errors import NmtError
from nmt.fileio import LINE_BREAKS, write_lines
from nmt.wmt.testset import TestSet, detect_format
from nmt.wmt.txt_format import docs_line
from nmt.wmt.xml_format import read_xml, seg_number

LINE_BREAK_RUNS = re.compile(f"[{re.escape(LINE_BREAKS)}]+")  # runs of what str.splitlines() breaks at


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
        flat = LINE_BREAK_RUNS.sub(" ", text)
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


@dataclass(frozen=True)
class UnwrapResult:
    files: list  # the text files written, in column order
    segments: int  # lines in each
    line_breaks: int  # segments whose line breaks became spaces
    missing: dict  # file suffix -> empty lines (segments that column lacks)


def unwrap_file(xml_file, output_dir=".", prefix: str | None = None, skip_testsuites: bool = False,
                force: bool = False) -> UnwrapResult:
    """Write ``unwrap``'s columns of a WMT XML file as ``output_dir/PREFIX.SUFFIX`` text files (PREFIX: the
    file's name without .xml); existing files are refused unless ``force``."""
    path = Path(xml_file)
    if not path.is_file():
        raise NmtError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    if detect_format(path) != "xml":
        raise NmtError(f"nmt unwrap reads WMT XML files (.xml); {path.name} is not one (txt is already plain text)")
    columns, counts = unwrap(read_xml(path), skip_testsuites)
    prefix = prefix or (path.name[:-4] if path.name.lower().endswith(".xml") else path.name)
    targets = {suffix: Path(output_dir) / f"{prefix}.{suffix}" for suffix in columns}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        raise NmtError(f"{existing[0]} already exists; pass --force to overwrite")
    for suffix, lines in columns.items():
        write_lines(targets[suffix], lines)
    return UnwrapResult(list(targets.values()), counts["segments"], counts["line_breaks"], dict(counts["missing"]))
