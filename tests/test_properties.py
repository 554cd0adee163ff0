"""Property-based tests (Hypothesis) of nmt's readers and writers.

Every property says: whatever the input, either a correct result (N lines in, N
lines out, read back unchanged) or an ``NmtError`` whose message is one line;
never any other exception. Text is drawn with every character that
``str.splitlines()`` breaks at, every C0/C1 control character, tabs, BOMs,
noncharacters and (where the format can carry them) lone surrogates.

Example counts: ``NMT_HYPOTHESIS_EXAMPLES`` (default 40 per property, kept
modest for a 2-core machine; CI may raise it). The number of generated cases
per property and how many ended in a result or in an NmtError are printed at
the end of the module (``-s`` not needed) and recorded in docs/RELIABILITY.md.
"""
from __future__ import annotations

import collections
import functools
import io
import json
import os
import tarfile
import tempfile
import xml.sax.saxutils
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from nmt import fileio
from nmt.cli import main
from nmt.errors import NmtError
from nmt.fileio import read_lines, write_lines
from nmt.translate import stream
from nmt.translate.translator import Hypothesis, Translation
from nmt.wmt import formats
from nmt.wmt import unwrap
from nmt.wmt.xml_format import XML_BAD_CHARS

EXAMPLES = int(os.environ.get("NMT_HYPOTHESIS_EXAMPLES", "40"))
# the default run (and CI) draws the same examples every time; NMT_HYPOTHESIS_RANDOM=1 explores new ones
DERANDOMIZE = os.environ.get("NMT_HYPOTHESIS_RANDOM") != "1"
settings.register_profile("nmt", max_examples=EXAMPLES, derandomize=DERANDOMIZE, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("nmt")

DATA = Path(__file__).resolve().parents[1] / "data_prep" / "sample" / "wmt"
EN_DE = DATA / "wmt24-general" / "sources" / "en-de.txt"
EN_DE_LINES = EN_DE.read_text(encoding="utf-8").split("\n")[:-1]

CASES: collections.Counter = collections.Counter()  # property -> generated cases
OUTCOMES: collections.Counter = collections.Counter()  # (property, "result" | "NmtError") -> cases


def _count(name: str, outcome: str) -> None:
    CASES[name] += 1
    OUTCOMES[(name, outcome)] += 1
    event(outcome)


def counted(name: str):
    """The property must reach its end (result or NmtError) in at least EXAMPLES generated cases: a
    strategy that ends up rejecting almost everything would otherwise pass without testing anything."""
    def wrap(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            before = CASES[name]
            test(*args, **kwargs)
            generated = CASES[name] - before
            assert generated >= EXAMPLES, f"{name}: {generated} generated cases reached the property, want {EXAMPLES}"
        return run
    return wrap


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    lines = ["generated cases per property (result / NmtError):"]
    for name in sorted(CASES):
        lines.append(f"  {name}: {CASES[name]} ({OUTCOMES[(name, 'result')]} / {OUTCOMES[(name, 'NmtError')]})")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))
    target = os.environ.get("NMT_HYPOTHESIS_COUNTS")
    if target:
        Path(target).write_text(json.dumps({n: {"cases": CASES[n], "result": OUTCOMES[(n, "result")],
                                                "NmtError": OUTCOMES[(n, "NmtError")]} for n in sorted(CASES)},
                                           indent=2) + "\n", encoding="utf-8")


def one_line(message: str) -> str:
    assert message and len(message.splitlines()) == 1 and "\n" not in message, repr(message)
    assert "Traceback" not in message
    return message


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: the property fails with it
    if result.exit_code != 0:
        assert result.exit_code == 2, (result.exit_code, result.output)
        assert result.stderr.startswith("nmt: error: ") and len(result.stderr.splitlines()) == 1, result.stderr
    return result


# ------------------------------------------------------------------------------------------------ alphabets
# every character str.splitlines() breaks at, the other C0/C1 controls, BOM, noncharacters, NUL, DEL
LINE_BREAKS = list(fileio.LINE_BREAKS)
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]
ODD = ["\ufeff", "\ufffe", "\uffff", "\u200b", "\u00a0", "\u2047", "<unk>", "&", "<", ">", '"', "'", "]]>"]
SPECIALS = sorted(set(LINE_BREAKS + CONTROLS + ODD))
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]

