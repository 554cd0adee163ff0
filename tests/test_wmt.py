"""WMT submission packaging: the XML / txt+docs / JSONL formats on real WMT data, validation, hardened XML
parsing, `nmt package` and `nmt unwrap`. Core tests use the excerpts in data_prep/sample/wmt; the full shared
samples are used when ../shared/data is there."""
import io
import json
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from sacrebleu.dataset.wmt_xml import WMTXMLDataset

from nmt.cli import main
from nmt.errors import NmtError
from nmt.fileio import sha256_file
from nmt.wmt import formats
from nmt.wmt.package import model_language

DATA = Path(__file__).resolve().parents[1] / "data_prep" / "sample" / "wmt"
FMT = DATA / "wmt-format"
W24 = DATA / "wmt24-general"
SRC_XML, SRC_REF_XML, HYP_XML, HYP_HA = (FMT / n for n in ("sample-src.xml", "sample-src-ref.xml", "sample-hyp.xml",
                                                           "sample-hyp.ha"))
EN_DE, EN_JA = W24 / "sources" / "en-de.txt", W24 / "sources" / "en-ja.txt"
REF_DE = W24 / "references" / "en-de.refA.txt"
DOCS_DE = W24 / "documents" / "en-de.docs"


def lines_of(path):
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def hyp_sections(root, system=None):
    """{doc id: [[(seg id, text), ...] per paragraph]} of the <hyp> elements of a WMT XML tree."""
    out = {}
    for doc in root.iter("doc"):
        for hyp in doc.findall("hyp"):
            if system is None or hyp.get("system") == system:
                out[doc.get("id")] = [[(seg.get("id"), seg.text or "") for seg in p] for p in hyp]
    return out


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, (result.output, result.exception)
    err = result.stderr
    assert err.startswith("nmt: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in err, err
    return err


# ------------------------------------------------------------------------------------------- XML round trips

def wrap_sample(src=SRC_XML, system="MT"):
    testset = formats.read_test_set(src, tgt_lang="ha")
    hyps = formats.read_hypotheses(HYP_HA, testset)
    return testset, hyps, formats.render_xml(testset, hyps, system)


@pytest.mark.parametrize("base", [FMT, None], ids=["excerpt", "shared"])
def test_wrapping_sample_hypotheses_reproduces_sample_hyp_xml(base, request):
    if base is None:
        base = request.getfixturevalue("shared_data") / "wmt-format"
    src, ha, expected = base / "sample-src.xml", base / "sample-hyp.ha", base / "sample-hyp.xml"
    testset = formats.read_test_set(src, tgt_lang="ha")
    hyps = formats.read_hypotheses(ha, testset)
    assert hyps == lines_of(ha)
    ours = formats.render_xml(testset, hyps, "MT")
    formats.check_output(ours, "xml", testset, hyps, "MT")
    mine, theirs = ET.fromstring(ours), ET.fromstring(expected.read_bytes())
    # same documents, paragraphs, seg ids and text, and the <src> untouched
    assert [d.get("id") for d in mine.iter("doc")] == [d.get("id") for d in theirs.iter("doc")]
    assert hyp_sections(mine) == hyp_sections(theirs)
    assert [ET.tostring(d.find("src")) for d in mine.iter("doc")] == \
           [ET.tostring(d.find("src")) for d in theirs.iter("doc")]
    # byte for byte the organisers' file, except that we write the schema's lang= where it has language=
    assert ours.decode("utf-8") == expected.read_text(encoding="utf-8").replace('<hyp system="MT" language="ha">',
                                                                                '<hyp system="MT" lang="ha">')
    formats.check_structure(mine, "ours")  # strict: no language= alias
    with pytest.raises(NmtError, match="'language' the schema does not allow"):
        formats.check_structure(theirs, "sample-hyp.xml")


@pytest.mark.parametrize("base", [FMT, None], ids=["excerpt", "shared"])
def test_sacrebleu_reads_our_hypotheses_in_order(base, request):
    if base is None:
        base = request.getfixturevalue("shared_data") / "wmt-format"
    testset = formats.read_test_set(base / "sample-src-ref.xml")
    assert testset.pairs() == [("en", "ha")]  # target language taken from the references
    hyps = formats.read_hypotheses(base / "sample-hyp.ha", testset)
    ours = formats.render_xml(testset, hyps, "nmt-tiny")
    fields = WMTXMLDataset._unwrap_wmt21_or_later(io.BytesIO(ours))
    # sacrebleu skips test-suite documents and segments without a reference
    refs = {(doc.id, seg.get("id")): seg.text for doc in testset.docs for seg in doc.element.iterfind("ref/p/seg")}
    kept = [(u, h) for u, h in zip(testset.units, hyps)
            if u.doc.element.get("testsuite") is None and refs.get((u.doc.id, u.seg))]
    assert len(kept) < len(hyps) and len(fields["nmt-tiny"]) == len(kept)
    assert fields["nmt-tiny"] == [h for _, h in kept]
    assert fields["src"] == [u.text for u, _ in kept]
    assert fields["docid"] == [u.doc.id for u, _ in kept]
    assert fields["ref:A"] == [refs[(u.doc.id, u.seg)] for u, _ in kept]


def test_existing_sections_are_kept_and_hyp_goes_before_supplemental(tmp_path):
    xml = SRC_REF_XML.read_text(encoding="utf-8").replace(
        "    </ref>\n  </doc>", '    </ref>\n    <supplemental type="note">\n      <p>\n        <seg id="1">x</seg>\n'
                                '      </p>\n    </supplemental>\n  </doc>', 1)
    path = tmp_path / "with-supplemental.xml"
    path.write_text(xml, encoding="utf-8")
    testset = formats.read_test_set(path)
    hyps = formats.read_hypotheses(HYP_HA, testset)
    root = ET.fromstring(formats.render_xml(testset, hyps, "S1"))
    assert [el.tag for el in next(root.iter("doc"))] == ["src", "ref", "hyp", "supplemental"]
    formats.check_structure(root, "ours")
    # a second system is added next to the first one; the same system name twice is refused
    path2 = tmp_path / "two.xml"
    path2.write_bytes(formats.render_xml(testset, hyps, "S1"))
    again = formats.read_test_set(path2)
    root2 = ET.fromstring(formats.render_xml(again, hyps, "S2"))
    assert [h.get("system") for h in next(root2.iter("doc")).findall("hyp")] == ["S1", "S2"]
    with pytest.raises(NmtError, match="already has a hypothesis of system 'S1'"):
        formats.render_xml(again, hyps, "S1")
    # the organisers' sample-hyp.xml as a test set: its language= hyps are copied with the schema's lang=
    with_mt = formats.read_test_set(HYP_XML, tgt_lang="ha")
    root3 = ET.fromstring(formats.render_xml(with_mt, hyps, "S2"))
    formats.check_structure(root3, "ours")
    assert [h.attrib for h in next(root3.iter("doc")).findall("hyp")] == [{"system": "MT", "lang": "ha"},
                                                                         {"system": "S2", "lang": "ha"}]


# --------------------------------------------------------------------------------------- WMT24 txt + docs

def test_wmt24_txt_reading_keeps_documents_and_the_canary():
    testset = formats.read_test_set(EN_DE)
    assert testset.pairs() == [("en", "de")]
    assert [d.id for d in testset.docs][:2] == ["canary", "test-en-news_beverly_press.3585"]
    units = testset.units
    assert len(units) == 20 and units[0].canary and not any(u.canary for u in units[1:])
    assert units[0].text.startswith("CANARY GUID ")
    # the organisers' reference keeps the canary unchanged as line 1: so must a submission
    assert lines_of(REF_DE)[0] == units[0].text
    assert units[3].label == "document 'test-en-news_beverly_press.3585', line 3 (line 4 of en-de.txt)"


@pytest.mark.parametrize("fmt", ["xml", "jsonl"])
def test_wmt24_txt_to_xml_and_jsonl_and_back(fmt, tmp_path):
    testset = formats.read_test_set(EN_DE)
    refs = formats.read_hypotheses(REF_DE, testset)
    assert formats.check_hypotheses(testset, refs) == []
    out = tmp_path / f"en-de.{fmt}"
    out.write_bytes(formats.render(fmt, testset, refs, "refA"))
    # read back as a test set: the original source and document files come out byte for byte
    back = formats.read_test_set(out)
    assert back.pairs() == [("en", "de")]
    assert formats.render_source_txt(back) == EN_DE.read_bytes()
    assert formats.render_docs(back) == DOCS_DE.read_bytes()
    # ... and the hypotheses, as txt again
    assert formats.render_txt(formats.read_hypotheses(out, testset, "refA")) == REF_DE.read_bytes()
    assert formats.read_hypotheses(out, back, "refA") == refs
    if fmt == "xml":
        root = ET.fromstring(out.read_bytes())
        formats.check_structure(root, "ours")
        canary = next(d for d in root.iter("doc") if d.get("id") == "canary")
        assert canary.get("domain") == "canary"
        assert canary.find("hyp/p/seg").text == canary.find("src/p/seg").text == refs[0]
        news = next(d for d in root.iter("doc") if d.get("id") == "test-en-news_beverly_press.3585")
        assert [seg.get("id") for seg in news.iter("seg")] == ["1", "2", "3", "4", "5"] * 2
        assert news.find("hyp").attrib == {"system": "refA", "lang": "de"}
    else:
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert len(records) == 6 and records[0]["doc_id"] == "canary"
        assert records[0]["hypothesis"] == records[0]["src_text"]
        assert {k for k in records[1]} == {"doc_id", "src_lang", "tgt_lang", "domain", "src_text", "hypothesis"}
        assert records[1]["src_text"].count("\n") == records[1]["hypothesis"].count("\n") == 4


def test_full_wmt24_pairs_round_trip(shared_data, tmp_path):
    base = shared_data / "wmt24-general"
    for pair in ("en-de", "en-ja", "en-ru", "en-zh"):
        testset = formats.read_test_set(base / "sources" / f"{pair}.txt")
        refs = formats.read_hypotheses(base / "references" / f"{pair}.refA.txt", testset)
        assert len(testset.docs) == 171 and len(refs) == 998
        assert formats.check_hypotheses(testset, refs) == []
        for fmt in formats.FORMATS:
            formats.check_output(formats.render(fmt, testset, refs, "refA"), fmt, testset, refs, "refA")


def test_wmt25_style_jsonl_keeps_other_fields(tmp_path):
    src = lines_of(EN_DE)
    records = [
        {"doc_id": "d1", "src_lang": "en", "tgt_lang": "de_DE", "domain": "social", "src_text": "\n".join(src[1:4]),
         "prompt_instruction": "Translate."},
        {"doc_id": "d1", "src_lang": "en", "tgt_lang": "ja_JP", "domain": "social", "src_text": src[4] + "\n\n"},
    ]
    path = tmp_path / "wmt25.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    testset = formats.read_test_set(path)
    assert testset.pairs() == [("en", "de_DE"), ("en", "ja_JP")]
    assert [len(d.units) for d in testset.docs] == [3, 3]  # the same doc id for two targets is fine
    hyps = ["eins", "zwei", "drei", "よん", "", ""]
    assert formats.check_hypotheses(testset, hyps) == []  # empty source lines may have empty hypotheses
    out = [json.loads(line) for line in formats.render_jsonl(testset, hyps).decode().splitlines()]
    assert out[0]["prompt_instruction"] == "Translate." and out[0]["hypothesis"] == "eins\nzwei\ndrei"
    assert out[1]["hypothesis"] == "よん\n\n"
    xml = ET.fromstring(formats.render_xml(testset, hyps, "S"))
    assert [h.get("lang") for h in xml.iter("hyp")] == ["de-DE", "ja-JP"]  # xsd:language tags


# ------------------------------------------------------------------------------------ validation errors

def test_missing_extra_and_empty_hypotheses(tmp_path):
    testset = formats.read_test_set(SRC_XML, tgt_lang="ha")
    hyps = lines_of(HYP_HA)
    bad = tmp_path / "short.ha"
    bad.write_text("\n".join(hyps[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match=r"short.ha has 35 lines but sample-src.xml has 36 segments"):
        formats.read_hypotheses(bad, testset)
    with pytest.raises(NmtError, match="35 hypotheses for the 36 segments"):
        formats.check_hypotheses(testset, hyps[:-1])
    empty = list(hyps)
    empty[15] = "  "
    with pytest.raises(NmtError, match=r"document 'von-english.824', segment 2: empty hypothesis"):
        formats.check_hypotheses(testset, empty)
    assert formats.check_hypotheses(testset, empty, allow_empty=True) == [
        "document 'von-english.824', segment 2: empty hypothesis for a non-empty source"]
    broken = list(hyps)
    broken[3] = "two\nlines"
    with pytest.raises(NmtError, match="segment 4: the hypothesis contains a line break"):
        formats.check_hypotheses(testset, broken)
    nothing = formats.read_test_set(SRC_XML)
    with pytest.raises(NmtError, match="has no target language; pass --tgt-lang"):
        formats.check_hypotheses(nothing, hyps)


def _hyp_xml_variant(tmp_path, old, new, count=1):
    text = HYP_XML.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "variant.xml"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def test_hypothesis_xml_with_missing_or_extra_segments(tmp_path):
    testset = formats.read_test_set(SRC_XML, tgt_lang="ha")
    assert formats.read_hypotheses(HYP_XML, testset) == lines_of(HYP_HA)
    text = HYP_XML.read_text(encoding="utf-8")
    hyp_part = text.index('<hyp system="MT"')
    seg3 = text.index('<seg id="3">', hyp_part)
    missing = tmp_path / "missing.xml"
    missing.write_text(text[:seg3] + text[text.index("\n", seg3) + 1:], encoding="utf-8")
    with pytest.raises(NmtError, match=r"document 'en.ndtv.com.75203', segment 3: no hypothesis"):
        formats.read_hypotheses(missing, testset)
    extra = tmp_path / "extra.xml"
    extra.write_text(text[:seg3] + '<seg id="99">extra</seg>' + text[seg3:], encoding="utf-8")
    with pytest.raises(NmtError, match=r"document 'en.ndtv.com.75203', segment 99: hypothesis for a segment"):
        formats.read_hypotheses(extra, testset)
    other = tmp_path / "other-doc.xml"
    other.write_text(text.replace('id="aj-english.22068"', 'id="not-in-source"'), encoding="utf-8")
    with pytest.raises(NmtError, match="document 'aj-english.22068' has no hypothesis of system 'MT'"):
        formats.read_hypotheses(other, testset)


@pytest.mark.parametrize("old,new,message", [
    ('<seg id="2">', '<seg id="1">', "document 'en.ndtv.com.75203': <src> has segment id 1 twice"),
    ('<seg id="2">', '<seg id="0">', "segment id '0' is not a positive integer"),
    ('<seg id="2">', '<seg id="two">', "segment id 'two' is not a positive integer"),
    ('<doc origlang="en" id="en.ndtv.com.75203">', '<doc id="en.ndtv.com.75203">',
     "document 'en.ndtv.com.75203': <doc> lacks the required attribute 'origlang'"),
    ('<src lang="en">', '<src lang="en" date="2021">', "<src> has an attribute 'date' the schema does not allow"),
    ('<src lang="en">\n', '<src lang="en">\n      <seg id="99">loose</seg>\n',
     "document 'en.ndtv.com.75203': <seg> inside <src>, expected <p>"),
    ("</seg>\n", "</seg>stray words\n", "text 'stray words' after <seg> inside <p>"),
    ('<seg id="2">Actor', '<seg id="2"><b>Actor</b>', "segment 2 contains <b>; segments hold text only"),
    ('<doc origlang="en" id="von-english.824">', '<doc origlang="en" id="en.ndtv.com.75203">',
     "document 'en.ndtv.com.75203': duplicate document id"),
    ('<dataset id="newssample2021">', '<testset id="newssample2021">', "not well-formed XML"),
    ('<dataset id="newssample2021">', "<dataset>", "<dataset> lacks the required attribute 'id'"),
    ('<src lang="en">', '<src lang="en_GB">', "is not a language tag"),
])
def test_broken_xml_structure_names_document_and_segment(tmp_path, old, new, message):
    text = SRC_XML.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "broken.xml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(NmtError) as info:
        formats.read_test_set(path, tgt_lang="de")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_section_order_and_counts_follow_the_schema(tmp_path):
    path = _hyp_xml_variant(tmp_path, "    </src>\n", '    </src>\n    <src lang="en">\n      <p/>\n    </src>\n')
    with pytest.raises(NmtError, match="has 2 <src> elements"):
        formats.read_test_set(path)
    text = SRC_REF_XML.read_text(encoding="utf-8")
    start, end = text.index("    <ref"), text.index("    </ref>\n") + len("    </ref>\n")
    ref = text[start:end]
    swapped = tmp_path / "ref-before-src.xml"
    swapped.write_text(text[:text.index("    <src")] + ref + text[text.index("    <src"):start] + text[end:],
                       encoding="utf-8")
    with pytest.raises(NmtError, match="<src> after <ref>"):
        formats.read_test_set(swapped)
    empty_src = tmp_path / "no-p.xml"
    empty_src.write_text(text.replace(text[text.index("<p>"):text.index("</p>") + 4], "", 1), encoding="utf-8")
    with pytest.raises(NmtError, match="<src> has no <p>"):
        formats.read_test_set(empty_src)


def test_collections_are_read_and_mirrored(tmp_path):
    text = SRC_XML.read_text(encoding="utf-8")
    body = text[text.index("  <doc"):text.index("</dataset>")]
    path = tmp_path / "collections.en-de.xml"
    path.write_text(text[:text.index("  <doc")] + '<collection id="A">\n' + body + '</collection>\n'
                    '<collection id="B">\n' + body + "</collection>\n</dataset>\n", encoding="utf-8")
    testset = formats.read_test_set(path)
    assert testset.pairs() == [("en", "de")]  # target from the file name
    assert len(testset.docs) == 12 and testset.docs[6].collection == "B"
    hyps = lines_of(HYP_HA) * 2
    root = ET.fromstring(formats.render_xml(testset, hyps, "S"))
    formats.check_structure(root, "ours")
    assert [c.get("id") for c in root] == ["A", "B"] and len(list(root.iter("hyp"))) == 12
    late = tmp_path / "late.xml"
    late.write_text(text.replace("</dataset>", '<collection id="C">\n' + body + "</collection>\n</dataset>"),
                    encoding="utf-8")
    with pytest.raises(NmtError, match="collections come first"):
        formats.read_test_set(late)


def test_txt_document_file_problems(tmp_path):
    src = tmp_path / "en-de.txt"
    src.write_bytes(EN_DE.read_bytes())
    with pytest.raises(NmtError, match="no document file for"):
        formats.read_test_set(src)
    docs = lines_of(DOCS_DE)
    (tmp_path / "en-de.docs").write_text("\n".join(docs[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match="en-de.docs has 19 lines but .*en-de.txt has 20"):
        formats.read_test_set(src)
    split = docs[:2] + [docs[7]] + docs[3:]  # a social line in the middle of the news document
    (tmp_path / "en-de.docs").write_text("\n".join(split) + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match="line 4: document 'test-en-news_beverly_press.3585' appears again"):
        formats.read_test_set(src)
    (tmp_path / "en-de.docs").write_text("\n".join(d.replace("\t", " ") for d in docs) + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match="line 1 is 'canary canary', expected 'domain<TAB>document id'"):
        formats.read_test_set(src)


def test_canary_must_stay_unchanged():
    testset = formats.read_test_set(EN_DE)
    refs = formats.read_hypotheses(REF_DE, testset)
    refs[0] = "KANARIENVOGEL GUID"
    with pytest.raises(NmtError, match=r"document 'canary', line 1 \(line 1 of en-de.txt\) is the canary line"):
        formats.check_hypotheses(testset, refs)


def test_jsonl_problems(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"doc_id": "a", "src_text": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(NmtError, match="line 2 is not valid JSON"):
        formats.read_test_set(path)
    path.write_text('{"doc_id": "a", "src_lang": "en"}\n', encoding="utf-8")
    with pytest.raises(NmtError, match="'src_text' is missing"):
        formats.read_test_set(path)
    path.write_text('{"doc_id": "a", "src_text": "x\\ny", "tgt_lang": "de"}\n', encoding="utf-8")
    testset = formats.read_test_set(path)
    hyps = tmp_path / "h.jsonl"
    hyps.write_text('{"doc_id": "a", "tgt_lang": "de", "hypothesis": "nur eine Zeile"}\n', encoding="utf-8")
    with pytest.raises(NmtError, match="the hypothesis has 1 lines, the source 2"):
        formats.read_hypotheses(hyps, testset)
    hyps.write_text('{"doc_id": "b", "tgt_lang": "de", "hypothesis": "x\\ny"}\n', encoding="utf-8")
    with pytest.raises(NmtError, match="document 'a' has no hypothesis"):
        formats.read_hypotheses(hyps, testset)


# ------------------------------------------------------------------------------------ hardened XML parsing

XXE = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE dataset [ <!ENTITY secret SYSTEM "file://{secret}"> ]>
<dataset id="x"><doc id="d" origlang="en"><src lang="en"><p><seg id="1">&secret;</seg></p></src></doc></dataset>
"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<dataset id="x"><doc id="d" origlang="en"><src lang="en"><p><seg id="1">&lol9;</seg></p></src></doc></dataset>
"""


@pytest.mark.parametrize("kind", ["external-entity", "billion-laughs", "lowercase-doctype"])
def test_dtds_and_entities_are_refused_before_parsing(tmp_path, kind):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE\n")
    text = {"external-entity": XXE.format(secret=secret), "billion-laughs": LAUGHS,
            "lowercase-doctype": LAUGHS.replace("<!DOCTYPE", "<!doctype")}[kind]
    path = tmp_path / f"{kind}.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NmtError, match="refusing XML with a DTD or entity declaration") as info:
        formats.parse_xml(path)
    assert "TOP-SECRET" not in str(info.value) and "lollol" not in str(info.value)
    for result in (cli("unwrap", path, "-o", tmp_path / "out"),
                   cli("package", path, "--hyps", HYP_HA, "--team", "t", "--system", "s", "--constrained",
                       "--tgt-lang", "de", "-o", tmp_path / "sub.tar.gz")):
        assert_one_line_error(result, "refusing XML with a DTD")
        assert "TOP-SECRET" not in result.output and "lollol" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "sub.tar.gz").exists()


def test_undefined_entities_and_other_encodings_are_refused(tmp_path):
    path = tmp_path / "undefined.xml"
    path.write_text('<dataset id="x">&nope;</dataset>', encoding="utf-8")
    with pytest.raises(NmtError, match="not well-formed XML .*undefined entity"):
        formats.parse_xml(path)
    path.write_text("<?xml version='1.0' encoding='latin-1'?><dataset id='x'/>", encoding="latin-1")
    with pytest.raises(NmtError, match="declares encoding 'latin-1'"):
        formats.parse_xml(path)
    path.write_bytes(b"<dataset id='\xff'/>")
    with pytest.raises(NmtError, match="not valid UTF-8"):
        formats.parse_xml(path)


# ------------------------------------------------------------------------------------------------- languages

def test_wmt_codes_map_to_model_languages():
    model = ["de_DE", "en_XX", "ja_XX", "ko_KR", "ru_RU"]
    assert model_language("de", model) == "de_DE"
    assert model_language("ja_JP", model) == "ja_XX"  # WMT25 style
    assert model_language("ja-JP", model) == "ja_XX"
    assert model_language("en_XX", model) == "en_XX"
    with pytest.raises(NmtError, match=r"language 'zh' \(zh_CN\) is not one of this model's languages: de_DE, en_XX"):
        model_language("zh", model)
    with pytest.raises(NmtError, match="language 'sah' maps to no language nmt knows; .*ja_XX, ko_KR, ru_RU"):
        model_language("sah", model)
    with pytest.raises(NmtError, match="'zh_TW' maps to no language"):
        model_language("zh_TW", ["zh_CN", "en_XX"])


# ---------------------------------------------------------------------------------------------- CLI: package

def _members(archive):
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_package_from_hypothesis_files(tmp_path):
    archive = tmp_path / "sub.tar.gz"
    args = ["package", EN_DE, SRC_XML, "--hyps", REF_DE, "--hyps", HYP_HA, "--team", "UniX", "--system", "base-1",
            "--contrastive", "--unconstrained", "-o", archive]
    # the XML sample has no target language: say so, and write nothing
    assert_one_line_error(cli(*args), "document 'en.ndtv.com.75203' has no target language; pass --tgt-lang")
    assert not archive.exists()
    result = cli("package", EN_DE, "--hyps", REF_DE, "--team", "UniX", "--system", "base-1", "--contrastive",
                 "--unconstrained", "-o", archive)
    assert result.exit_code == 0, result.output
    members = _members(archive)
    assert set(members) == {"UniX.base-1/metadata.json", "UniX.base-1/MODEL_CARD.md", "UniX.base-1/en-de.base-1.txt"}
    assert members["UniX.base-1/en-de.base-1.txt"] == REF_DE.read_bytes()
    meta = json.loads(members["UniX.base-1/metadata.json"])
    assert meta["team"] == "UniX" and meta["system"] == "base-1"
    assert meta["submission"] == "contrastive" and meta["constrained"] is False
    assert meta["language_pairs"] == ["en-de"] and meta["model"] is None
    assert meta["files"][0]["segments"] == 20 and meta["files"][0]["canary_segments"] == 1
    assert meta["files"][0]["test_set_sha256"] == sha256_file(EN_DE)
    card = members["UniX.base-1/MODEL_CARD.md"].decode()
    assert card.startswith("# UniX / base-1") and "contrastive, unconstrained" in card
    # an existing archive needs --force
    before = archive.read_bytes()
    result = cli("package", EN_DE, "--hyps", REF_DE, "--team", "UniX", "--system", "base-1", "--constrained",
                 "-o", archive, "--format", "xml")
    assert_one_line_error(result, "sub.tar.gz already exists; pass --force")
    assert archive.read_bytes() == before
    result = cli("package", EN_DE, "--hyps", REF_DE, "--team", "UniX", "--system", "base-1", "--constrained",
                 "-o", archive, "--format", "xml", "--force")
    assert result.exit_code == 0, result.output
    members = _members(archive)
    xml = ET.fromstring(members["UniX.base-1/en-de.base-1.xml"])
    formats.check_structure(xml, "packaged")
    assert len(list(xml.iter("hyp"))) == 6
    assert json.loads(members["UniX.base-1/metadata.json"])["constrained"] is True
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary files left


@pytest.mark.parametrize("change,needle", [
    (lambda a: a[:a.index("--constrained")] + a[a.index("--constrained") + 1:], "--constrained or --unconstrained"),
    (lambda a: [x if x != "MT" else "bad/name" for x in a], "--system 'bad/name'"),
    (lambda a: a + ["--model", "somewhere"], "not both"),
    (lambda a: [x if x != str(HYP_HA) else str(HYP_HA) + ".missing" for x in a], "missing file"),
    (lambda a: a + ["--hyp-system", "X", "--hyps", str(HYP_HA)], "2 --hyps files for 1 test sets"),
])
def test_package_bad_input_is_one_line(tmp_path, change, needle):
    args = ["package", str(SRC_XML), "--hyps", str(HYP_HA), "--team", "t", "--system", "MT", "--constrained",
            "--tgt-lang", "ha", "-o", str(tmp_path / "s.tar.gz")]
    assert_one_line_error(cli(*change(args)), needle)
    assert not (tmp_path / "s.tar.gz").exists()


def test_package_refuses_a_translated_canary_and_wrong_line_count(tmp_path):
    refs = lines_of(REF_DE)
    bad = tmp_path / "hyp.de"
    bad.write_text("\n".join(refs[1:]) + "\n", encoding="utf-8")
    result = cli("package", EN_DE, "--hyps", bad, "--team", "t", "--system", "s", "--constrained",
                 "-o", tmp_path / "s.tar.gz")
    assert_one_line_error(result, "hyp.de has 19 lines but en-de.txt has 20 lines (the canary line included)")
    bad.write_text("\n".join(["Kanarienvogel"] + refs[1:]) + "\n", encoding="utf-8")
    result = cli("package", EN_DE, "--hyps", bad, "--team", "t", "--system", "s", "--constrained",
                 "-o", tmp_path / "s.tar.gz")
    assert_one_line_error(result, "is the canary line; it must be copied unchanged")


# ----------------------------------------------------------------------------------------------- CLI: unwrap

def test_unwrap_writes_aligned_text_per_language(tmp_path):
    out = tmp_path / "txt"
    result = cli("unwrap", SRC_REF_XML, "-o", out)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sample-src-ref.docs", "sample-src-ref.ref.A.ha", "sample-src-ref.src.en"]
    testset = formats.read_test_set(SRC_REF_XML)
    src = lines_of(out / "sample-src-ref.src.en")
    assert src == [u.text for u in testset.units]
    refs = lines_of(out / "sample-src-ref.ref.A.ha")
    assert len(refs) == len(src) == 36
    assert refs.count("") == 5  # the two test-suite documents have no reference
    assert "5 empty lines in ref.A.ha" in result.stderr
    # our own submission XML: the hypotheses come back by system
    sub = tmp_path / "sub.xml"
    sub.write_bytes(formats.render_xml(testset, lines_of(HYP_HA), "nmt-tiny"))
    assert cli("unwrap", sub, "-o", out, "--skip-testsuites").exit_code == 0
    hyps = lines_of(out / "sub.hyp.nmt-tiny.ha")
    fields = WMTXMLDataset._unwrap_wmt21_or_later(io.BytesIO(sub.read_bytes()))
    assert hyps == fields["nmt-tiny"] and len(hyps) == 31
    # and the source and docs files form a WMT24-style txt test set again
    again = formats.read_test_set(out / "sub.src.en", docs=out / "sub.docs")
    assert len(again.docs) == 4
    assert_one_line_error(cli("unwrap", sub, "-o", out, "--skip-testsuites"), "already exists; pass --force")
    assert cli("unwrap", sub, "-o", out, "--skip-testsuites", "--force").exit_code == 0
    assert_one_line_error(cli("unwrap", EN_DE, "-o", out), "nmt unwrap reads WMT XML")


# ----------------------------------------------------------------------------- end to end with a real model

def test_package_translates_with_a_model_bundle(trained_bundle, tmp_path):
    """The tiny model's German and Japanese are garbage; what is tested is the plumbing."""
    archive = tmp_path / "primary.tar.gz"
    result = cli("package", EN_DE, EN_JA, "-m", trained_bundle, "--team", "nmt", "--system", "tiny",
                 "--constrained", "--beam", "2", "--backend", "fairseq", "--threads", "2", "--allow-empty",
                 "-o", archive)
    assert result.exit_code == 0, result.output
    members = _members(archive)
    meta = json.loads(members["nmt.tiny/metadata.json"])
    assert meta["language_pairs"] == ["en-de", "en-ja"] and meta["submission"] == "primary"
    model = meta["model"]
    assert model["sha256"]["checkpoint"] == sha256_file(trained_bundle / "checkpoints" / "checkpoint_best.pt")
    assert model["sha256"]["bundle.json"] == sha256_file(trained_bundle / "bundle.json")
    assert model["languages"] == ["de_DE", "en_XX", "ja_XX", "ko_KR", "ru_RU"] and model["decoding"]["beam"] == 2
    sources = lines_of(EN_DE)
    for pair in ("en-de", "en-ja"):
        hyps = members[f"nmt.tiny/{pair}.tiny.txt"].decode("utf-8").split("\n")
        assert hyps[-1] == "" and len(hyps) - 1 == len(sources)
        assert hyps[0] == sources[0]  # the canary line, copied
        empty = [i for i, h in enumerate(hyps[:-1]) if not h.strip()]
        # an empty hypothesis only ever comes with a warning naming its line
        for i in empty:
            assert any(f"(line {i + 1} of {pair}.txt)" in w for w in meta["warnings"])
        assert len(empty) < len(sources) // 2
    de = [h for h in members["nmt.tiny/en-de.tiny.txt"].decode().split("\n")[1:-1]]
    ja = [h for h in members["nmt.tiny/en-ja.tiny.txt"].decode().split("\n")[1:-1]]
    assert de != ja  # the target-language token was honoured
    assert "Checkpoint SHA-256: `" + model["sha256"]["checkpoint"] in members["nmt.tiny/MODEL_CARD.md"].decode()
    # line 5 (854 characters) is longer than the tiny model's 256 positions when translated whole
    # (--split-sentences never; split into its sentences it fits): the default truncates it; leaving it
    # untranslated gives an empty hypothesis, which is refused unless --allow-empty, and says why
    result = cli("package", EN_DE, "-m", trained_bundle, "--team", "nmt", "--system", "tiny", "--constrained",
                 "--beam", "1", "--backend", "fairseq", "--threads", "2", "--too-long", "skip",
                 "--split-sentences", "never", "-o", tmp_path / "skip.tar.gz")
    assert_one_line_error(result, "(line 5 of en-de.txt): empty hypothesis for a non-empty source",
                          "more than the model's limit", "--allow-empty")
    assert not (tmp_path / "skip.tar.gz").exists()


def test_package_xml_test_set_with_a_model_bundle(trained_bundle, tmp_path):
    archive = tmp_path / "xml.tar.gz"
    result = cli("package", SRC_XML, "-m", trained_bundle, "--team", "nmt", "--system", "tiny", "--unconstrained",
                 "--tgt-lang", "de", "--beam", "1", "--backend", "fairseq", "--threads", "2", "--allow-empty",
                 "-o", archive, "--format", "xml")
    assert result.exit_code == 0, result.output
    root = ET.fromstring(_members(archive)["nmt.tiny/sample-src.tiny.xml"])
    formats.check_structure(root, "packaged")
    for doc in root.iter("doc"):
        src, hyp = doc.find("src"), doc.find("hyp")
        assert hyp.attrib == {"system": "tiny", "lang": "de"}
        assert [[s.get("id") for s in p] for p in src] == [[s.get("id") for s in p] for p in hyp]
    # a language the model lacks is refused before translating, naming the model's languages
    result = cli("package", SRC_XML, "-m", trained_bundle, "--team", "nmt", "--system", "tiny", "--unconstrained",
                 "--tgt-lang", "ha", "-o", tmp_path / "ha.tar.gz")
    assert_one_line_error(result, "language 'ha' maps to no language nmt knows", "de_DE, en_XX, ja_XX")


# ------------------------------------------------------------- line breaks, JSONL limits and unknown tokens
# every character str.splitlines() breaks at, besides \n (\r at the end of a line is read as CRLF)
SPLITLINES_BREAKS = ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def _xml_with(doc_id="d1", domain="news", seg_text="Hello.", ref_text="Hallo."):
    return ('<?xml version="1.0" encoding="utf-8"?>\n<dataset id="t">\n'
            f'<doc id="{doc_id}" origlang="en" domain="{domain}"><src lang="en"><p><seg id="1">{seg_text}</seg>'
            '<seg id="2">Two.</seg><seg id="3">Three.</seg></p></src>'
            f'<ref lang="de" translator="A"><p><seg id="1">{ref_text}</seg><seg id="2">Zwei.</seg>'
            '<seg id="3">Drei.</seg></p></ref></doc>\n</dataset>\n')


@pytest.mark.parametrize("doc_id,domain,what", [
    ("a&#10;b", "news", "id contains U+000A (LINE FEED)"),
    ("a&#13;b", "news", "id contains U+000D (CARRIAGE RETURN)"),
    ("a&#x2028;b", "news", "id contains U+2028 (LINE SEPARATOR)"),
    ("a&#x85;b", "news", "id contains U+0085 (NEXT LINE)"),
    ("a&#9;b", "news", "id contains a tab"),
    ("d1", "ne&#9;ws", "domain contains a tab"),
    ("d1", "ne&#x2029;ws", "domain contains U+2029 (PARAGRAPH SEPARATOR)"),
])
def test_unwrap_refuses_line_breaks_and_tabs_in_document_ids_and_domains(tmp_path, doc_id, domain, what):
    path = tmp_path / "t.xml"
    path.write_text(_xml_with(doc_id=doc_id, domain=domain), encoding="utf-8")
    err = assert_one_line_error(cli("unwrap", path, "-o", tmp_path / "out"), what, "document ", ".docs file")
    assert "t.xml: document " in err
    assert not (tmp_path / "out").exists()  # nothing written, not even the other columns
    testset = formats.read_test_set(path, tgt_lang="de")
    with pytest.raises(NmtError, match="cannot hold"):
        formats.render_docs(testset)


def test_unwrap_keeps_alignment_whatever_line_breaks_a_segment_holds(tmp_path):
    path = tmp_path / "t.xml"
    path.write_text(_xml_with(seg_text="a&#x2028;b&#x85;c&#10;d&#13;e&#x2029;f", ref_text="x&#x85;y"),
                    encoding="utf-8")
    result = cli("unwrap", path, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    for name in ("t.src.en", "t.ref.A.de", "t.docs"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert len(text.splitlines()) == 3 == text.count("\n"), (name, text)
    assert (tmp_path / "out" / "t.src.en").read_text(encoding="utf-8").splitlines()[0] == "a b c d e f"
    assert "2 segments had line breaks, replaced by spaces" in result.stderr


@pytest.mark.parametrize("char", SPLITLINES_BREAKS)
def test_package_refuses_a_hypothesis_with_any_line_separator(tmp_path, char):
    refs = lines_of(REF_DE)
    refs[2] = refs[2][:10] + char + refs[2][10:]
    bad = tmp_path / "hyp.de"
    bad.write_text("\n".join(refs) + "\n", encoding="utf-8", newline="")
    assert len(refs) == 20 and len(bad.read_bytes().decode("utf-8").splitlines()) == 21
    for fmt in ("same", "xml", "jsonl"):
        result = cli("package", EN_DE, "--hyps", bad, "--team", "t", "--system", "s", "--constrained",
                     "--format", fmt, "-o", tmp_path / "s.tar.gz")
        assert_one_line_error(result, "(line 3 of en-de.txt): the hypothesis contains a line break, "
                                      f"U+{ord(char):04X}")
        assert not (tmp_path / "s.tar.gz").exists()
    with pytest.raises(NmtError, match="line 3 of the txt output would contain a line break"):
        formats.render_txt(refs)


def test_jsonl_output_escapes_unicode_line_separators(tmp_path):
    text = "eins\u2028zwei\x85drei\u2029vier\x1cfünf"
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"doc_id": "a", "src_lang": "en", "tgt_lang": "de", "src_text": text + "\nzwei",
                                "note": text}) + "\n", encoding="utf-8")
    testset = formats.read_test_set(path)
    data = formats.render_jsonl(testset, ["one", "two"]).decode("utf-8")
    assert len(data.splitlines()) == 1 and "\\u2028" in data and "fünf" in data  # escaped; the rest stays readable
    record = json.loads(data)
    assert record["src_text"] == text + "\nzwei" and record["note"] == text and record["hypothesis"] == "one\ntwo"


@pytest.mark.parametrize("line,message", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ('{"doc_id": "a", "src_text": "x", "n": ' + "1" * 5000 + "}", "Exceeds the limit (4300 digits)"),
    ('{"doc_id": "a", "src_text": "x", "extra": {"k": "\\ud800"}}', "lone surrogate"),
])
def test_hostile_jsonl_is_a_one_line_error(tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "z", "src_text": "y", "tgt_lang": "de"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match="line 2") as info:
        formats.read_test_set(bad)
    assert message in str(info.value) and "\n" not in str(info.value)
    good = tmp_path / "t.jsonl"
    good.write_text('{"doc_id": "z", "src_text": "y", "src_lang": "en", "tgt_lang": "de"}\n', encoding="utf-8")
    for args in (["package", bad, "--hyps", tmp_path / "h.txt"], ["package", good, "--hyps", bad]):
        (tmp_path / "h.txt").write_text("y\n", encoding="utf-8")
        result = cli(*args, "--team", "t", "--system", "s", "--constrained", "-o", tmp_path / "s.tar.gz")
        assert_one_line_error(result, "bad.jsonl: line 2", message)


def test_package_warns_about_unknown_tokens(tmp_path, caplog):
    refs = lines_of(REF_DE)
    for i, marker in ((3, "<unk>"), (5, "\u2047"), (8, "<unk>"), (12, " \u2047 ")):
        refs[i] = refs[i][:5] + marker + refs[i][5:]
    hyps = tmp_path / "hyp.de"
    hyps.write_text("\n".join(refs) + "\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="nmt.wmt"):
        result = cli("package", EN_DE, "--hyps", hyps, "--team", "t", "--system", "s", "--constrained",
                     "-o", tmp_path / "s.tar.gz")
    assert result.exit_code == 0, result.output
    meta = json.loads(_members(tmp_path / "s.tar.gz")["t.s/metadata.json"])
    entry = meta["files"][0]
    assert entry["unk_hypotheses"] == 4
    assert [label.split("(")[1] for label in entry["unk_first"]] == ["line 4 of en-de.txt)", "line 6 of en-de.txt)",
                                                                     "line 9 of en-de.txt)"]
    warning = meta["warnings"][0]
    assert warning.startswith("en-de.txt: 4 of 20 hypotheses contain an unknown token (<unk> or \u2047)")
    assert "(line 4 of en-de.txt)" in warning and warning.endswith(", ...") and "\n" not in warning
    assert warning in caplog.text  # on stderr when run as `nmt package`
    # a marker the source already has is not the model's unknown token
    testset = formats.read_test_set(EN_DE)
    from nmt.wmt.package import unknown_tokens
    units = testset.units
    same = [u.text + " <unk>" for u in units]
    assert len(unknown_tokens(testset, same)) == len(units)
    for unit in units:
        unit.text += " <unk>"
    assert unknown_tokens(testset, same) == []
