"""Property-based tests (Hypothesis) of what faces the network: the archive extractor and checker
(``nmt.archives``, used by ``nmt download`` and ``nmt data get``) and ``nmt serve``'s request schema.

Every property says: whatever the input, either a correct result or a one-line refusal; never a
file outside the target directory, never a 500, never a count of translations that differs from
the count of texts, never a line break lost. Example counts: ``NMT_HYPOTHESIS_EXAMPLES`` (default
40 per property), as in tests/test_properties.py."""
from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nmt import archives
from nmt.errors import NmtError
from test_serve import exported, serving  # noqa: F401

EXAMPLES = int(os.environ.get("NMT_HYPOTHESIS_EXAMPLES", "40"))
# the default run (and CI) draws the same examples every time; NMT_HYPOTHESIS_RANDOM=1 explores new ones
DERANDOMIZE = os.environ.get("NMT_HYPOTHESIS_RANDOM") != "1"
settings.register_profile("nmt-hostile", max_examples=EXAMPLES, derandomize=DERANDOMIZE, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
PROFILE = settings.get_profile("nmt-hostile")


def one_line(message: str) -> str:
    assert message and "\n" not in message and "Traceback" not in message, repr(message)
    return message


# --------------------------------------------------------------------------- archives

segment = st.sampled_from(["a", "b", "corpus", "..", ".", "x.txt", "link", "d"])
member_path = st.builds(lambda absolute, parts: ("/" if absolute else "") + "/".join(parts),
                        st.booleans(), st.lists(segment, min_size=1, max_size=4))
member = st.tuples(member_path, st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"]), member_path,
                   st.binary(max_size=20))


def _tar(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind, target, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            info.linkname = target if kind in ("symlink", "hardlink") else ""
            tar.addfile(info)
    return buf.getvalue()


def _everything_under(root: Path) -> list[Path]:
    return [Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files]


@PROFILE
@given(members=st.lists(member, min_size=1, max_size=6), internal_links=st.booleans())
@example(members=[("corpus/link", "symlink", "/tmp", b""), ("corpus/link/x.txt", "file", "", b"x")],
         internal_links=True)
@example(members=[("corpus/l", "symlink", "../..", b""), ("corpus/l/x", "file", "", b"x")], internal_links=True)
@example(members=[("a", "file", "", b"x"), ("b", "hardlink", "a", b""), ("c", "symlink", "b", b"")],
         internal_links=True)
@example(members=[("p", "symlink", "q/..", b""), ("q", "symlink", ".", b"")], internal_links=True)
def test_safe_extract_writes_only_inside_its_directory_or_refuses_in_one_line(members, internal_links):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "outside").mkdir()
        archive = root / "in.tar.gz"
        archive.write_bytes(_tar(members))
        dest = root / "sandbox" / "dest"
        dest.mkdir(parents=True)
        try:
            archives.safe_extract(archive, dest, internal_links=internal_links)
        except NmtError as exc:
            one_line(str(exc))
        else:
            for path in _everything_under(dest):
                real = os.path.realpath(path)
                assert real == str(dest.resolve()) or real.startswith(str(dest.resolve()) + os.sep), path
                assert path.is_symlink() or path.is_dir() or path.is_file(), path  # no FIFO, no device
                if path.is_symlink():
                    assert internal_links
        assert list((root / "outside").iterdir()) == []
        assert sorted(p.name for p in root.iterdir()) == ["in.tar.gz", "outside", "sandbox"]
        assert [p.name for p in (root / "sandbox").iterdir()] == ["dest"]


@PROFILE
@given(data=st.binary(max_size=300), kind=st.sampled_from([".gz", ".xz", ".bz2", ".zip", ".tar.gz", ".tar"]),
       compress=st.booleans())
def test_check_archive_passes_a_sound_file_or_refuses_and_deletes_it_in_one_line(data, kind, compress):
    import bz2
    import gzip
    import lzma

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"file{kind}"
        if compress and kind in (".gz", ".xz", ".bz2"):
            data = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}[kind](data)
        path.write_bytes(data)
        try:
            archives.check_archive(path, "test", "host")
        except NmtError as exc:
            one_line(str(exc))
            assert not path.exists()
        else:
            assert path.exists()


# --------------------------------------------------------------------------- the serve request schema

text = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(["\n", "\r", "\u2028", "\x00", "\t"]),
                         st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)), max_size=30)
value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False), text),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                     max_leaves=6)


@st.composite
def requests(draw):
    """A /v1/translate or /translate body: mostly well-formed, with every field possibly wrong."""
    libre = draw(st.booleans())
    texts = draw(st.one_of(st.lists(text, max_size=5), value)) if draw(st.booleans()) else draw(st.lists(text,
                                                                                                        max_size=5))
    body = {"q" if libre else "texts": texts if not libre or draw(st.booleans()) else (draw(text)),
            "source": draw(st.sampled_from(["de", "de_DE", "en", "xx", "auto", ""])),
            "target": draw(st.sampled_from(["en", "en_XX", "ja", "de"]))}
    for key, options in (("beam", st.integers(-1, 12)), ("nbest", st.integers(0, 4)), ("alternatives",
                                                                                         st.integers(-1, 12))):
        if draw(st.booleans()):
            body[key] = draw(options)
    if draw(st.integers(0, 9)) == 0:
        body[draw(text)] = draw(value)
    return ("/translate" if libre else "/v1/translate"), body


@pytest.fixture(scope="module")
def server(exported):
    with serving("-m", exported, "--max-lines", 8, "--max-chars", 200) as running:
        yield running


def _lines(text: str, libre: bool = False) -> int:
    """Lines as each route counts them: /v1 breaks at LF (and CRLF), the LibreTranslate route at CR too."""
    return len(re.split(r"\r\n|\r|\n", text)) if libre else text.count("\n") + 1


@PROFILE
@given(request=requests())
@example(request=("/v1/translate", {"texts": ["a\nb", "", "\ud800"], "source": "de", "target": "en"}))
@example(request=("/translate", {"q": "0\r", "source": "de", "target": "en"}))
@example(request=("/translate", {"q": "eins\n\nzwei\r\ndrei", "source": "de", "target": "en", "alternatives": 2}))
def test_serve_answers_every_body_with_a_translation_per_text_or_one_line(server, request):
    from test_serve import call

    path, body = request
    raw = json.dumps(body, ensure_ascii=True).encode()  # lone surrogates travel as JSON escapes
    status, _, answer = call(server.url, path, raw=raw)
    assert status in (200, 400, 413, 422), (status, answer)
    if status != 200:
        assert set(answer) == {"error"}
        one_line(answer["error"])
        return
    texts = body["texts"] if path == "/v1/translate" else body["q"]
    out = answer["translations"] if path == "/v1/translate" else answer["translatedText"]
    libre = path == "/translate"
    if isinstance(texts, str):
        assert isinstance(out, str) and _lines(out, libre) == _lines(texts, libre), (texts, out)
        return
    assert len(out) == len(texts)
    for given_text, got in zip(texts, out):
        got = got["text"] if isinstance(got, dict) else got
        assert _lines(got, libre) == _lines(given_text, libre), (given_text, got)
