"""HTML in, HTML out: translate the text, keep the markup.

The document is read by Python's own HTML parser (``html.parser``, the tokenizer
that BeautifulSoup's default builder uses), with character references reported
apart, and every token keeps its exact source text. What is kept byte for byte:
tags with their attributes, comments, the doctype, and everything inside
``<script>``, ``<style>``, ``<code>``, ``<pre>``, ``<kbd>``, ``<samp>``, ``<var>``,
``<textarea>``, ``<svg>``, ``<math>``, ``<template>`` and any element with
``translate="no"`` or the class ``notranslate``.

Text is translated by *runs*: the text between two block boundaries (any tag
that is not inline: ``<p>``, ``<li>``, ``<td>``, ``<br>`` is inline), with the
inline tags inside it (``<b>``, ``<a href>``, ``<span>``, ...) taken out of the
text as *marks* at character positions. A run's text, whitespace collapsed as a
browser shows it, is split into sentences; the sentences of every run of every
document go to the model together.

Where the inline tags go (source-position projection): a mark that sat at
relative position x inside source sentence k is put at relative position x inside
translated sentence k, moved to the nearest word boundary (targets written with
spaces) or left on the character (Japanese, Chinese, Thai, ...). Marks between
sentences stay between the translated sentences, so a tag that wrapped whole
sentences wraps their translations exactly; a tag inside a sentence wraps roughly
the same share of the translated sentence, which need not be the translation of
the words it covered (word order differs between languages, and the engine gives
no word alignment). Marks keep their order, so the sequence of tags in the output
is the sequence in the input: well-formed input gives well-formed output. An
untranslatable inline element (``<code>`` inside a sentence) is one mark: its
text is kept, not translated, and the sentence is translated without it.

Characters that the source wrote as character references (``&nbsp;``, ``&copy;``)
are written with the same reference when the translation contains them; ``&``,
``<`` and ``>`` are always escaped.
"""
from __future__ import annotations

import dataclasses
import html
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from html.parser import HTMLParser

from nmt import langs
from nmt.translate import sentences

INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "big", "br", "cite", "data", "del", "dfn", "em", "font", "i",
                    "img", "ins", "label", "mark", "q", "s", "small", "span", "strike", "strong", "sub", "sup",
                    "time", "tt", "u", "wbr"})
OPAQUE = frozenset({"script", "style", "code", "pre", "kbd", "samp", "var", "textarea", "svg", "math", "template"})
OPAQUE_INLINE = frozenset({"code", "kbd", "samp", "var"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})
_SPACES = re.compile(r"[ \t\n\r\f]+")
_WORD = re.compile(r"\w")
_LETTER = re.compile(r"[^\W\d_]")