def strings(elements, min_size: int = 0, max_size: int = 12):
    """Strings made of drawn pieces (a piece may be longer than one character, e.g. ``<unk>``)."""
    return st.lists(elements, min_size=min_size, max_size=max_size).map("".join)


# ordinary text: any character UTF-8 can hold except controls, separators and noncharacters
CLEAN_CHAR = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cn"))
clean_text = st.text(CLEAN_CHAR, max_size=12)
any_text = strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS)), max_size=12)
nasty_text = st.tuples(clean_text, st.sampled_from(SPECIALS), any_text).map("".join)
no_newline_text = any_text.map(lambda s: s.replace("\n", ""))


def _xml_char(ch: str) -> bool:
    c = ord(ch)
    return ch in "\t\n\r" or 0x20 <= c <= 0xD7FF or 0xE000 <= c <= 0xFFFD or c >= 0x10000


XML_CHAR = st.one_of(CLEAN_CHAR, st.sampled_from([c for c in SPECIALS if len(c) > 1 or _xml_char(c)]))
xml_text = strings(XML_CHAR, max_size=10)
xml_nasty = st.tuples(xml_text, st.sampled_from(["\n", "\r", "\t", "\x85", "\u2028", "\u2029"]), xml_text
                      ).map("".join)


def bad_for_a_line(text: str) -> bool:
    """What check_hypotheses refuses: a line break or a character WMT files cannot hold."""
    return bool(fileio.LINE_BREAK_RE.search(text) or XML_BAD_CHARS.search(text))


BAD_CHARS = [c for c in SPECIALS if len(c) == 1 and bad_for_a_line(c)]
bad_text = st.tuples(clean_text, st.sampled_from(BAD_CHARS), any_text).map("".join)


@st.composite
def lines_with_one_bad(draw, n: int, bad=nasty_text, first: int = 0):
    """n clean lines; in a third of the cases one line (from ``first`` on) holds a special character, in
    another third one that a line cannot hold (a line break or a character WMT files refuse)."""
    lines = draw(st.lists(clean_text, min_size=n, max_size=n))
    kind = draw(st.sampled_from(["clean", "special", "bad"]))
    if n > first and kind != "clean":
        lines[draw(st.integers(first, n - 1))] = draw(bad if kind == "special" else bad_text)
    return lines


# ------------------------------------------------------------------------------------- plain text lines


def _expected_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


@counted("fileio.read_lines")
@given(lines=st.lists(no_newline_text, max_size=8), final_newline=st.booleans(),
       junk=st.one_of(st.none(), st.binary(min_size=1, max_size=6)))
def test_read_lines_gives_one_entry_per_line_or_names_the_bad_line(lines, final_newline, junk):
    data = "\n".join(lines).encode("utf-8") + (b"\n" if final_newline and lines else b"")
    if junk is not None:
        data = junk + data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.txt"
        path.write_bytes(data)
        try:
            got, bad = read_lines(path)
        except NmtError as exc:
            _count("fileio.read_lines", "NmtError")
            assert "not valid UTF-8" in one_line(str(exc)) and junk is not None
            return
        _count("fileio.read_lines", "result")
        assert len(got) == _expected_lines(data) and bad == 0
        if junk is None:  # CRLF is read as LF; a final \r without \n is text
            terminated = [i < len(lines) - 1 or final_newline for i in range(len(lines))]
            expected = [line[:-1] if line.endswith("\r") and ends else line for line, ends in zip(lines, terminated)]
            if expected and not final_newline and expected[-1] == "":
                expected.pop()  # an empty last line without a newline is no line at all
            assert got == expected
        skipped, n_bad = read_lines(path, on_bad_utf8="skip")
        assert len(skipped) == len(got) and n_bad == 0


