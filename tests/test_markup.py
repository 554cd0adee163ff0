"""Sentence splitting and HTML markup without a model: the splitter on real sample text, and
the HTML round trip with a stand-in translation (each sentence reversed word by word), so that
what is checked is the markup's own work: tags, attributes, entities and kept elements
unchanged, text replaced, inline tags projected, well-formed output."""
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SAMPLE_RAW
from nmt.translate import markup
from nmt.translate.sentences import segment_lines, split_line

DE = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
JA = (SAMPLE_RAW / "test.ja_XX-en_XX.ja_XX").read_text(encoding="utf-8").splitlines()
EN = (SAMPLE_RAW / "test.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines()


def _sentences(lines, n):
    """n sample lines that the splitter sees as one sentence each and that end a sentence."""
    picked = [line for line in lines if re.search(r"[.!?。！？]$", line) and len(split_line(line, "de", "always")) == 1]
    return picked[:n]


def test_split_modes_on_a_paragraph_of_sample_sentences():
    three = _sentences(DE, 3)
    paragraph = " ".join(three)
    assert split_line(paragraph, "de", "auto") == three
    assert split_line(paragraph, "de", "always") == three
    assert split_line(paragraph, "de", "never") == [paragraph]
    assert split_line(three[0], "de", "auto") == [three[0]]  # one sentence: the line itself, unchanged


def test_japanese_paragraph_without_spaces_is_split():
    two = [line for line in JA if line.endswith("。") and len(split_line(line, "ja", "always")) == 1][:2]
    assert split_line("".join(two), "ja", "auto") == two


def test_auto_keeps_fragments_with_their_sentence():
    line = "1. " + EN[0]
    assert split_line(line, "en", "auto") == [line]  # a list number is not a sentence of its own
    assert len(split_line("Hello there. " + EN[0], "en", "auto")) == 2


def test_segment_lines_keeps_every_line():
    lines = [" ".join(_sentences(DE, 2)), "", None, DE[0]]
    cut = segment_lines(lines, "de_DE", "auto")
    assert len(cut.starts) == len(lines) + 1
    assert [len(cut.owned(cut.units, i)) for i in range(len(lines))] == [2, 1, 1, 1]
    assert cut.owned(cut.units, 2) == [None]


def _reverse_words(units):
    return [" ".join(reversed(u.split(" "))) for u in units]


def _render(text, src="en_XX", tgt="de_DE", translate=_reverse_words):
    parsed = markup.parse_documents([text], src, "auto")
    return markup.render_documents(parsed, translate([u for d in parsed for u in d.units]), tgt)[0], parsed[0]


def _tags(text):
    return re.findall(r"<[^>]+>", text)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>A short page</title>
<style>p > b { color: red; }</style></head>
<body>
  <h1 class="big">Welcome to the test page</h1>
  <p>This is <b>very</b> important. Read <a href="/a?x=1&amp;y=2" title="keep me">the second sentence</a> too!</p>
  <p translate="no">Do not translate this line.</p>
  <p>Run <code>ls -l &amp;&amp; pwd</code> in a shell &mdash; then&nbsp;wait.</p>
  <ul><li>First item</li><li><i>Second</i> item</li></ul>
  <script>var s = "<p>not text</p>";</script>
  <!-- a comment -->
</body></html>"""


def test_html_document_round_trip():
    out, doc = _render(PAGE)
    assert _tags(out) == _tags(PAGE)  # every tag, with its attributes, in the same order
    assert "<style>p > b { color: red; }</style>" in out
    assert '<script>var s = "<p>not text</p>";</script>' in out
    assert '<p translate="no">Do not translate this line.</p>' in out
    assert "<code>ls -l &amp;&amp; pwd</code>" in out
    assert "&mdash;" in out and "&nbsp;" in out  # references the source used are written the same way
    assert "<!-- a comment -->" in out
    assert "<title>page short A</title>" in out
    assert re.search(r"<b>\w+</b>", out)  # a tag around a word wraps one whole word of the translation
    assert "Do not translate" not in " ".join(doc.units)
    assert "ls -l" not in " ".join(doc.units)
    assert "This is very important." in doc.units and "Read the second sentence too!" in doc.units


def test_inline_tag_around_a_whole_sentence_wraps_its_translation():
    out, _ = _render("<p>First sentence here. <b>Second sentence here.</b> Third one.</p>")
    assert "<b>here. sentence Second</b>" in out


def test_unspaced_target_places_tags_on_characters():
    out, _ = _render("<p>Good <b>morning</b> friends.</p>", tgt="ja_XX", translate=lambda us: ["おはよう友達。" for _ in us])
    assert _tags(out) == ["<p>", "<b>", "</b>", "</p>"]
    assert re.sub(r"<[^>]+>", "", out) == "おはよう友達。"


words = st.sampled_from(EN[:30]).map(lambda s: s.split(" ")[:6])
inline = st.sampled_from(["b", "i", "a", "span", "em"])


@st.composite
def fragments(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.booleans()):
            tag = draw(inline)
            parts.append(f'<{tag} data-n="{draw(st.integers(0, 9))}">{draw(fragments(depth + 1))}</{tag}>')
        else:
            parts.append(" ".join(draw(words)))
    return " ".join(parts)


@settings(max_examples=60, deadline=None)
@given(fragments(), st.sampled_from(["de_DE", "ja_XX"]))
def test_well_formed_input_gives_well_formed_output(fragment, tgt):
    source = f"<div><p>{fragment}</p><p>{fragment}</p></div>"
    ET.fromstring(source)
    out, _ = _render(source, tgt=tgt)
    ET.fromstring(out)  # raises if the output is not well-formed
    assert _tags(out) == _tags(source)


def test_a_splitter_that_changes_text_is_caught():
    doc = markup.HtmlDocument("<p>One. Two.</p>", lambda text: ["Uno."])
    assert doc.units == ["One. Two."]
    with pytest.raises(ValueError):
        doc.render([])
