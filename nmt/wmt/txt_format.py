"""The WMT24 txt format (wmt-conference/wmt24-news-systems): ``sources/en-de.txt`` has one
paragraph a line; ``documents/en-de.docs`` has ``domain<TAB>doc id`` for each line (documents
are contiguous). Hypotheses are one line per source line; the language pair comes from the file name.
"""
from __future__ import annotations

from pathlib import Path

from nmt.errors import NmtError
from nmt.fileio import line_break_in, read_lines
from nmt.wmt.testset import Document, TestSet, Unit, pair_from_name


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
    src, tgt = pair_from_name(path)
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


def read_txt_hypotheses(path, testset: TestSet) -> list[str]:
    """One hypothesis a line, for the units of ``testset`` (of any format) in order."""
    lines, _ = read_lines(path)
    units = testset.units
    if len(lines) != len(units):
        canary = " (the canary line included)" if any(u.canary for u in units) else ""
        raise NmtError(f"{path} has {len(lines)} lines but {testset.path.name} has {len(units)} "
                       f"{'segments' if testset.format == 'xml' else 'lines'}{canary}; one hypothesis a line")
    return lines


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