@counted("fileio.write_lines+read_lines")
@given(lines=st.lists(no_newline_text.map(lambda s: s.rstrip("\r")), max_size=8))
def test_write_lines_then_read_lines_round_trips(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.txt"
        assert write_lines(path, lines) == len(lines)
        _count("fileio.write_lines+read_lines", "result")
        assert read_lines(path)[0] == lines
        assert path.read_bytes().count(b"\n") == len(lines)


@counted("translate.stream readers")
@given(chunks=st.lists(st.one_of(no_newline_text.map(lambda s: s.encode("utf-8")), st.binary(max_size=6)),
                       max_size=10).map(lambda parts: b"\n".join(p.replace(b"\n", b"") for p in parts)),
       chunk_lines=st.integers(1, 4), final_newline=st.booleans())
def test_translate_line_reader_keeps_one_entry_per_input_line(chunks, chunk_lines, final_newline):
    data = chunks + (b"\n" if final_newline and chunks else b"")
    got = [line for chunk in stream.file_chunks(io.BytesIO(data), chunk_lines) for line in chunk]
    streamed = [line for chunk in stream.stream_chunks(io.BytesIO(data), max_lines=chunk_lines) for line in chunk]
    _count("translate.stream readers", "result")
    assert len(got) == _expected_lines(data) and streamed == got
    pieces = data.split(b"\n")
    for index, (raw, line) in enumerate(zip(pieces, got)):
        if index < len(pieces) - 1 and raw.endswith(b"\r"):  # CRLF; a final \r without \n is text
            raw = raw[:-1]
        try:
            assert line == raw.decode("utf-8")
        except UnicodeDecodeError:
            assert line is None  # an empty output line and a warning later, never a shift


@counted("translate.stream.format_jsonl")
@given(source=st.one_of(st.none(), strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS + SURROGATES)),
                                           max_size=12)),
       texts=st.lists(strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS + SURROGATES)), max_size=12),
                      max_size=3),
       warning=st.one_of(st.none(), any_text), nbest=st.integers(1, 4), number=st.integers(1, 10 ** 6))
def test_translate_jsonl_output_is_one_line_per_input_line(source, texts, warning, nbest, number):
    translation = Translation([Hypothesis(t, -float(i)) for i, t in enumerate(texts)], warning)
    line = stream.format_jsonl(number, "de_DE", "en_XX", source, translation, nbest)
    _count("translate.stream.format_jsonl", "result")
    assert len((line + "\n").splitlines()) == 1 and "\n" not in line
    line.encode("utf-8")  # always encodable, lone surrogates included (escaped)
    record = json.loads(line)
    assert record["source"] == _pairs(source) and record["translation"] == _pairs(translation.text)
    assert record["line"] == number and record.get("warning") == (warning or None)
    if nbest > 1:  # that many hypotheses at most, best first
        assert [h["translation"] for h in record["nbest"]] == [_pairs(t) for t in texts[:nbest]]
    else:
        assert "nbest" not in record


def _pairs(text):
    """``text`` as JSON reads it back: two surrogates in a row (only a Python str can hold them) are one character."""
    return None if text is None else text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


# ------------------------------------------------------------------------------------------------- WMT XML