class _Tokenizer(HTMLParser):
    """Token kinds, tag names, attributes and source offsets; the source text of each token is
    the slice up to the next token's offset."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=False)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.tokens: list[list] = []  # [kind, tag, attrs, start]
        self.feed(text)
        self.close()
        ends = [t[3] for t in self.tokens[1:]] + [len(text)]
        self.raw = [text[t[3]:end] for t, end in zip(self.tokens, ends)]
        if self.tokens and self.tokens[0][3] > 0:  # cannot happen with html.parser, but never lose text
            self.tokens.insert(0, ["data", None, [], 0])
            self.raw.insert(0, text[:self.tokens[1][3]])

    def _add(self, kind, tag=None, attrs=()):
        line, column = self.getpos()
        self.tokens.append([kind, tag, list(attrs), self._line_starts[line - 1] + column])

    def handle_starttag(self, tag, attrs):
        self._add("start", tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._add("void", tag, attrs)

    def handle_endtag(self, tag):
        self._add("end", tag)

    def handle_data(self, data):
        self._add("data")

    def handle_entityref(self, name):
        self._add("ref")

    def handle_charref(self, name):
        self._add("ref")

    def handle_comment(self, data):
        self._add("other")

    def handle_decl(self, decl):
        self._add("other")

    def handle_pi(self, data):
        self._add("other")

    def unknown_decl(self, data):
        self._add("other")


def _untranslatable(tag: str, attrs) -> bool:
    values = dict(attrs)
    return (tag in OPAQUE or (values.get("translate") or "").strip().lower() == "no"
            or "notranslate" in (values.get("class") or "").split())


@dataclass
class _Run:
    text: str = ""  # decoded text
    marks: list = field(default_factory=list)  # (position in text, raw)
    raw: list = field(default_factory=list)  # source text of every token, to give back unchanged
    refs: dict = field(default_factory=dict)  # character -> the reference the source wrote it with
    # filled by prepare(): collapsed text, its sentence spans, the marks' collapsed positions
    norm: str = ""
    spans: list = field(default_factory=list)
    positions: list = field(default_factory=list)


class HtmlDocument:
    """One HTML document or fragment: ``units`` (sentences) to translate, then ``render(translations)``."""

    def __init__(self, text: str, split):
        """``split(text) -> sentences`` (stripped, in order, each a substring of ``text``)."""
        tokens = _Tokenizer(text)
        self.parts: list = []  # str (kept) or _Run
        self.units: list[str] = []
        run = _Run()
        kinds, raws = tokens.tokens, tokens.raw
        i = 0
        while i < len(kinds):
            kind, tag, attrs, _ = kinds[i]
            raw = raws[i]
            if kind == "start" and tag not in VOID and _untranslatable(tag, attrs):
                j = _matching_end(kinds, i)
                raw = "".join(raws[i:j + 1])
                i = j
                if tag in OPAQUE_INLINE or (tag in INLINE and tag not in VOID):
                    # kept text standing as a word between spaces keeps its spaces in the translation
                    after = raws[i + 1] if i + 1 < len(raws) and kinds[i + 1][0] == "data" else ""
                    padded = run.text[-1:].isspace() and after[:1].isspace()
                    run.marks.append((len(run.text), raw, padded))
                    run.raw.append(raw)
                else:
                    run = self._flush(run, split)
                    self.parts.append(raw)
            elif kind == "data":
                run.text += raw
                run.raw.append(raw)
            elif kind == "ref":
                char = html.unescape(raw)
                if char != raw and len(char) == 1:
                    run.refs.setdefault(char, raw)
                run.text += char
                run.raw.append(raw)
            elif (kind in ("start", "end", "void") and tag in INLINE) or (kind == "other" and raw.startswith("<!--")):
                run.marks.append((len(run.text), raw, False))
                run.raw.append(raw)
            else:
                run = self._flush(run, split)
                self.parts.append(raw)
            i += 1
        self._flush(run, split)

    def _flush(self, run: _Run, split) -> _Run:
        if not run.raw:
            return run
        norm, index = _collapse(run.text)
        if not _LETTER.search(norm):  # numbers, punctuation: nothing to translate
            self.parts.append("".join(run.raw))
            return _Run()
        run.norm = norm
        cursor = 0
        for sentence in split(norm):
            start = norm.find(sentence, cursor)
            if start < 0:  # the splitter changed the text: translate the run whole
                run.spans = [(0, len(norm))]
                break
            run.spans.append((start, start + len(sentence)))
            cursor = start + len(sentence)
        run.spans = run.spans or [(0, len(norm))]
        run.positions = [index[p] for p, _, _ in run.marks]
        self.units.extend(norm[a:b] for a, b in run.spans)
        self.parts.append(run)
        return _Run()

    def render(self, translations: list[str], joiner: str = " ", spaced: bool = True) -> str:
        """The document with ``translations`` (one per unit, in order) in place of its text."""
        if len(translations) != len(self.units):
            raise ValueError(f"{len(translations)} translations for {len(self.units)} sentences")
        out, k = [], 0
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            count = len(part.spans)
            out.append(_render_run(part, translations[k:k + count], joiner, spaced))
            k += count
        return "".join(out)


def _matching_end(kinds, i: int) -> int:
    """Index of the end tag that closes the element started at ``i`` (the last token if none does)."""
    tag, depth = kinds[i][1], 0
    for j in range(i, len(kinds)):
        kind, name = kinds[j][0], kinds[j][1]
        if name == tag and kind == "start":
            depth += 1
        elif name == tag and kind == "end":
            depth -= 1
            if depth == 0:
                return j
    return len(kinds) - 1


def _collapse(text: str) -> tuple[str, list[int]]:
    """``text`` with runs of HTML whitespace made one space and the ends stripped, and the collapsed
    position of every position of ``text`` (``len(text) + 1`` entries; whitespace maps to the end of
    the word before it)."""
    out: list[str] = []
    index: list[int] = []
    pending = False
    for ch in text:
        if ch in " \t\n\r\f":
            pending = bool(out)
            index.append(len(out))
            continue
        if pending:
            out.append(" ")
            pending = False
        index.append(len(out))
        out.append(ch)
    index.append(len(out))
    return "".join(out), index


def _boundaries(text: str, raw: str) -> list[int]:
    """Positions between a space, a word character and anything else (and the two ends); an end
    tag goes after a word, a start tag before one."""
    kinds = [0 if c.isspace() else 1 if _WORD.match(c) else 2 for c in text]
    found = [i for i in range(len(text) + 1) if i == 0 or i == len(text) or kinds[i - 1] != kinds[i]]
    if raw.startswith("</"):
        return [i for i in found if i == 0 or kinds[i - 1] == 1] or found
    if raw.startswith("<") and raw[1:2].isalpha():
        return [i for i in found if i == len(text) or kinds[i] == 1] or found
    return found


def _render_run(run: _Run, translations: list[str], joiner: str, spaced: bool) -> str:
    pieces, starts = [], []
    length = 0
    for text in translations:
        text = text.strip()
        if pieces and text:
            pieces.append(joiner)
            length += len(joiner)
        starts.append(length)
        pieces.append(text)
        length += len(text)
    target = "".join(pieces)
    sentence_starts = [a for a, _ in run.spans]
    placed, last = [], 0
    for position, (_, raw, padded) in zip(run.positions, run.marks):
        k = max(0, bisect_right(sentence_starts, position) - 1)
        a, b = run.spans[k]
        translated = translations[k].strip()
        share = min(1.0, max(0.0, (position - a) / max(1, b - a)))
        offset = round(share * len(translated))
        if spaced and 0 < offset < len(translated):
            later = -1 if raw.startswith("</") else 1  # a tie: an end tag takes the later place
            offset = min(_boundaries(translated, raw), key=lambda bound: (abs(bound - offset), later * bound))
        where = max(last, starts[k] + offset)
        placed.append((where, raw, padded))
        last = where
    lead = run.text[:len(run.text) - len(run.text.lstrip(" \t\n\r\f"))]
    trail = run.text[len(run.text.rstrip(" \t\n\r\f")):] if run.text.strip(" \t\n\r\f") else ""
    out, cursor = [_escape(lead, run.refs)], 0
    for where, raw, padded in placed:
        out.append(_escape(target[cursor:where], run.refs))
        if padded and spaced and 0 < where < len(target):
            raw = ("" if target[where - 1].isspace() else " ") + raw + ("" if target[where].isspace() else " ")
        out.append(raw)
        cursor = where
    out.append(_escape(target[cursor:], run.refs))
    out.append(_escape(trail, run.refs))
    return "".join(out)


def _escape(text: str, refs: dict) -> str:
    basic = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
    if not text or not (refs or any(c in text for c in basic)):
        return text
    return "".join(refs.get(c) or basic.get(c, c) for c in text)


def parse_documents(documents, src: str, mode: str) -> list[HtmlDocument]:
    """Parse HTML documents in ``src``, their text split into sentences as ``mode`` says."""
    iso = langs.get(src).iso
    return [HtmlDocument(doc or "", lambda text: sentences.split_line(text, iso, mode)) for doc in documents]


def render_documents(parsed: list[HtmlDocument], translations: list[str], tgt: str) -> list[str]:
    """Each document with its share of ``translations`` (every document's units, in order)."""
    joiner, spaced = sentences.joiner(tgt), langs.get(tgt).spaces
    out, k = [], 0
    for doc in parsed:
        out.append(doc.render(translations[k:k + len(doc.units)], joiner, spaced))
        k += len(doc.units)
    return out


def translate_html(translator, documents, src: str, tgt: str, options, **kwargs) -> tuple[list[str], list[str]]:
    """Translate HTML documents with a ``Translator``: (documents, warnings). The sentences of every
    document go to the translator in one call."""
    parsed = parse_documents(documents, src, options.split_sentences)
    units = [unit for doc in parsed for unit in doc.units]
    results = translator.translate(units, src, tgt, dataclasses.replace(options, split_sentences="never"), **kwargs)
    warnings = [r.warning.split(": ", 1)[-1] for r in results if r.warning]
    return render_documents(parsed, [r.text for r in results], tgt), warnings
