"""Paragraphs through every translating command: sentences of all lines batched together and
joined back per line (no space for Japanese), alignment kept; --format html; nmt translate-file
for .txt, .html, .docx and .srt; translate-corpus and package with splitting. Real sample text,
the tiny trained model."""
import json
import re
import tarfile

import docx
import pytest
import srt

from conftest import SAMPLE, SAMPLE_RAW, run_nmt
from nmt.translate.sentences import split_line

DE = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
EN = (SAMPLE_RAW / "test.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines()
SINGLE = [line for line in DE if re.search(r"[.!?]$", line) and len(split_line(line, "de", "always")) == 1]
SINGLE_EN = [line for line in EN if re.search(r"[.!?]$", line) and len(split_line(line, "en", "always")) == 1]


def nmt_translate(bundle, tmp_path, lines, src, tgt, *extra, raw: bytes | None = None):
    path = tmp_path / f"in.{len(list(tmp_path.iterdir()))}.txt"
    path.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode())
    result = run_nmt("translate", "-m", bundle, "-s", src, "-t", tgt, "-i", path, "--beam", "1", *extra)
    assert result.returncode == 0, result.stderr[-1500:]
    return result.stdout.split("\n")[:-1], result.stderr


def test_paragraphs_are_translated_sentence_by_sentence(trained_bundle, tmp_path):
    paragraphs = [" ".join(SINGLE[0:3]), SINGLE[3], "", " ".join(SINGLE[4:6])]
    sentences = SINGLE[0:6]
    alone, _ = nmt_translate(trained_bundle, tmp_path, sentences, "de_DE", "en_XX", "--split-sentences", "never")
    got, _ = nmt_translate(trained_bundle, tmp_path, paragraphs, "de_DE", "en_XX")  # auto is the default
    # the same units in the same batches: each paragraph is exactly its sentences' translations, joined
    assert got == [" ".join(alone[0:3]), alone[3], "", " ".join(alone[4:6])]
    whole, _ = nmt_translate(trained_bundle, tmp_path, paragraphs, "de_DE", "en_XX", "--split-sentences", "never")
    assert len(whole) == len(paragraphs) and whole[1] == alone[3] and whole[0] != got[0]


def test_japanese_target_joins_without_spaces_and_alignment_holds(trained_bundle, tmp_path):
    paragraphs = [" ".join(SINGLE_EN[0:2]), SINGLE_EN[2]]
    alone, _ = nmt_translate(trained_bundle, tmp_path, SINGLE_EN[0:3], "en_XX", "ja_XX", "--split-sentences", "never")
    raw = ("\n".join(paragraphs) + "\n").encode() + b"\xff\xfe broken\n" + (" ".join(SINGLE_EN[3:5]) + "\n").encode()
    got, err = nmt_translate(trained_bundle, tmp_path, None, "en_XX", "ja_XX", "--split-sentences", "always", raw=raw)
    assert len(got) == 4 and got[0] == alone[0] + alone[1] and got[1] == alone[2]
    assert got[2] == "" and "line 3: not valid UTF-8" in err


def test_jsonl_and_nbest_with_split(trained_bundle, tmp_path):
    got, _ = nmt_translate(trained_bundle, tmp_path, [" ".join(SINGLE[0:2])], "de_DE", "en_XX", "--format", "jsonl",
                           "--beam", "3", "--nbest", "2")
    record = json.loads(got[0])
    assert len(record["nbest"]) == 2 and record["nbest"][0]["translation"] == record["translation"]
    assert isinstance(record["score"], float)


def test_html_lines(trained_bundle, tmp_path):
    lines = [f'<p>{SINGLE[0]} <a href="/x?a=1&amp;b=2">{SINGLE[1]}</a></p>', "<br>", f"<code>{SINGLE[2]}</code>",
             f"<ul><li>{SINGLE[3]}</li><li translate=\"no\">{SINGLE[4]}</li></ul>"]
    got, _ = nmt_translate(trained_bundle, tmp_path, lines, "de_DE", "en_XX", "--format", "html")
    plain, _ = nmt_translate(trained_bundle, tmp_path, [SINGLE[0], SINGLE[1], SINGLE[3]], "de_DE", "en_XX",
                             "--split-sentences", "never")
    assert len(got) == len(lines)
    for source, out in zip(lines, got):
        assert re.findall(r"<[^>]+>", out) == re.findall(r"<[^>]+>", source)
    assert f'<a href="/x?a=1&amp;b=2">{plain[1].replace("&", "&amp;")}</a>' in got[0]
    assert got[1] == "<br>" and got[2] == lines[2]
    assert f"<li>{plain[2]}</li>" in got[3] and f'<li translate="no">{SINGLE[4]}</li>' in got[3]
    result = run_nmt("translate", "-m", trained_bundle, "--tsv", "--format", "html", input="x\n")
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "--tsv" in result.stderr