def _attr(value: str) -> str:
    return xml.sax.saxutils.quoteattr(value, {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _text(value: str) -> str:
    return xml.sax.saxutils.escape(value, {"\r": "&#13;"})


@st.composite
def xml_test_sets(draw):
    """(xml text, docs) where docs = [(id, domain, [[seg text, ...] per paragraph], [ref text per seg])]."""
    ids = draw(st.lists(st.text(CLEAN_CHAR, min_size=1, max_size=8), min_size=1, max_size=3, unique=True))
    domains = draw(st.lists(st.one_of(st.none(), clean_text), min_size=len(ids), max_size=len(ids)))
    if draw(st.booleans()):  # in half of the cases one document id or domain holds a line break or a tab
        index, nasty = draw(st.integers(0, len(ids) - 1)), draw(xml_nasty)
        if draw(st.booleans()) and nasty not in ids:
            ids[index] = nasty
        else:
            domains[index] = nasty
    docs = []
    for doc_id, domain in zip(ids, domains):
        paragraphs = draw(st.lists(st.lists(st.one_of(xml_text, xml_text, xml_text, xml_nasty), min_size=1,
                                            max_size=3), min_size=1, max_size=2))
        n = sum(len(p) for p in paragraphs)
        refs = draw(st.one_of(st.none(), st.lists(st.one_of(xml_text, xml_nasty), min_size=n, max_size=n)))
        docs.append((doc_id, domain, paragraphs, refs))
    out = ['<?xml version="1.0" encoding="utf-8"?>', '<dataset id="props">']
    for doc_id, domain, paragraphs, refs in docs:
        dom = f" domain={_attr(domain)}" if domain is not None else ""
        out.append(f'<doc id={_attr(doc_id)} origlang="en"{dom}><src lang="en">')
        number = 0
        for paragraph in paragraphs:
            segs = []
            for text in paragraph:
                number += 1
                segs.append(f'<seg id="{number}">{_text(text)}</seg>')
            out.append("<p>" + "".join(segs) + "</p>")
        out.append("</src>")
        if refs is not None:
            out.append('<ref lang="de" translator="A"><p>' + "".join(
                f'<seg id="{i}">{_text(t)}</seg>' for i, t in enumerate(refs, start=1)) + "</p></ref>")
        out.append("</doc>")
    out.append("</dataset>")
    return "\n".join(out), docs


def _units(docs) -> list[str]:
    return [text for _, _, paragraphs, _ in docs for paragraph in paragraphs for text in paragraph]


def _docs_field_bad(docs) -> bool:
    return any(fileio.LINE_BREAK_RE.search(value or "") or "\t" in (value or "")
               for doc_id, domain, _, _ in docs for value in (doc_id, domain))


@counted("wmt xml read/write")
@given(case=xml_test_sets(), data=st.data())
def test_wmt_xml_reads_and_writes_every_format_segment_for_segment(case, data):
    text, docs = case
    units = _units(docs)
    hyps = data.draw(lines_with_one_bad(len(units), bad=nasty_text))
    fmt = data.draw(st.sampled_from(formats.FORMATS))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "props.en-de.xml"
        path.write_text(text, encoding="utf-8")
        testset = formats.read_test_set(path)
        assert [u.text for u in testset.units] == units  # exactly what was written, every character
        assert [d.id for d in testset.docs] == [d[0] for d in docs]
        assert [d.domain for d in testset.docs] == [d[1] for d in docs]
        # refused: a hypothesis that is not one line; a .docs line that would not be one line; a JSONL src_text
        # that would split a segment in two
        refused = (any(bad_for_a_line(h) for h in hyps) or (fmt == "txt" and _docs_field_bad(docs))
                   or (fmt == "jsonl" and any("\n" in u for u in units)))
        try:
            formats.check_hypotheses(testset, hyps, allow_empty=True)
            if fmt == "txt":
                formats.render_docs(testset)  # a txt submission's test set has a .docs file
            data_out = formats.render(fmt, testset, hyps, "S")
            formats.check_output(data_out, fmt, testset, hyps, "S")  # reads it back: the same hypotheses
        except NmtError as exc:
            event(f"format {fmt}")
            _count("wmt xml read/write", "NmtError")
            one_line(str(exc))
            assert refused, str(exc)
            return
        event(f"format {fmt}")
        _count("wmt xml read/write", "result")
        assert not refused
        lines = data_out.decode("utf-8").splitlines()
        if fmt == "txt":
            assert lines == hyps
        elif fmt == "jsonl":
            assert len(lines) == len(docs)
        out = Path(tmp) / f"out.{fmt}"
        out.write_bytes(data_out)
        assert formats.read_hypotheses(out, testset, "S") == hyps
        if fmt != "txt":  # the source comes out unchanged too, unit for unit
            assert [u.text for u in formats.read_test_set(out).units] == units


@counted("nmt unwrap")
@given(case=xml_test_sets(), skip=st.booleans())
def test_unwrap_writes_n_lines_per_column_or_refuses_in_one_line(case, skip):
    text, docs = case
    n = len(_units(docs))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "props.xml"
        path.write_text(text, encoding="utf-8")
        args = ["unwrap", path, "-o", Path(tmp) / "out"] + (["--skip-testsuites"] if skip else [])
        result = cli(*args)
        if result.exit_code:
            _count("nmt unwrap", "NmtError")
            assert ".docs file" in result.stderr and _docs_field_bad(docs)
            assert not (Path(tmp) / "out").exists()
            return
        _count("nmt unwrap", "result")
        assert not _docs_field_bad(docs)
        files = sorted((Path(tmp) / "out").iterdir())
        assert {f.name for f in files} >= {"props.src.en", "props.docs"}
        for file in files:
            content = file.read_bytes().decode("utf-8")
            assert len(content.splitlines()) == n == content.count("\n"), file.name
        src = (Path(tmp) / "out" / "props.src.en").read_text(encoding="utf-8").split("\n")[:-1]
        assert src == [unwrap.LINE_BREAK_RUNS.sub(" ", u) for u in _units(docs)]


# ----------------------------------------------------------------------------------------------- WMT JSONL

JSON_TEXT = st.one_of(clean_text, clean_text, clean_text, clean_text, strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS)), max_size=10),
                      strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS + SURROGATES)), max_size=10))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     JSON_TEXT),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(JSON_TEXT, inner, max_size=3)), max_leaves=8)
