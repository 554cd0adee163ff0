"""nmt evaluate: sacrebleu-exact scores with the right tokenizer per language, COMET (n/a path and a real
tiny COMET model: batching, caching, signature), paired significance tests, group averages, heatmaps, and
an end-to-end run with a trained bundle. Real text from the embedded sample throughout."""
from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import pytest
import sacrebleu
from click.testing import CliRunner

from conftest import SAMPLE_FLORES, SAMPLE_RAW, run_nmt
from nmt.errors import NmtError
from nmt.evaluate import metrics
from nmt.evaluate.cli import evaluate as evaluate_cmd

DIRECTIONS = ("de_DE-en_XX", "en_XX-de_DE", "en_XX-ja_XX", "en_XX-ko_KR", "ja_XX-en_XX")


# -- fixtures -----------------------------------------------------------------------
def _ml50_side(src: str, tgt: str, side: str) -> list[str]:
    pair = f"{src}-{tgt}" if tgt == "en_XX" else f"{tgt}-{src}"
    return (SAMPLE_RAW / f"test.{pair}.{side}").read_text(encoding="utf-8").splitlines()


def _degrade(line: str, lang: str, p: float, rng: random.Random) -> str:
    """Drop words (characters for Japanese) with probability p: a worse, still real, translation."""
    if lang == "ja_XX":
        return "".join(c for c in line if rng.random() > p)
    return " ".join(w for w in line.split() if rng.random() > p)


