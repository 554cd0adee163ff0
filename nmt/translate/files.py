"""Documents in, documents out: ``nmt translate-file`` and the server's ``POST /translate_file``.

Each kind keeps its structure; only text changes:

- ``.txt``: line by line (line endings and blank lines kept), each line's sentences
  translated and joined as ``nmt translate`` does;
- ``.html`` / ``.htm``: the whole document through ``nmt.translate.markup``;
- ``.docx`` (python-docx): every paragraph of the body, of tables (nested ones too),
  headers and footers keeps its style and its runs: the paragraph's text is
  translated as one piece, and each run gets the share of the translation that
  ``markup``'s projection gives it (run boundaries are the marks), so bold or
  italic runs stay bold or italic around roughly their words;
- ``.srt`` (the ``srt`` library): every cue keeps its index and timing; its text
  (with ``<i>``-style tags kept as in HTML) is translated whole and laid out on as
  many lines as it had.

Translation goes through one callable, ``translate(units) -> translations``, which
gets every sentence of the document at once (already split), so that the caller
decides how: a ``Translator`` (the CLI) or the server's batcher.
"""
from __future__ import annotations

import html
import io
import re
import zipfile
from pathlib import Path

from nmt.errors import NmtError
from nmt.translate import markup, sentences

FILE_TYPES = {".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
              ".htm": "text/html; charset=utf-8", ".srt": "application/x-subrip; charset=utf-8",
              ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
MAX_FILE_BYTES = 10 * 2**20  # default size limit of one file (both nmt translate-file and the server)
_RUN_TAG = re.compile(r'<span data-run="(\d+)">(.*?)</span>', re.S)


def file_kind(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in FILE_TYPES:
        raise NmtError(f"cannot translate {suffix or 'extensionless'} files ({Path(name).name}); "
                       f"nmt translates {', '.join(FILE_TYPES)} files")
    return suffix


def translate_document(data: bytes, name: str, translate, src: str, tgt: str, mode: str = "auto",
                       max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The translated file (same kind as ``name``'s suffix). ``translate(units) -> translations``."""
    kind = file_kind(name)
    if len(data) > max_bytes:
        raise NmtError(f"{Path(name).name} is {len(data):,} bytes; the limit is {max_bytes:,}")
    if kind == ".docx":
        return _docx(data, name, translate, src, tgt, mode)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NmtError(f"{Path(name).name} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if kind == ".txt":
        return _txt(text, translate, src, tgt, mode).encode("utf-8")
    if kind == ".srt":
        return _srt(text, name, translate, src, tgt, mode).encode("utf-8")
    return _html([text], translate, src, tgt, mode)[0].encode("utf-8")


def _html(documents: list[str], translate, src, tgt, mode) -> list[str]:
    parsed = markup.parse_documents(documents, src, mode)
    units = [unit for doc in parsed for unit in doc.units]
    return markup.render_documents(parsed, translate(units) if units else [], tgt)


def _txt(text: str, translate, src, tgt, mode) -> str:
    lines = text.splitlines(keepends=True)
    bodies = [line.rstrip("\r\n") for line in lines]
    cut = sentences.segment_lines(bodies, src, mode)
    todo = [i for i, unit in enumerate(cut.units) if unit.strip()]
    done = translate([cut.units[i] for i in todo]) if todo else []
    out = [""] * len(cut.units)
    for i, translation in zip(todo, done):
        out[i] = translation
    glue = sentences.joiner(tgt)
    return "".join(glue.join(t for t in cut.owned(out, k) if t) + line[len(body):]
                   for k, (line, body) in enumerate(zip(lines, bodies)))


def _srt(text: str, name: str, translate, src, tgt, mode) -> str:
    import srt

    try:
        cues = list(srt.parse(text))
    except (srt.SRTParseError, ValueError) as exc:
        raise NmtError(f"{Path(name).name} is not a valid .srt file: {str(exc).splitlines()[0]}") from None
    shapes = [cue.content.count("\n") + 1 for cue in cues]
    flat = [" ".join(part.strip() for part in cue.content.splitlines()) for cue in cues]
    for cue, translated, lines in zip(cues, _html(flat, translate, src, tgt, mode), shapes):
        cue.content = _wrap(translated, lines)
    return srt.compose(cues, reindex=False)


def _wrap(text: str, lines: int) -> str:
    """``text`` on ``lines`` lines, cut at the spaces nearest to equal lengths (unspaced text: at characters)."""
    words = text.split(" ") if " " in text else list(text)
    glue = " " if " " in text else ""
    if lines <= 1 or len(words) < 2:
        return text
    out, start = [], 0
    for k in range(1, lines):
        goal = len(text) * k / lines
        best, length = start + 1, 0
        for j in range(start, len(words) - (lines - k)):
            length = len(glue.join(words[:j + 1]))
            if length <= goal or j == start:
                best = j + 1
        out.append(glue.join(words[start:best]))
        start = best
    out.append(glue.join(words[start:]))
    return "\n".join(line for line in out if line)


def _docx_paragraphs(document):
    """Every paragraph of the body, tables (nested too), headers and footers, in document order."""
    def from_container(container):
        for paragraph in container.paragraphs:
            yield paragraph
        for table in getattr(container, "tables", []):
            for row in table.rows:
                seen = set()
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell appears once per grid column it spans
                        continue
                    seen.add(id(cell._tc))
                    yield from from_container(cell)

    yield from from_container(document)
    for section in document.sections:
        for part in (section.header, section.footer):
            if not part.is_linked_to_previous:
                yield from from_container(part)


def _docx(data: bytes, name: str, translate, src, tgt, mode) -> bytes:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.text.hyperlink import Hyperlink

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise NmtError(f"{Path(name).name} is not a valid .docx file ({type(exc).__name__}); "
                       "save it again from a word processor") from None
    except Exception as exc:  # lxml's XMLSyntaxError and the like: a broken document part
        raise NmtError(f"{Path(name).name} is not a valid .docx file ({type(exc).__name__})") from None
    paragraphs = []
    for paragraph in _docx_paragraphs(document):
        runs = []
        for item in paragraph.iter_inner_content():
            runs.extend(item.runs if isinstance(item, Hyperlink) else [item])
        if any(run.text.strip() for run in runs):
            paragraphs.append(runs)
    # each run becomes an inline element, so that markup's projection gives it its share
    fragments = ["".join(f'<span data-run="{i}">{html.escape(run.text, quote=False)}</span>'
                         for i, run in enumerate(runs)) for runs in paragraphs]
    for runs, rendered in zip(paragraphs, _html(fragments, translate, src, tgt, mode)):
        texts = {int(i): html.unescape(text) for i, text in _RUN_TAG.findall(rendered)}
        for i, run in enumerate(runs):
            run.text = texts.get(i, "")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