HOSTILE_LINES = st.one_of(
    st.integers(1000, 120_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1000, 50_000).map(lambda n: '{"doc_id": ' + "{\"a\": " * n + "1" + "}" * n + "}"),
    st.integers(4301, 6000).map(lambda n: '{"doc_id": "x", "src_text": "y", "n": ' + "7" * n + "}"),
    json_values.map(json.dumps),
    strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS)), min_size=1, max_size=20).filter(
        lambda s: s.strip() and "\n" not in s),
)


def _has_surrogate(value) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in json.dumps(value, ensure_ascii=False))


@st.composite
def jsonl_test_sets(draw):
    ids = draw(st.lists(st.one_of(clean_text.filter(bool), st.integers(0, 10 ** 30)), min_size=1, max_size=3,
                        unique_by=str))
    records = []
    for doc_id in ids:
        record = {"doc_id": doc_id, "src_lang": "en", "tgt_lang": draw(st.sampled_from(["de", "ja_JP"])),
                  "domain": draw(st.one_of(st.none(), JSON_TEXT)),
                  "src_text": draw(st.lists(st.one_of(clean_text, JSON_TEXT), min_size=1, max_size=3).map("\n".join))}
        if draw(st.booleans()):
            record["extra"] = draw(json_values)
        records.append(record)
    hostile = draw(st.one_of(st.none(), st.none(), st.none(), HOSTILE_LINES))
    lines = [json.dumps(r, ensure_ascii=_has_surrogate(r) or draw(st.booleans())) for r in records]
    if hostile is not None:
        lines.insert(draw(st.integers(0, len(lines))), hostile)
    return "\n".join(lines) + "\n", records, hostile


@counted("wmt jsonl read")
@given(case=jsonl_test_sets(), data=st.data())
@example(case=('{"doc_id": "a", "src_text": "x"}\n' + "[" * 100_000 + "]" * 100_000 + "\n",
               [{"doc_id": "a", "src_text": "x"}], "deep"), data=None)
@example(case=('{"doc_id": "a", "src_text": "x", "n": ' + "1" * 5000 + "}\n", [], "huge integer"), data=None)
def test_wmt_jsonl_reads_and_writes_document_for_document(case, data):
    text, records, hostile = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "props.jsonl"
        path.write_text(text, encoding="utf-8")
        try:
            testset = formats.read_test_set(path)
        except NmtError as exc:
            _count("wmt jsonl read", "NmtError")
            one_line(str(exc))
            assert hostile is not None or any(_has_surrogate(r) for r in records), str(exc)
            return
        assert not any(_has_surrogate(r) for r in records)
        assert hostile is None and len(testset.docs) == len(records)
        assert [d.id for d in testset.docs] == [str(r["doc_id"]) for r in records]
        units = testset.units
        hyps = data.draw(lines_with_one_bad(len(units)))
        fmt = data.draw(st.sampled_from(formats.FORMATS))
        # refused: a hypothesis that is not one line; text XML cannot hold when writing XML
        refused = any(bad_for_a_line(h) for h in hyps) or (fmt == "xml" and any(
            XML_BAD_CHARS.search(value or "") for d in testset.docs
            for value in [d.id, d.domain] + [u.text for u in d.units]))
        try:
            formats.check_hypotheses(testset, hyps, allow_empty=True)
            out = formats.render(fmt, testset, hyps, "S")
            formats.check_output(out, fmt, testset, hyps, "S")
        except NmtError as exc:
            _count("wmt jsonl read", "NmtError")
            one_line(str(exc))
            assert refused, str(exc)
            return
        _count("wmt jsonl read", "result")
        assert not refused
        if fmt == "xml":
            path_out = Path(tmp) / "out.xml"
            path_out.write_bytes(out)
            assert [u.text for u in formats.read_test_set(path_out).units] == [u.text for u in units]
        if fmt == "jsonl":
            lines = out.decode("utf-8").splitlines()
            assert len(lines) == len(testset.docs)
            back = [json.loads(line) for line in lines]
            assert [b["hypothesis"] for b in back] == ["\n".join(hyps[u.position] for u in d.units)
                                                       for d in testset.docs]
            kept = [b for b in back if b["doc_id"] in [r["doc_id"] for r in records]]
            assert [{k: v for k, v in b.items() if k != "hypothesis"} for b in kept] == records