@pytest.fixture(scope="module")
def systems(tmp_path_factory) -> dict:
    """Two hypothesis directories from the sample's real test references: lightly and heavily degraded."""
    root = tmp_path_factory.mktemp("systems")
    out = {}
    for name, p in (("light", 0.1), ("heavy", 0.35)):
        rng = random.Random(7)
        folder = root / name
        folder.mkdir()
        for direction in DIRECTIONS:
            src, tgt = direction.split("-")
            hyps = [_degrade(line, tgt, p, rng) for line in _ml50_side(src, tgt, tgt)]
            (folder / f"{direction}.hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
        out[name] = folder
    return out


@pytest.fixture(scope="session")
def tiny_comet(tmp_path_factory) -> Path:
    """A tiny random COMET model built offline (a few seconds). Its scores mean nothing."""
    from comet_tiny import build_tiny_comet

    return build_tiny_comet(tmp_path_factory.mktemp("comet"), sorted(SAMPLE_FLORES.glob("*.devtest")))


def _cli(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(evaluate_cmd, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# -- tokenizers and known values -------------------------------------------------------
def test_bleu_tokenizer_follows_the_target_language():
    assert metrics.bleu_tokenizer_for("ja_XX") == "ja-mecab"
    assert metrics.bleu_tokenizer_for("ko_KR") == "ko-mecab"
    assert metrics.bleu_tokenizer_for("zh_CN") == "zh"
    assert metrics.bleu_tokenizer_for("de_DE") == metrics.bleu_tokenizer_for("en_XX") == "13a"
    thai, why = metrics.tokenizer_plan("th_TH")
    if metrics.flores_spm_available("flores200"):
        assert thai == "flores200" and why == ""
    else:  # offline: spBLEU's model is absent, the fallback is char and the report says why
        assert thai == "char" and "not installed" in why
    assert metrics.parse_tokenize("intl,ja_XX=char") == {"*": "intl", "ja_XX": "char"}
    assert metrics.tokenizer_plan("ja_XX", {"ja_XX": "char"}) == ("char", "set by --tokenize")
    assert metrics.tokenizer_plan("de_DE", {"*": "intl"})[0] == "intl"
    with pytest.raises(NmtError, match="unknown BLEU tokenizer"):
        metrics.parse_tokenize("moses")
    with pytest.raises(NmtError, match="unknown language code"):
        metrics.parse_tokenize("xx_YY=char")


def test_report_scores_equal_sacrebleu_on_real_text(systems, tmp_path):
    code, out, err = _cli("--hyp", systems["light"], "--ml50-dir", SAMPLE_RAW, "-o", tmp_path / "r", "--no-comet")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [d["direction"] for d in report["directions"]] == sorted(DIRECTIONS)
    expected_tok = {"en_XX": "13a", "de_DE": "13a", "ja_XX": "ja-mecab", "ko_KR": "ko-mecab"}
    for entry in report["directions"]:
        src, tgt = entry["src"], entry["tgt"]
        hyps = (systems["light"] / f"{entry['direction']}.hyp").read_text(encoding="utf-8").splitlines()
        refs = _ml50_side(src, tgt, tgt)
        scores = entry["systems"]["light"]["scores"]
        bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize=expected_tok[tgt])
        assert entry["bleu_tokenizer"] == expected_tok[tgt]
        assert scores["BLEU"]["score"] == bleu.score  # full precision, not rounded
        # the 1-decimal markdown cell is what sacrebleu itself prints (-w 1)
        assert f"| {entry['direction']} | 200 | {bleu.format(width=1).split()[2]} |" in out
        assert f"tok:{expected_tok[tgt]}" in scores["BLEU"]["signature"]
        assert scores["chrF"]["score"] == sacrebleu.corpus_chrf(hyps, [refs]).score
        assert scores["chrF++"]["score"] == sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score
        assert "nw:2" in scores["chrF++"]["signature"] and "nw:0" in scores["chrF"]["signature"]
        assert entry["testset"]["n_lines"] == 200 and entry["testset"]["lines"] == "1-200"
    # tokenization matters on real Japanese: 13a leaves whole clauses as one token
    ja = next(e for e in report["directions"] if e["tgt"] == "ja_XX")["systems"]["light"]["scores"]["BLEU"]["score"]
    hyps = (systems["light"] / "en_XX-ja_XX.hyp").read_text(encoding="utf-8").splitlines()
    assert abs(ja - sacrebleu.corpus_bleu(hyps, [_ml50_side("en_XX", "ja_XX", "ja_XX")], tokenize="13a").score) > 5
    assert "| en_XX-ja_XX | 200 |" in out and "tok:ja-mecab" in out  # the markdown went to stdout


def test_scores_keep_full_precision_until_display(systems, tmp_path):
    """Rounding once: cells equal sacrebleu's own display, also where rounding to 2 decimals first would not."""
    from nmt.evaluate.report import fmt

    # find real scores where double rounding (to 2, then to 1 decimal) would print another digit than sacrebleu
    double_rounded = []
    for direction in DIRECTIONS:
        src, tgt = direction.split("-")
        hyps = (systems["light"] / f"{direction}.hyp").read_text(encoding="utf-8").splitlines()
        refs = _ml50_side(src, tgt, tgt)
        for n in range(20, 201, 3):
            ours = metrics.chrf(hyps[:n], refs[:n])
            theirs = sacrebleu.corpus_chrf(hyps[:n], [refs[:n]])
            assert ours.score == theirs.score  # not rounded
            assert fmt("chrF", ours.score, 1) == f"{theirs.score:.1f}" == theirs.format(width=1).split()[2]
            if f"{round(theirs.score, 2):.1f}" != f"{theirs.score:.1f}":
                double_rounded.append((direction, n))
    assert double_rounded, "the sample should hold a score that rounding twice would misprint"
    # --decimals 3: the third decimal is real; report.json and report.csv hold the full float
    code, out, err = _cli("--hyp", systems["light"], "--ml50-dir", SAMPLE_RAW, "-d", "de_DE-en_XX,en_XX-ja_XX",
                          "--no-comet", "--decimals", "3", "-o", tmp_path / "r")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    with open(tmp_path / "r" / "report.csv", encoding="utf-8") as handle:
        rows = {(r["row"], r["direction"]): r for r in csv.DictReader(handle)}
    full = {}
    for entry in report["directions"]:
        hyps = (systems["light"] / f"{entry['direction']}.hyp").read_text(encoding="utf-8").splitlines()
        refs = _ml50_side(entry["src"], entry["tgt"], entry["tgt"])
        bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize=entry["bleu_tokenizer"])
        score = entry["systems"]["light"]["scores"]["BLEU"]["score"]
        assert score == bleu.score and float(rows[("direction", entry["direction"])]["BLEU"]) == bleu.score
        assert f"| {entry['direction']} | 200 | {bleu.score:.3f} |" in out
        full[entry["direction"]] = {m: entry["systems"]["light"]["scores"][m]["score"] for m in ("BLEU", "chrF")}
    average = next(a for a in report["averages"] if a["group"] == "all")["systems"]["light"]
    for metric in ("BLEU", "chrF"):
        assert average[metric] == sum(v[metric] for v in full.values()) / 2  # over full-precision values
        assert float(rows[("average", "all")][metric]) == average[metric]


def test_zh_tokenizer_matches_sacrebleu_on_cjk_text():
    """No Chinese in the sample: real Japanese FLORES lines (Han characters) exercise the zh tokenizer path."""
    refs = (SAMPLE_FLORES / "jpn_Jpan.devtest").read_text(encoding="utf-8").splitlines()[:40]
    hyps = [line[: max(1, len(line) * 3 // 4)] for line in refs]
    ours = metrics.bleu(hyps, refs, "zh_CN")
    assert ours.score == sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score
    assert "tok:zh" in ours.signature


def test_line_ranges_select_flores_lines(tmp_path):
    from nmt.evaluate.testsets import LineRange, TestSetSource

    lines = LineRange.parse("3-5,10")
    assert lines.indices(12) == [2, 3, 4, 9] and lines.describe() == "3-5,10"
    assert LineRange.parse("1000-").describe(1012) == "1000-1012"
    for bad in ("0-3", "5-2", "1-5,4-8", "a-b"):
        with pytest.raises(NmtError):
            LineRange.parse(bad)
    with pytest.raises(NmtError, match="past the end"):
        LineRange.parse("1000-1013").indices(1012)
    ts = TestSetSource("flores200", lines).load("de_DE", "ja_XX")
    de = (SAMPLE_FLORES / "deu_Latn.devtest").read_text(encoding="utf-8").splitlines()
    ja = (SAMPLE_FLORES / "jpn_Jpan.devtest").read_text(encoding="utf-8").splitlines()
    assert ts.src == [de[i] for i in (2, 3, 4, 9)] and ts.ref == [ja[i] for i in (2, 3, 4, 9)]
    assert ts.name == "flores200-devtest" and ts.lines_text == "3-5,10" and ts.total_lines == 1012


def test_plain_files_and_full_length_hypotheses(tmp_path):
    """--src/--ref files; a hypothesis file covering the whole test file is cut to --lines."""
    refs = _ml50_side("de_DE", "en_XX", "en_XX")
    hyp = tmp_path / "out.en"
    hyp.write_text("\n".join(refs) + "\n", encoding="utf-8")
    code, out, err = _cli("--hyp", hyp, "--src", SAMPLE_RAW / "test.de_DE-en_XX.de_DE", "--ref",
                          SAMPLE_RAW / "test.de_DE-en_XX.en_XX", "-d", "de_DE-en_XX", "--lines", "11-60",
                          "--testset-name", "tatoeba-sample", "-o", tmp_path / "r", "--no-comet")
    assert code == 0, err
    entry = json.loads((tmp_path / "r" / "report.json").read_text())["directions"][0]
    assert entry["testset"]["name"] == "tatoeba-sample" and entry["testset"]["lines"] == "11-60"
    assert entry["systems"]["out"]["hyp_alignment"] == "full"
    assert entry["systems"]["out"]["scores"]["BLEU"]["score"] == pytest.approx(100.0)  # sacrebleu's float, unrounded
    assert "| de_DE-en_XX | 50 | 100.0 |" in out
    assert "tatoeba-sample, lines 11-60 of 200" in out


# -- errors: one line, exit code 2 --------------------------------------------------------
def test_bad_inputs_are_one_line_errors(systems, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    lines = (systems["light"] / "de_DE-en_XX.hyp").read_text(encoding="utf-8").splitlines()
    (short / "de_DE-en_XX.hyp").write_text("\n".join(lines[:150]) + "\n", encoding="utf-8")
    cases = [
        (["--hyp", short, "--ml50-dir", SAMPLE_RAW], "has 150 lines but test set ml50-test de_DE-en_XX has 200"),
        (["--hyp", systems["light"], "-d", "xx_XX-en_XX", "--ml50-dir", SAMPLE_RAW], "unknown language code"),
        (["--hyp", tmp_path / "nope"], "does not exist"),
        (["--hyp", systems["light"], "-d", "de_DE-fr_XX"], "has no de_DE-fr_XX"),
        (["--hyp", systems["light"], "--flores-dir", tmp_path / "missing"], "FLORES-200 directory"),
        (["--hyp", systems["light"], "--lines", "5-1", "--ml50-dir", SAMPLE_RAW], "bad --lines"),
        (["--compare", systems["light"]], "at least two systems"),
        (["--hyp", systems["light"] / "de_DE-en_XX.hyp", "-d", "de_DE-en_XX,en_XX-de_DE", "--ml50-dir", SAMPLE_RAW],
         "holds one direction"),
        (["--hyp", systems["light"], "--ml50-dir", SAMPLE_RAW, "--comet-model", tmp_path / "no-model"],
         "neither an existing path nor a hub name"),
    ]
    for args, message in cases:
        code, _, err = _cli(*args, "-o", tmp_path / "r")
        assert code == 2, (args, err)
        assert message in err and err.startswith("nmt: error:") and err.count("\n") == 1, err
    proc = run_nmt("evaluate", "--hyp", short, "--ml50-dir", SAMPLE_RAW, "-o", tmp_path / "r2", "--no-comet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "150 lines" in proc.stderr


def test_train_counts_that_are_not_a_table_are_one_line_errors(tmp_path):
    from nmt.evaluate.groups import load_train_counts

    for text in ("[1, 2]", '"directions"', '{"directions": [1]}', '{"directions": {"de_DE-en_XX": {"train": "x"}}}'):
        path = tmp_path / "counts.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(NmtError) as info:
            load_train_counts(path)
        assert "\n" not in str(info.value)


# -- COMET ------------------------------------------------------------------------------
def test_comet_is_na_when_the_model_is_not_available(systems, tmp_path):
    args = ["--hyp", systems["light"], "--ml50-dir", SAMPLE_RAW, "-d", "de_DE-en_XX,en_XX-ja_XX",
            "--comet-model", "Unbabel/no-such-comet-model", "--comet-cache", tmp_path / "cache"]
    code, out, err = _cli(*args, "-o", tmp_path / "r")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["comet"]["status"] == "n/a" and "not in the local Hugging Face cache" in report["comet"]["reason"]
    for entry in report["directions"]:
        assert entry["systems"]["light"]["scores"]["COMET"]["score"] is None
    rows = [line for line in out.splitlines() if line.startswith("| de_DE-en_XX") or line.startswith("| all")]
    assert rows and all(row.rstrip(" |").endswith("n/a") for row in rows)
    assert "COMET: n/a: COMET model Unbabel/no-such-comet-model" in out
    with open(tmp_path / "r" / "report.csv", encoding="utf-8") as handle:
        assert {row["COMET"] for row in csv.DictReader(handle)} == {"n/a"}
    code, _, err = _cli(*args, "-o", tmp_path / "r2", "--require-comet")
    assert code == 2 and "--require-comet" in err


def test_comet_scores_batches_and_caches(tiny_comet, tmp_path):
    from nmt.comet import CometScorer, CometUnavailable

    src = _ml50_side("de_DE", "en_XX", "de_DE")[:30]
    ref = _ml50_side("de_DE", "en_XX", "en_XX")[:30]
    mt = [_degrade(line, "en_XX", 0.3, random.Random(i)) for i, line in enumerate(ref)]
    first = CometScorer(str(tiny_comet), batch_size=4, cache_dir=tmp_path / "cache")
    scores = first.score(src, mt, ref)
    assert len(scores) == 30 and all(isinstance(s, float) for s in scores)
    assert first.calls == 1 and first.computed == len(set(zip(src, mt, ref)))
    signature = first.signature()
    assert signature.startswith(f"COMET|model:{tiny_comet}|sha256:") and "|comet:2.2.7|" in signature
    first.close()
    # a rerun (new process, same cache) computes nothing and does not even load the model
    again = CometScorer(str(tiny_comet), batch_size=16, cache_dir=tmp_path / "cache")
    assert again.score(src, mt, ref) == scores
    assert again.calls == 0 and again.computed == 0 and again._loaded is None
    # one new segment: only it is computed
    assert again.score(src + ["Hallo."], mt + ["Hello."], ref + ["Hello."])[:30] == scores
    assert again.calls == 1 and again.computed == 1
    # batch size does not change the scores
    fresh = CometScorer(str(tiny_comet), batch_size=16, cache_dir=tmp_path / "other-cache")
    assert fresh.score(src, mt, ref) == pytest.approx(scores, abs=1e-5)
    # a checkpoint without its encoder tokenizer/config: n/a with the reason, or --comet-encoder supplies it
    bare = tmp_path / "bare"
    shutil.copytree(tiny_comet, bare, ignore=shutil.ignore_patterns("encoder"))
    with pytest.raises(CometUnavailable, match="encoder .* is not in the local Hugging Face cache"):
        CometScorer(str(bare), cache_dir=tmp_path / "cache")
    supplied = CometScorer(str(bare), cache_dir=tmp_path / "cache", encoder=str(tiny_comet / "encoder"))
    assert f"encoder:{tiny_comet / 'encoder'}" in supplied.signature()
    assert supplied.score(src[:3], mt[:3], ref[:3]) == pytest.approx(scores[:3], abs=1e-5)


# -- significance, averages, heatmaps ---------------------------------------------------------
def test_compare_marks_significant_differences(systems, tiny_comet, tmp_path):
    same = tmp_path / "same"
    shutil.copytree(systems["light"], same)
    code, out, err = _cli("--compare", systems["light"], f"copy={same}", systems["heavy"], "--ml50-dir", SAMPLE_RAW,
                          "-d", "de_DE-en_XX,en_XX-ja_XX,en_XX-ko_KR", "--lines", "1-120", "--comet-model",
                          tiny_comet, "--comet-cache", tmp_path / "cache", "--paired-test", "both",
                          "--bootstrap-samples", "300", "--ar-trials", "500", "-o", tmp_path / "cmp")
    assert code == 0, err
    report = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert report["baseline"] == "light" and report["comet"]["status"] == "ok"
    assert report["significance"]["bs"]["n_samples"] == 300 and report["significance"]["ar"]["n_samples"] == 500
    for entry in report["directions"]:
        heavy = entry["systems"]["heavy"]["significance"]
        copy = entry["systems"]["copy"]["significance"]
        for metric in ("BLEU", "chrF", "chrF++"):
            assert heavy["bs"][metric]["p_value"] < 0.01 and heavy["ar"][metric]["p_value"] < 0.01
            # identical output is no evidence of a difference (sacrebleu alone would say p = 1/(n+1))
            assert copy["bs"][metric]["p_value"] == 1.0 and copy["bs"][metric]["zero_difference"]
        assert "COMET" in heavy["bs"] and copy["bs"]["COMET"]["p_value"] == 1.0
        assert entry["systems"]["light"]["bootstrap"]["BLEU"]["ci"] > 0
        assert entry["testset"]["lines"] == "1-120"
    # sacrebleu's own paired test gives the same p-value for the same seed and resamples
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    hyp = {n: (systems[n] / "en_XX-ja_XX.hyp").read_text(encoding="utf-8").splitlines()[:120]
           for n in ("light", "heavy")}
    refs = _ml50_side("en_XX", "ja_XX", "ja_XX")[:120]
    _, direct = PairedTest([("light", hyp["light"]), ("heavy", hyp["heavy"])], {"BLEU": BLEU(tokenize="ja-mecab")},
                           references=[refs], test_type="bs", n_samples=300)()
    ja = next(e for e in report["directions"] if e["direction"] == "en_XX-ja_XX")
    assert ja["systems"]["heavy"]["significance"]["bs"]["BLEU"]["p_value"] == direct["BLEU"][2 - 1].p_value
    assert ja["systems"]["heavy"]["scores"]["BLEU"]["score"] == direct["BLEU"][1].score
    # markdown: one table per metric, stars on the heavy column only
    bleu_table = out.split("### BLEU")[1].split("###")[0]
    heavy_rows = [r for r in bleu_table.splitlines() if r.startswith("| en_XX")]
    assert heavy_rows and all(r.rstrip(" |").endswith("*") for r in heavy_rows)
    assert "p=1.000" in bleu_table and "| light (baseline) | copy | heavy |" in bleu_table
    # one batched COMET call for every direction and system; the copy's segments are scored once
    assert report["comet"]["segments"] == 3 * 3 * 120 and report["comet"]["model_calls"] == 1
    assert report["comet"]["computed"] <= 2 * 3 * 120
    assert sorted(p.name for p in (tmp_path / "cmp").glob("heatmap-*.png")) == [
        "heatmap-chrF-copy.png", "heatmap-chrF-heavy.png", "heatmap-chrF-light.png"]


def test_group_averages_and_resource_buckets(systems, tmp_path):
    counts = tmp_path / "manifest.json"
    counts.write_text(json.dumps({"directions": {"de_DE-en_XX": {"train": 50_000}, "en_XX-de_DE": {"train": 50_000},
                                                 "ja_XX-en_XX": {"train": 2_000}, "en_XX-ja_XX": {"train": 2_000}}}))
    code, out, err = _cli("--hyp", systems["light"], "--ml50-dir", SAMPLE_RAW, "--no-comet", "--train-counts",
                          counts, "--resource-buckets", "high=10000,low=0", "--heatmap", "BLEU",
                          "-o", tmp_path / "r")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    by_dir = {e["direction"]: e for e in report["directions"]}
    assert by_dir["en_XX-ko_KR"]["bucket"] == "zero-shot" and by_dir["en_XX-ko_KR"]["train_pairs"] == 0
    assert by_dir["de_DE-en_XX"]["bucket"] == "high" and by_dir["ja_XX-en_XX"]["bucket"] == "low"
    averages = {a["group"]: a for a in report["averages"]}
    chrf = {d: e["systems"]["light"]["scores"]["chrF"]["score"] for d, e in by_dir.items()}
    into = [d for d in DIRECTIONS if d.endswith("en_XX")]
    assert averages["into English"]["directions"] == sorted(into)
    assert averages["into English"]["systems"]["light"]["chrF"] == pytest.approx(sum(chrf[d] for d in into) / 2)
    assert averages["all"]["systems"]["light"]["chrF"] == pytest.approx(sum(chrf.values()) / 5)
    assert set(averages) == {"all", "into English", "out of English", "resource: high (>= 10k pairs)",
                             "resource: low (< 10k pairs)", "resource: zero-shot (no training data)"}
    assert "| resource: zero-shot (no training data) | 1 |" in out
    png = tmp_path / "r" / "heatmap-BLEU.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "r" / "report.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["row"] for r in rows} == {"direction", "average"} and len(rows) == 5 + len(averages)
    segments = (tmp_path / "r" / "segments" / "en_XX-ja_XX.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(segments) == 200 and json.loads(segments[0])["line"] == 1


# -- end to end with a trained model ------------------------------------------------------------
def test_evaluate_a_trained_bundle_end_to_end(trained_bundle, tiny_comet, tmp_path):
    out = tmp_path / "report"
    proc = run_nmt("evaluate", "--model", trained_bundle, "-d", "de_DE-en_XX,en_XX-ja_XX,en_XX-ko_KR,ru_RU-de_DE",
                   "--lines", "1-4", "--beam", "2", "--backend", "fairseq", "--comet-model", tiny_comet,
                   "--comet-cache", tmp_path / "cache", "-o", out, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["testset"]["name"] == "flores200-devtest"
    assert [d["direction"] for d in report["directions"]] == ["de_DE-en_XX", "en_XX-ja_XX", "en_XX-ko_KR",
                                                              "ru_RU-de_DE"]
    system = report["systems"][0]
    assert system["kind"] == "bundle" and system["decode"]["beam"] == 2 and system["backend"] == "fairseq"
    for entry in report["directions"]:
        assert entry["testset"]["lines"] == "1-4" and entry["testset"]["n_lines"] == 4
        assert len(entry["testset"]["ref_sha256"]) == 64
        res = entry["systems"]["bundle"]
        hyps = Path(res["hyp_file"]).read_text(encoding="utf-8").splitlines()
        assert len(hyps) == 4 and Path(res["hyp_file"]).parent == out / "hyps"
        refs = (SAMPLE_FLORES / f"{_flores(entry['tgt'])}.devtest").read_text(encoding="utf-8").splitlines()[:4]
        tok = {"en_XX": "13a", "ja_XX": "ja-mecab", "ko_KR": "ko-mecab", "de_DE": "13a"}[entry["tgt"]]
        assert res["scores"]["BLEU"]["score"] == sacrebleu.corpus_bleu(hyps, [refs], tokenize=tok).score
        assert isinstance(res["scores"]["COMET"]["score"], float)
        assert res["scores"]["COMET"]["signature"] == report["comet"]["signature"]
    by_dir = {e["direction"]: e for e in report["directions"]}
    assert by_dir["ru_RU-de_DE"]["bucket"] == "zero-shot" and by_dir["de_DE-en_XX"]["bucket"] == "very-low"
    assert by_dir["de_DE-en_XX"]["train_pairs"] > 1000
    assert (out / "heatmap-chrF.png").is_file() and (out / "report.md").read_text() in proc.stdout
    assert "| de_DE-en_XX | 4 |" in proc.stdout and "| non-English | 1 |" in proc.stdout
    # the report directory doubles as a hypothesis directory: rescoring it reuses the COMET cache
    code, _, err = _cli("--hyp", out, "--lines", "1-4", "--comet-model", tiny_comet, "--comet-cache",
                        tmp_path / "cache", "-o", tmp_path / "again")
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["comet"]["computed"] == 0 and again["comet"]["model_calls"] == 0
    assert [e["systems"]["report"]["scores"] for e in again["directions"]] == \
        [e["systems"]["bundle"]["scores"] for e in report["directions"]]


def _flores(code: str) -> str:
    from nmt import langs

    return langs.get(code).flores