def translate_file(bundle, src_path, out_path, *extra):
    return run_nmt("translate-file", src_path, out_path, "-m", bundle, "-s", "de_DE", "-t", "en_XX", "--beam", "1",
                   *extra)


def test_translate_file_txt_and_html(trained_bundle, tmp_path):
    source = tmp_path / "letter.txt"
    source.write_bytes(f"{SINGLE[0]} {SINGLE[1]}\r\n\r\n{SINGLE[2]}\r\n".encode())
    result = translate_file(trained_bundle, source, tmp_path / "letter.en.txt")
    assert result.returncode == 0, result.stderr
    plain, _ = nmt_translate(trained_bundle, tmp_path, SINGLE[0:3], "de_DE", "en_XX", "--split-sentences", "never")
    assert (tmp_path / "letter.en.txt").read_bytes() == f"{plain[0]} {plain[1]}\r\n\r\n{plain[2]}\r\n".encode()
    page = tmp_path / "page.html"
    page.write_text(f"<!DOCTYPE html>\n<html><head><title>{SINGLE[3]}</title></head>\n<body>\n  <p>{SINGLE[4]}</p>\n"
                    f"  <pre>{SINGLE[5]}</pre>\n</body></html>\n", encoding="utf-8")
    assert translate_file(trained_bundle, page, tmp_path / "page.en.html").returncode == 0
    out = (tmp_path / "page.en.html").read_text(encoding="utf-8")
    assert re.findall(r"<[^>]+>", out) == re.findall(r"<[^>]+>", page.read_text(encoding="utf-8"))
    assert f"<pre>{SINGLE[5]}</pre>" in out and SINGLE[4] not in out


def test_translate_file_docx_keeps_styles_runs_and_tables(trained_bundle, tmp_path):
    document = docx.Document()
    document.add_heading(SINGLE[0], level=1)
    paragraph = document.add_paragraph(SINGLE[1] + " ", style="List Bullet")
    paragraph.add_run(SINGLE[2]).bold = True
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = SINGLE[3], "12345"
    document.sections[0].footer.paragraphs[0].text = SINGLE[4]
    source = tmp_path / "report.docx"
    document.save(source)
    result = translate_file(trained_bundle, source, tmp_path / "report.en.docx")
    assert result.returncode == 0, result.stderr
    out = docx.Document(tmp_path / "report.en.docx")
    plain, _ = nmt_translate(trained_bundle, tmp_path, SINGLE[0:5], "de_DE", "en_XX", "--split-sentences", "never")
    assert [p.style.name for p in out.paragraphs] == [p.style.name for p in document.paragraphs]
    assert out.paragraphs[0].text == plain[0]
    runs = out.paragraphs[1].runs
    assert len(runs) == 2 and runs[1].bold and not runs[0].bold
    assert out.paragraphs[1].text.split() == f"{plain[1]} {plain[2]}".split()
    assert out.tables[0].cell(0, 0).text == plain[3] and out.tables[0].cell(0, 1).text == "12345"
    assert out.sections[0].footer.paragraphs[0].text == plain[4]


def test_translate_file_srt_keeps_cues(trained_bundle, tmp_path):
    import datetime as dt

    cues = [srt.Subtitle(i + 1, dt.timedelta(seconds=2 * i), dt.timedelta(seconds=2 * i + 1.5), text)
            for i, text in enumerate([SINGLE[0], f"{SINGLE[1]}\n{SINGLE[2]}", f"<i>{SINGLE[3]}</i>"])]
    source = tmp_path / "film.srt"
    source.write_text(srt.compose(cues), encoding="utf-8")
    assert translate_file(trained_bundle, source, tmp_path / "film.en.srt").returncode == 0
    out = list(srt.parse((tmp_path / "film.en.srt").read_text(encoding="utf-8")))
    assert [(c.index, c.start, c.end) for c in out] == [(c.index, c.start, c.end) for c in cues]
    plain, _ = nmt_translate(trained_bundle, tmp_path, SINGLE[0:4], "de_DE", "en_XX", "--split-sentences", "never")
    assert out[0].content == plain[0] and out[2].content == f"<i>{plain[3]}</i>"
    assert out[1].content.count("\n") == 1  # two lines in, two lines out