# ------------------------------------------------------------------------------------ nmt package in-process

@counted("nmt package --hyps")
@given(hyps=lines_with_one_bad(len(EN_DE_LINES), bad=nasty_text.map(lambda s: s.replace("\n", " ")), first=1),
       fmt=st.sampled_from(["same", "xml", "jsonl"]))
def test_nmt_package_with_hypothesis_files_keeps_one_line_per_segment(hyps, fmt):
    hyps = [EN_DE_LINES[0]] + hyps[1:]  # the canary line, copied
    with tempfile.TemporaryDirectory() as tmp:
        hyp_file = Path(tmp) / "hyp.de"
        hyp_file.write_bytes("".join(h + "\n" for h in hyps).encode("utf-8"))
        expected = [h[:-1] if h.endswith("\r") else h for h in hyps]  # a final \r reads as CRLF
        archive = Path(tmp) / "s.tar.gz"
        result = cli("package", EN_DE, "--hyps", hyp_file, "--team", "t", "--system", "s", "--constrained",
                     "--allow-empty", "--format", fmt, "-o", archive)
        if result.exit_code:
            _count("nmt package --hyps", "NmtError")
            assert any(bad_for_a_line(h) for h in expected) and not archive.exists()
            return
        _count("nmt package --hyps", "result")
        assert not any(bad_for_a_line(h) for h in expected)
        with tarfile.open(archive) as tar:
            names = [m.name for m in tar.getmembers()]
            member = next(n for n in names if n.startswith("t.s/en-de.s."))
            content = tar.extractfile(member).read().decode("utf-8")
        if fmt == "same":
            assert content.splitlines() == expected
        elif fmt == "jsonl":
            assert len(content.splitlines()) == 6  # one line per document
        testset = formats.read_test_set(EN_DE)
        out = Path(tmp) / Path(member).name
        out.write_text(content, encoding="utf-8", newline="")
        assert formats.read_hypotheses(out, testset, "s") == expected


# -------------------------------------------------------------------------------- configs and manifests

CONFIG_KEYS = ["data", "model.preset", "model.embed_dim", "model.dropout", "training.lr", "training.max_updates",
               "training.max_tokens", "training.seed", "validation.metric", "validation.every_updates",
               "checkpoint.every_updates", "decoding.beam", "nonsense.key", "training"]
YAML_VALUES = st.one_of(
    st.sampled_from(["", "1", "-1", "0", "1e-3", "nan", ".inf", "true", "null", "~", "[1, 2]", "{a: 1}", "x: y",
                     "&a [*a]", "*a", "!!python/object:os.system x", "'unterminated", "[" * 200, "1" * 5000,
                     "small", "bleu", "chrf", "2", "64", "0.001", "500"]),
    strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS)), max_size=10),
)


VALID_OVERRIDES = st.sampled_from(["training.lr=5e-4", "model.preset=small", "validation.metric=bleu",
                                   "training.seed=7", "model.embed_dim=64", "checkpoint.every_updates=100"])


@counted("config.load_train_config --set")
@given(overrides=st.lists(st.one_of(
    VALID_OVERRIDES, VALID_OVERRIDES, VALID_OVERRIDES,
    st.tuples(st.sampled_from(CONFIG_KEYS), YAML_VALUES).map("=".join),
    strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS + ["=", "."])), max_size=12)), max_size=4))
@example(overrides=["data=" + "1" * 5000])  # an integer Python will not convert
@example(overrides=["training.lr=" + "[" * 5000])
@example(overrides=["training=&a [*a, *a]"])
@example(overrides=["training=", "training.lr=5e-4"])  # a key set to a scalar, then used as a section
@example(overrides=["training.lr=null"])
@example(overrides=["training.max_updates=null"])
@example(overrides=["model.embed_dim=.inf"])
def test_train_config_overrides_give_a_config_or_a_one_line_error(overrides):
    from nmt.config import TrainConfig, load_train_config

    try:
        cfg = load_train_config(None, ["data=/nonexistent/prepared"] + overrides)
    except NmtError as exc:
        _count("config.load_train_config --set", "NmtError")
        one_line(str(exc))
        return
    _count("config.load_train_config --set", "result")
    assert isinstance(cfg, TrainConfig)


