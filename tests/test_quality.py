"""Decoding for quality (nmt.translate.quality): candidates by beam and sampling, MBR with chrF,
BLEU and COMET, QE and built-in reranking, pivoting, from every translating command.

Exact checks: the cached chrF/BLEU utilities are sacrebleu's sentence scores to the last bit;
MBR picks the argmax of the naive N^2 loop; one candidate is the candidate; a pivot is two
chained translations; a seed repeats its samples; a cut-off that leaves one token is greedy
search. The tiny COMET models are random (their scores mean nothing): what is tested is that
the real unbabel-comet classes choose what their own scores say."""
import dataclasses
import json
import random
import sys
import tarfile
from pathlib import Path

import click
import pytest
from sacrebleu.metrics import BLEU, CHRF

from conftest import SAMPLE_FLORES, SAMPLE_RAW, run_nmt, run_nmt_process
from nmt.cli import main
from nmt.cli_util import options_from
from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions
from nmt.translate.mbr import BleuUtility, ChrfUtility
from nmt.translate.options import QualityOptions
from nmt.translate.quality import QualityTranslator
from nmt.translate.rerank import BuiltinReranker
from nmt.translate.translator import Translator

DE = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
FLORES_DE = (SAMPLE_FLORES / "deu_Latn.devtest").read_text(encoding="utf-8").splitlines()
FLORES_JA = (SAMPLE_FLORES / "jpn_Jpan.devtest").read_text(encoding="utf-8").splitlines()
FLORES_EN = (SAMPLE_FLORES / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()


def texts(results):
    return [[h.text for h in r.hypotheses] for r in results]


def naive_utilities(candidates, n_refs, sentence_score):
    """The N^2 loop: each distinct candidate (first position k) against references j != k."""
    out, seen = [], set()
    for k, text in enumerate(candidates):
        if text in seen:
            continue
        seen.add(text)
        values = [sentence_score(text, candidates[j]) for j in range(n_refs) if j != k]
        out.append(sum(values) / len(values))
    return out


# ------------------------------------------------------------------------------------------ no model

def test_cached_utilities_are_sacrebleu_sentence_scores_exactly():
    rng = random.Random(1)
    lines = FLORES_DE[:12]
    candidates = [" ".join(rng.sample(line.split(), max(1, len(line.split()) - 3))) for line in lines]
    candidates += ["", lines[0], lines[0], "(Hallo) Welt!"]  # empty, duplicates, punctuation
    chrf, bleu = ChrfUtility(), BleuUtility("de_DE")
    chrf_ref, bleu_ref = CHRF(), BLEU(tokenize="13a", effective_order=True)
    for h in candidates:
        for r in candidates:
            assert chrf.pair(h, r) == chrf_ref.sentence_score(h, [r]).score
            assert bleu.pair(h, r) == bleu_ref.sentence_score(h, [r]).score
    for n_refs in (2, len(candidates)):
        assert chrf.utilities(candidates, n_refs) == naive_utilities(
            candidates, n_refs, lambda h, r: chrf_ref.sentence_score(h, [r]).score)
        assert bleu.utilities(candidates, n_refs) == naive_utilities(
            candidates, n_refs, lambda h, r: bleu_ref.sentence_score(h, [r]).score)
    assert chrf.signature.startswith("chrF|nrefs:1|") and "tok:char" in BleuUtility("ja_XX").signature + \
        BleuUtility("my_MM").signature


@pytest.mark.parametrize("options, message", [
    (dict(mbr="chrf", rerank="qe"), "give one of them"),
    (dict(candidates=4), "add one of them"),
    (dict(mbr="chrf", candidates=4, pseudo_refs=5), "between 2 and --candidates (4)"),
    (dict(rerank="builtin", pseudo_refs=2), "--pseudo-refs is for --mbr"),
    (dict(mbr="chrf", comet_model="x"), "--comet-model is for --mbr comet"),
    (dict(mbr="comet", qe_model="x"), "--qe-model is for --rerank qe"),
    (dict(mbr="meteor"), "choose one of chrf, bleu, comet"),
])
def test_quality_option_mistakes_are_one_line(options, message):
    with pytest.raises(NmtError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QualityOptions(**options).check()


def test_decoding_option_mistakes():
    with pytest.raises(NmtError, match="add --sampling"):
        DecodeOptions(epsilon=0.02).check()
    with pytest.raises(NmtError, match=r"--sampling-topp must be in \(0, 1\]"):
        DecodeOptions(sampling=True, sampling_topp=0).check()
    DecodeOptions(sampling=True, nbest=16, beam=5).check()  # samples are not limited by the beam
    with pytest.raises(NmtError, match="cannot exceed --beam"):
        DecodeOptions(nbest=16, beam=5).check()


@pytest.mark.parametrize("command", ["translate", "translate-corpus", "translate-file", "evaluate", "package", "serve"])
def test_quality_option_defaults_are_the_class(command):
    params = {p.name: p for p in main.get_command(click.Context(main), command).params}
    skipped = ("comet_batch_size", "comet_gpus") if command == "evaluate" else ()
    for spec in dataclasses.fields(QualityOptions):
        if spec.name in skipped:
            continue
        assert params[f"quality__{spec.name}"].default == spec.default, (command, spec.name)
    if command == "evaluate":  # its own --comet-model is the metric's
        flags = {o for p in params.values() for o in p.opts}
        assert {"--mbr-comet-model", "--mbr-comet-encoder", "--comet-model", "--system-option"} <= flags


def test_options_reach_the_command_as_one_object():
    seen = {}
    command = click.command()(options_from(QualityOptions, "quality")(lambda quality: seen.update(q=quality)))
    command.main(["--mbr", "bleu", "--candidates", "4", "--pivot", "en_XX"], standalone_mode=False)
    assert seen["q"] == QualityOptions(mbr="bleu", candidates=4, pivot="en_XX")
    assert QualityOptions().with_values({"pseudo-refs": "3", "mbr": "chrf", "candidates": "6"}) == \
        QualityOptions(mbr="chrf", candidates=6, pseudo_refs=3)
    with pytest.raises(NmtError, match="unknown decoding option 'beam'"):
        QualityOptions().with_values({"beam": "3"})


# ------------------------------------------------------------------------------------------ tiny model

@pytest.fixture(scope="module")
def exported(exported_bundle):
    """The trained tiny bundle's copy with float32 and int8 CTranslate2 exports (conftest)."""
    return exported_bundle


@pytest.fixture(scope="module")
def ct2(exported):
    return Translator(exported, backend="ctranslate2", quantization="float32", threads=2)


def test_one_candidate_is_the_candidate(ct2):
    plain = ct2.translate(DE[:8], "de_DE", "en_XX")
    for quality in (QualityOptions(mbr="chrf", candidates=1), QualityOptions(rerank="builtin", candidates=1)):
        chosen = QualityTranslator(ct2, quality).translate(DE[:8], "de_DE", "en_XX")
        assert texts(chosen) == texts(plain)
        assert all(h.utility is None for r in chosen for h in r.hypotheses)


def test_mbr_chooses_the_argmax_of_the_naive_loop(ct2):
    options = DecodeOptions(sampling=True, sampling_topp=0.95, seed=7, nbest=6)  # nbest: every candidate back
    quality = QualityOptions(mbr="chrf", candidates=6, pseudo_refs=5)
    # the same seed gives the same candidates, so the naive loop sees what MBR saw
    candidates = ct2.translate(DE[:6], "de_DE", "en_XX", quality.candidate_options(options))
    assert candidates[0].hypotheses and len(candidates[0].hypotheses) == 6
    assert texts(candidates) == texts(ct2.translate(DE[:6], "de_DE", "en_XX", quality.candidate_options(options)))
    chosen = QualityTranslator(ct2, quality).translate(DE[:6], "de_DE", "en_XX", options)
    chrf = CHRF()
    for cands, result in zip(texts(candidates), chosen):
        utilities = naive_utilities(cands, 5, lambda h, r: chrf.sentence_score(h, [r]).score)
        distinct = list(dict.fromkeys(cands))
        best = max(range(len(distinct)), key=lambda k: (utilities[k], -k))
        assert result.text == distinct[best]
        assert {h.text: h.utility for h in result.hypotheses} == dict(zip(distinct, utilities))
    only_best = QualityTranslator(ct2, quality).translate(DE[:6], "de_DE", "en_XX",
                                                          dataclasses.replace(options, nbest=1))
    assert [[h.text for h in r.hypotheses] for r in only_best] == [[r.text] for r in chosen]


def test_seeds_repeat_and_cut_offs_that_leave_one_token_are_greedy(exported, ct2):
    greedy = ct2.translate_text(DE[:6], "de_DE", "en_XX", options=DecodeOptions(beam=1))
    top1 = DecodeOptions(sampling=True, sampling_topp=1e-6, seed=3)
    assert ct2.translate_text(DE[:6], "de_DE", "en_XX", options=top1) == greedy
    sampled = DecodeOptions(sampling=True, nbest=4, seed=3)
    first = texts(ct2.translate(DE[:6], "de_DE", "en_XX", sampled))
    assert first == texts(ct2.translate(DE[:6], "de_DE", "en_XX", sampled))
    assert first != texts(ct2.translate(DE[:6], "de_DE", "en_XX", dataclasses.replace(sampled, seed=4)))
    # epsilon sampling: CTranslate2 has none, so the bundle's fairseq checkpoint decodes (backend auto)
    auto = Translator(exported, threads=2)
    assert auto.backend_name == "ctranslate2"
    fairseq_greedy = Translator(exported, backend="fairseq", threads=2).translate_text(
        DE[:6], "de_DE", "en_XX", options=DecodeOptions(beam=1))
    only_best = DecodeOptions(sampling=True, epsilon=0.99, seed=5)  # every token but the most likely is cut
    assert auto.translate_text(DE[:6], "de_DE", "en_XX", options=only_best) == fairseq_greedy
    eps = DecodeOptions(sampling=True, epsilon=0.02, nbest=4, seed=5)
    assert texts(auto.translate(DE[:6], "de_DE", "en_XX", eps)) == texts(auto.translate(DE[:6], "de_DE", "en_XX", eps))
    with pytest.raises(NmtError, match="CTranslate2 has no epsilon cut-off.*use --backend fairseq"):
        ct2.translate(DE[:2], "de_DE", "en_XX", eps)


def test_forced_decoding_scores_agree_between_backends(exported, ct2):
    hyps = ct2.translate_text(DE[:6], "de_DE", "en_XX")
    fairseq = Translator(exported, backend="fairseq", threads=2)
    for a, b in zip(ct2.score(DE[:6], hyps, "de_DE", "en_XX"), fairseq.score(DE[:6], hyps, "de_DE", "en_XX")):
        assert abs(a - b) < 1e-4 and a < 0


def test_builtin_reranker_ranks_broken_candidates_last(ct2):
    source = FLORES_DE[3]
    good = FLORES_EN[3]  # the reference (the tiny model's own output is too short to pass the length check)
    candidates = [good, "", FLORES_JA[3], " ".join([good] * 4)]  # empty, Japanese, far too long
    [(utilities, rejected)] = BuiltinReranker(ct2).utilities([source], [candidates], 4, "de_DE", "en_XX")
    assert rejected == {1, 2, 3} and len(utilities) == 4
    reverse = ct2.score([good], [source], "en_XX", "de_DE")[0]
    forward = ct2.score([source], [good], "de_DE", "en_XX")[0]
    assert abs(utilities[0] - (forward + reverse) / 2) < 1e-4  # (scored in another batch: float noise only)
    chosen = QualityTranslator(ct2, QualityOptions(rerank="builtin", candidates=4)).translate(
        FLORES_DE[:4], "de_DE", "en_XX")
    assert all(r.hypotheses[0].utility is not None for r in chosen)


def test_paragraphs_are_chosen_sentence_by_sentence(ct2):
    from nmt.translate.sentences import segment_lines

    pairs = [(FLORES_DE[i], FLORES_DE[i + 1]) for i in (0, 2, 4)]
    paragraphs = [f"{a} {b}" for a, b in pairs]
    flat = [s for pair in pairs for s in pair]
    assert segment_lines(paragraphs, "de_DE", "always").units == flat  # the splitter finds the two sentences
    translator = QualityTranslator(ct2, QualityOptions(mbr="chrf", candidates=4))
    alone = translator.translate(flat, "de_DE", "en_XX", DecodeOptions(split_sentences="never"))
    joined = translator.translate(paragraphs, "de_DE", "en_XX", DecodeOptions(split_sentences="always"))
    assert len(joined) == 3
    for k, result in enumerate(joined):
        first, second = alone[2 * k], alone[2 * k + 1]
        assert result.text == " ".join(t for t in (first.text, second.text) if t)
        utilities = [first.hypotheses[0].utility, second.hypotheses[0].utility]
        if None not in utilities:
            assert abs(result.hypotheses[0].utility - sum(utilities) / 2) < 1e-9


def test_pivot_is_two_chained_translations(exported, tmp_path):
    source = tmp_path / "de.txt"
    source.write_text("\n".join(DE[:10] + [""] + DE[10:12]) + "\n", encoding="utf-8")
    common = ["-m", exported, "--backend", "ctranslate2", "--quantization", "float32"]
    english = run_nmt("translate", *common, "-s", "de_DE", "-t", "en_XX", "-i", source)
    middle = tmp_path / "en.txt"
    middle.write_text(english.stdout, encoding="utf-8")
    japanese = run_nmt("translate", *common, "-s", "en_XX", "-t", "ja_XX", "-i", middle)
    pivot = run_nmt("translate", *common, "-s", "de_DE", "-t", "ja_XX", "-i", source, "--pivot", "en_XX",
                    "--format", "jsonl")
    assert english.returncode == japanese.returncode == pivot.returncode == 0, pivot.stderr[-800:]
    records = [json.loads(line) for line in pivot.stdout.splitlines()]
    assert [r["translation"] for r in records] == japanese.stdout.split("\n")[:-1]
    assert [r.get("pivot") or "" for r in records] == english.stdout.split("\n")[:-1]
    assert len(records) == 13 and records[10]["translation"] == ""
    # from or into the pivot language: direct
    direct = run_nmt("translate", *common, "-s", "de_DE", "-t", "en_XX", "-i", source, "--pivot", "en_XX")
    assert direct.stdout == english.stdout


def test_pivot_with_mbr_is_two_chained_mbr_translations(ct2):
    quality = QualityOptions(mbr="bleu", candidates=4)
    via = QualityTranslator(ct2, dataclasses.replace(quality, pivot="en_XX")).translate(DE[:5], "de_DE", "ko_KR")
    direct = QualityTranslator(ct2, quality)
    english = direct.translate(DE[:5], "de_DE", "en_XX")
    korean = direct.translate([r.text for r in english], "en_XX", "ko_KR")
    assert texts(via) == texts(korean) and [r.pivot for r in via] == [r.text for r in english]


def test_commands_decode_for_quality(exported, tmp_path):
    """translate-corpus, package and evaluate give what nmt translate gives with the same options."""
    source = tmp_path / "de.txt"
    source.write_text("\n".join(FLORES_DE[:6]) + "\n", encoding="utf-8")
    common = ["-m", exported, "--backend", "ctranslate2", "--threads", "2"]
    mbr = ["--mbr", "chrf", "--candidates", "3"]
    translated = run_nmt("translate", *common, *mbr, "-s", "de_DE", "-t", "en_XX", "-i", source, "--quantization",
                         "float32")
    corpus = run_nmt("translate-corpus", *common, *mbr, "-s", "de_DE", "-t", "en_XX", "-i", source, "-o",
                     tmp_path / "corpus.txt", "--quantization", "float32")
    assert translated.returncode == corpus.returncode == 0, corpus.stderr[-800:]
    assert (tmp_path / "corpus.txt").read_text(encoding="utf-8") == translated.stdout
    job = json.loads((tmp_path / "corpus.txt.parts" / "job.json").read_text(encoding="utf-8"))
    assert job["quality"]["mbr"] == "chrf" and job["quality"]["candidates"] == 3
    filed = run_nmt("translate-file", source, tmp_path / "file.en.txt", *common, *mbr, "-s", "de_DE", "-t", "en_XX",
                    "--quantization", "float32")
    assert filed.returncode == 0, filed.stderr[-800:]
    assert (tmp_path / "file.en.txt").read_text(encoding="utf-8") == translated.stdout

    # evaluate: direct vs pivot in one report, the pivot system's hypotheses are nmt translate --pivot's
    report = tmp_path / "report"
    result = run_nmt("evaluate", "--compare", f"direct={exported}", f"pivot={exported}", "--system-option",
                     "pivot:pivot=en_XX", "-d", "de_DE-ja_XX", "--lines", "1-6", "--no-comet", "--backend",
                     "ctranslate2", "--threads", "2", "-o", report, env={"NMT_FLORES_DIR": str(SAMPLE_FLORES)})
    assert result.returncode == 0, result.stderr[-1500:]
    piv = run_nmt("translate", *common, "-s", "de_DE", "-t", "ja_XX", "-i", source, "--pivot", "en_XX")
    assert (report / "hyps" / "pivot" / "de_DE-ja_XX.hyp").read_text(encoding="utf-8") == piv.stdout
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    systems = {s["name"]: s for s in data["systems"]}
    assert systems["pivot"]["quality"]["pivot"] == "en_XX" and "quality" not in systems["direct"]
    assert "off-target %" in (report / "report.md").read_text(encoding="utf-8")
    bad = run_nmt("evaluate", "--compare", f"a={exported}", f"b={exported}", "--system-option", "c:pivot=en_XX",
                  "--no-comet", "-o", tmp_path / "bad")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        "nmt: error: --system-option: no system named 'c'")

    # package: the quality decoding is recorded in metadata.json and the model card
    archive = tmp_path / "sub.tar.gz"
    test_set = Path(__file__).resolve().parents[1] / "data_prep/sample/wmt/wmt24-general/sources/en-de.txt"
    result = run_nmt("package", test_set, *common, "--rerank", "builtin", "--candidates", "2", "--team", "nmt",
                     "--system", "tiny", "--constrained", "--allow-empty", "-o", archive)
    assert result.returncode == 0, result.stderr[-1500:]
    with tarfile.open(archive) as tar:
        meta = json.loads(tar.extractfile("nmt.tiny/metadata.json").read())
        card = tar.extractfile("nmt.tiny/MODEL_CARD.md").read().decode()
    assert meta["model"]["quality"]["rerank"] == "builtin" and meta["model"]["quality"]["candidates"] == 2
    assert meta["model"]["quality"]["signature"].startswith("builtin|") and "builtin reranking" in card


# ------------------------------------------------------------------------------------------ COMET models

@pytest.fixture(scope="module")
def comet_models(tmp_path_factory):
    pytest.importorskip("comet")
    sys.path.insert(0, str(Path(__file__).parent))
    from comet_tiny import build_tiny_comet

    root = tmp_path_factory.mktemp("comet")
    files = sorted(SAMPLE_FLORES.glob("*.devtest"))
    return build_tiny_comet(root / "da", files), build_tiny_comet(root / "qe", files, kind="qe")


def test_comet_mbr_and_qe_reranking_choose_what_comet_scores(ct2, comet_models):
    comet_dir, qe_dir = comet_models
    options = DecodeOptions(sampling=True, seed=11)
    quality = QualityOptions(mbr="comet", candidates=4, comet_model=str(comet_dir))
    mbr = QualityTranslator(ct2, quality)
    chooser = mbr.chooser(quality)
    candidates = texts(ct2.translate(FLORES_DE[:4], "de_DE", "en_XX", quality.candidate_options(options)))
    # the embedding shortcut (encoder once per sentence, estimator per pair) equals COMET's own predict()
    by_embeddings = chooser.utilities(FLORES_DE[:4], candidates, 4, "de_DE", "en_XX")
    by_predict = chooser._by_triples(FLORES_DE[:4], candidates, 4)
    for (fast, _), (slow, _) in zip(by_embeddings, by_predict):
        assert len(fast) == len(slow) and all(abs(a - b) < 1e-5 for a, b in zip(fast, slow))
    chosen = mbr.translate(FLORES_DE[:4], "de_DE", "en_XX", options)
    for cands, (utilities, _), result in zip(candidates, by_embeddings, chosen):
        distinct = list(dict.fromkeys(cands))
        assert result.text == distinct[max(range(len(distinct)), key=lambda k: (utilities[k], -k))]
    assert mbr.describe(options)["signature"].startswith(f"COMET|model:{comet_dir}")

    qe_options = QualityOptions(rerank="qe", candidates=4, qe_model=str(qe_dir))
    qe = QualityTranslator(ct2, qe_options)
    scorer = qe.chooser(qe_options).scorer
    assert scorer.model.reference_free and "|ref:no|" in scorer.signature()
    reranked = qe.translate(FLORES_DE[:4], "de_DE", "en_XX", options)
    for source, cands, result in zip(FLORES_DE[:4], candidates, reranked):
        distinct = list(dict.fromkeys(cands))
        scores = scorer.score([source] * len(distinct), distinct, [""] * len(distinct))
        assert result.text == distinct[max(range(len(distinct)), key=lambda k: (scores[k], -k))]
    mbr.close()
    qe.close()


def test_comet_models_that_cannot_be_used_are_one_line_errors(exported, comet_models, tmp_path):
    comet_dir, qe_dir = comet_models
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}  # an empty cache: the hub default is absent
    base = ["translate", "-m", exported, "-s", "de_DE", "-t", "en_XX"]
    for extra, needle in ((["--mbr", "comet"], "nmt: error: --mbr comet: n/a: COMET model Unbabel/wmt22-comet-da: "
                                               "it is not in the local Hugging Face cache"),
                          (["--rerank", "qe"], "nmt: error: --rerank qe: n/a: COMET model Unbabel/wmt22-cometkiwi-da"),
                          (["--rerank", "qe", "--qe-model", comet_dir], "is not a reference-free"),
                          (["--mbr", "comet", "--comet-model", qe_dir], "is a reference-free")):
        # a process of its own: the Hugging Face settings in env are read when huggingface_hub is imported
        result = run_nmt_process(*base, *map(str, extra), input="Hallo Welt\n", env=env)
        assert result.returncode == 2 and result.stdout == "", result.stderr[-800:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "--comet-download" not in lines[0], lines
    assert not any((tmp_path / "hf").rglob("*.ckpt"))  # nothing was downloaded


def test_serve_applies_the_options_and_a_request_may_pivot(exported, tmp_path):
    from test_serve import assert_one_line_error, serving, translate

    common = ["--backend", "ctranslate2", "--quantization", "float32", "--threads", "2"]
    mbr = ["--mbr", "chrf", "--candidates", "3"]
    source = tmp_path / "de.txt"
    source.write_text("\n".join(DE[:5]) + "\n", encoding="utf-8")
    expected = {}
    for name, extra in (("direct", []), ("pivot", ["--pivot", "en_XX", "--format", "jsonl"])):
        result = run_nmt("translate", "-m", exported, "-s", "de_DE", "-t", "ja_XX", "-i", source, *common, *mbr,
                         *extra)
        assert result.returncode == 0, result.stderr[-800:]
        expected[name] = result.stdout
    with serving("-m", exported, *common, *mbr) as server:
        status, _, body = translate(server.url, DE[:5], "de", "ja")
        assert status == 200 and [t["text"] for t in body["translations"]] == expected["direct"].split("\n")[:-1]
        status, _, body = translate(server.url, DE[:5], "de", "ja", pivot="en")
        records = [json.loads(line) for line in expected["pivot"].splitlines()]
        assert status == 200 and [t["text"] for t in body["translations"]] == [r["translation"] for r in records]
        assert [t["pivot"] for t in body["translations"]] == [r["pivot"] for r in records]
        assert_one_line_error(*translate(server.url, DE[:1], "de", "ja", pivot="xx")[::2], 400)