@pytest.mark.parametrize("name, payload, message", [
    ("notes.pdf", b"%PDF-1.4", "cannot translate .pdf files"),
    ("broken.docx", b"PK\x03\x04 not really", "not a valid .docx file"),
    ("bad.srt", "1\nnot a time\nHallo\n".encode(), "not a valid .srt file"),
    ("latin1.txt", "Grüße".encode("latin-1"), "not UTF-8"),
])
def test_translate_file_errors_are_one_line(trained_bundle, tmp_path, name, payload, message):
    source = tmp_path / name
    source.write_bytes(payload)
    result = translate_file(trained_bundle, source, tmp_path / ("out" + source.suffix))
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / ("out" + source.suffix)).exists()


def test_translate_file_size_limit_and_overwrite(trained_bundle, tmp_path):
    source = tmp_path / "a.txt"
    source.write_text(SINGLE[0] * 20 + "\n", encoding="utf-8")
    result = translate_file(trained_bundle, source, tmp_path / "b.txt", "--max-bytes", "100")
    assert result.returncode != 0 and "the limit is 100" in result.stderr and result.stderr.count("\n") == 1
    (tmp_path / "b.txt").write_text("keep", encoding="utf-8")
    result = translate_file(trained_bundle, source, tmp_path / "b.txt")
    assert result.returncode != 0 and "--force" in result.stderr
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "keep"


def test_corpus_and_package_with_splitting(trained_bundle, tmp_path):
    lines = [" ".join(SINGLE[i:i + 3]) for i in range(0, 12, 3)]
    source = tmp_path / "corpus.de"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_nmt("translate-corpus", "-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", source,
                     "-o", tmp_path / "corpus.en", "--chunk-lines", "2", "--beam", "1")
    assert result.returncode == 0, result.stderr
    first, _ = nmt_translate(trained_bundle, tmp_path, lines[:2], "de_DE", "en_XX")  # chunk 1: the same units
    got = (tmp_path / "corpus.en").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(got) == len(lines) and got[:2] == first
    job = json.loads((tmp_path / "corpus.en.parts" / "job.json").read_text(encoding="utf-8"))
    assert job["options"]["split_sentences"] == "auto"
    wmt = SAMPLE / "wmt" / "wmt24-general" / "sources" / "en-de.txt"
    result = run_nmt("package", wmt, "-o", tmp_path / "sub.tar.gz", "--team", "t", "--system", "s", "--constrained",
                     "-m", trained_bundle, "--beam", "1", "--split-sentences", "auto")
    assert result.returncode == 0, result.stderr
    with tarfile.open(tmp_path / "sub.tar.gz") as tar:
        meta = json.load(tar.extractfile("t.s/metadata.json"))
        card = tar.extractfile("t.s/MODEL_CARD.md").read().decode()
    assert meta["model"]["decoding"]["split_sentences"] == "auto" and "sentence by sentence" in card


def test_evaluate_with_splitting_scores_what_translate_gives(trained_bundle, tmp_path):
    wmt = SAMPLE / "wmt" / "wmt24-general"
    src, ref = wmt / "sources" / "en-de.txt", wmt / "references" / "en-de.refA.txt"
    result = run_nmt("evaluate", "--model", trained_bundle, "--testset", "files", "--src", src, "--ref", ref,
                     "-d", "en_XX-de_DE", "--lines", "2-5", "--beam", "1", "--no-comet", "--split-sentences", "always",
                     "-o", tmp_path / "report")
    assert result.returncode == 0, result.stderr[-1500:]
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["systems"][0]["decode"]["split_sentences"] == "always"
    hyps = (tmp_path / "report" / "hyps").glob("*")
    got = next(hyps).read_text(encoding="utf-8").splitlines()
    lines = src.read_text(encoding="utf-8").splitlines()[1:5]
    expected, _ = nmt_translate(trained_bundle, tmp_path, lines, "en_XX", "de_DE", "--split-sentences", "always")
    assert got == expected