@st.composite
def valid_manifests(draw):
    """A manifest that names existing corpora (written as YAML block style or as JSON), sometimes spoiled."""
    import yaml

    pairs = {}
    for pair in draw(st.lists(st.sampled_from(["de_DE-en_XX", "ja_XX-en_XX", "en_XX-de_DE"]), min_size=1,
                              max_size=3, unique=True)):
        a, b = pair.split("-")
        entry = st.one_of(st.just("corpus"), st.just({a: f"corpus.{a}", b: f"corpus.{b}"}))
        splits = {"train": draw(st.one_of(entry, st.lists(entry, min_size=1, max_size=2)))}
        if draw(st.booleans()):
            splits["valid"] = draw(st.lists(entry, max_size=2))
        pairs[pair] = splits
    spec = {"pairs": pairs}
    if draw(st.booleans()):  # one value replaced by anything
        pair = draw(st.sampled_from(sorted(pairs)))
        pairs[pair][draw(st.sampled_from(["train", "valid", "test"]))] = draw(
            st.one_of(st.none(), st.integers(), any_text, st.lists(any_text, max_size=2)))
    return yaml.safe_dump(spec, allow_unicode=True) if draw(st.booleans()) else json.dumps(spec)


MANIFEST_TEXTS = st.one_of(
    valid_manifests(), valid_manifests(), valid_manifests(),
    st.sampled_from(["", "pairs:", "pairs: []", "pairs: {de_DE-en_XX: {train: [corpus]}}",
                     "pairs: {de_DE-en_XX: {train: corpus, valid: [corpus]}}",
                     "pairs: {de_DE-en_XX: {train: [{de_DE: c.de_DE, en_XX: c.en_XX}]}}",
                     "pairs: {xx_XX-en_XX: {train: [corpus]}}", "pairs: {de_DE-en_XX: {test: [corpus]}}",
                     "a: &a [*a, *a]\nb: &b [*a, *a]\npairs: {de_DE-en_XX: {train: *b}}",
                     "pairs: !!python/object/apply:os.system [echo]", "{" * 300, "pairs: " + "[" * 2000]),
    st.recursive(st.one_of(st.none(), st.integers(), st.sampled_from(["corpus", "de_DE-en_XX", "train", "pairs"]),
                           any_text),
                 lambda inner: st.one_of(st.lists(inner, max_size=3),
                                         st.dictionaries(st.sampled_from(["pairs", "de_DE-en_XX", "train", "valid",
                                                                          "de_DE", "en_XX", "x"]), inner,
                                                         max_size=3)),
                 max_leaves=8).map(lambda v: json.dumps(v)),  # JSON is YAML
    strings(st.one_of(CLEAN_CHAR, st.sampled_from(SPECIALS + [":", "-", "[", "{", "&", "*", "!", "\n  "])),
            max_size=30),
)


@counted("data.corpus.load_manifest")
@given(text=MANIFEST_TEXTS)
@example(text="pairs: " + "1" * 5000)  # an integer Python will not convert
@example(text="pairs: {de_DE-en_XX: {train: [corpus]}}\nx: " + "[" * 5000)
@example(text='{"pairs": {"de_DE-en_XX": {"train": 1}}}')  # not a list of corpora
@example(text='{"pairs": {"de_DE-en_XX": {"train": "\\n"}}}')  # a path with a line break: quoted in the error
def test_prepare_manifest_gives_pairs_or_a_one_line_error(text):
    from nmt.data.corpus import load_manifest

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("corpus.de_DE", "corpus.en_XX", "corpus.ja_XX", "c.de_DE", "c.en_XX"):
            (Path(tmp) / name).write_text("Hallo\n", encoding="utf-8")
        path = Path(tmp) / "manifest.yaml"
        try:
            path.write_text(text, encoding="utf-8")
        except UnicodeEncodeError:
            return
        try:
            pairs = load_manifest(path)
        except NmtError as exc:
            _count("data.corpus.load_manifest", "NmtError")
            one_line(str(exc))
            return
        _count("data.corpus.load_manifest", "result")
        assert pairs and isinstance(pairs, dict)
