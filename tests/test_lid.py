"""Language identification: the detector itself, the opt-in filter of `nmt prepare --lid`
(counted per pair, unknown languages passed through and named), and the off-target / empty
columns of `nmt evaluate`, on real sample text."""
from __future__ import annotations

import json

import pytest

from conftest import SAMPLE_RAW, run_nmt

from nmt.data import lid


def _lines(name: str, n: int, start: int = 0) -> list[str]:
    return (SAMPLE_RAW / name).read_text(encoding="utf-8").splitlines()[start:start + n]


def test_detector_policy_on_real_sentences():
    russian = [x for x in _lines("train.ru_RU-en_XX.ru_RU", 200) if len(x.split()) >= 6][:20]
    german = [x for x in _lines("train.de_DE-en_XX.de_DE", 200) if len(x.split()) >= 6][:20]
    assert all(lid.off_target(x, "de_DE") for x in russian)
    assert not any(lid.off_target(x, "de_DE") for x in german)
    assert not lid.off_target("Na und?", "ru_RU")  # too short to judge
    assert not lid.off_target("", "de_DE")
    assert lid.identify(german[0])[0] == "de" and lid.identify(russian[0])[0] == "ru"
    assert lid.supports("de_DE") and lid.supports("zh_CN") and not lid.supports("xh_ZA")


def _raw(tmp_path, intruders: list[str]):
    """German-English and 'Xhosa'-English pairs from the sample; German lines 0-19 replaced by
    Russian sentences (pairs the filter must drop); the 'Xhosa' side is German text, which the
    detector cannot judge as Xhosa (the model has no Xhosa label), so it must pass through."""
    raw = tmp_path / "raw"
    raw.mkdir()
    de = _lines("train.de_DE-en_XX.de_DE", 600)
    en = _lines("train.de_DE-en_XX.en_XX", 600)
    de[:len(intruders)] = intruders
    for pair, src, tgt in (("de_DE-en_XX", de, en), ("xh_ZA-en_XX", de[300:], en[300:])):
        a, b = pair.split("-")
        (raw / f"train.{pair}.{a}").write_text("\n".join(src) + "\n", encoding="utf-8")
        (raw / f"train.{pair}.{b}").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    return raw


def test_prepare_lid_filter_is_opt_in_counted_and_names_unknown_languages(tmp_path):
    intruders = [x for x in _lines("train.ru_RU-en_XX.ru_RU", 400) if len(x.split()) >= 6][:20]
    raw = _raw(tmp_path, intruders)
    common = ["prepare", "--raw", raw, "--vocab-size", "1000", "--valid-size", "20", "--workers", "1"]

    off = run_nmt(*common, "--out", tmp_path / "plain")
    assert off.returncode == 0, off.stderr
    manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert "lid" not in manifest["pairs"]["de_DE-en_XX"]["train"]["dropped"]
    assert "lid" not in manifest["pairs"]["de_DE-en_XX"]
    clean_off = (tmp_path / "plain" / "clean" / "train.de_DE-en_XX.de_DE").read_text(encoding="utf-8")

    on = run_nmt(*common, "--out", tmp_path / "lid", "--lid")
    assert on.returncode == 0, on.stderr
    manifest = json.loads((tmp_path / "lid" / "manifest.json").read_text())
    de = manifest["pairs"]["de_DE-en_XX"]
    # the filter runs before the validation split is held out: no Russian line is left anywhere
    assert de["train"]["dropped"]["lid"] >= len(intruders)
    clean_on = (tmp_path / "lid" / "clean" / "train.de_DE-en_XX.de_DE").read_text(encoding="utf-8")
    valid_on = (tmp_path / "lid" / "clean" / "valid.de_DE-en_XX.de_DE").read_text(encoding="utf-8")
    assert not any(x in clean_on or x in valid_on for x in intruders)
    assert sum(x in clean_off for x in intruders) > 10  # without --lid they are trained on
    assert de["train"]["dropped"]["lid"] <= len(intruders) + 6  # few false drops on the clean rest
    assert de["lid"]["not_judged"] == []
    xh = manifest["pairs"]["xh_ZA-en_XX"]
    assert xh["lid"]["not_judged"] == ["xh_ZA"] and "passed through" in xh["lid"]["note"]
    assert xh["train"]["dropped"]["lid"] <= 3  # only the English side was judged
    assert "xh_ZA" in on.stderr  # and the run said so

    bad = run_nmt(*common, "--out", tmp_path / "bad", "--lid", "--lid-threshold", "1.5")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("nmt: error: lid_threshold")


# -- the same detector in nmt evaluate ----------------------------------------------------
def _md_row(markdown: str, first_cell: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_evaluate_reports_off_target_and_empty_hypotheses(tmp_path):
    hyps = tmp_path / "hyps"
    hyps.mkdir()
    english = (SAMPLE_RAW / "test.ja_XX-en_XX.en_XX").read_text(encoding="utf-8").splitlines()
    n = len(english)
    (hyps / "en_XX-ja_XX.hyp").write_text("\n".join(english) + "\n", encoding="utf-8")  # copied, not translated
    (hyps / "en_XX-de_DE.hyp").write_text("\n" * n, encoding="utf-8")  # a model that stops at once
    (hyps / "de_DE-en_XX.hyp").write_text((SAMPLE_RAW / "test.de_DE-en_XX.en_XX").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    result = run_nmt("evaluate", "--hyp", hyps, "--ml50-dir", SAMPLE_RAW, "--no-comet", "-o", tmp_path / "r",
                     "-d", "de_DE-en_XX,en_XX-de_DE,en_XX-ja_XX")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    scores = {d["direction"]: d["systems"]["hyps"]["scores"] for d in report["directions"]}
    long_enough = sum(len(x.split()) >= lid.MIN_WORDS for x in english)
    assert scores["en_XX-ja_XX"]["off-target %"]["score"] >= 100.0 * (long_enough - 2) / n
    assert "labels: en" in scores["en_XX-ja_XX"]["off-target %"]["detail"]
    assert scores["en_XX-de_DE"]["empty %"]["score"] == 100.0
    assert scores["en_XX-de_DE"]["off-target %"]["score"] == 0.0
    assert scores["de_DE-en_XX"]["off-target %"]["score"] < 2 and scores["de_DE-en_XX"]["empty %"]["score"] == 0
    assert "lid:fasttext-lid.176.ftz" in scores["de_DE-en_XX"]["off-target %"]["signature"]
    markdown = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "| off-target % | empty % |" in markdown
    assert _md_row(markdown, "en_XX-de_DE")[-2:] == ["0.0", "100.0"]
    averages = {a["group"]: a["systems"]["hyps"] for a in report["averages"]}
    assert averages["all"]["empty %"] == pytest.approx(100.0 / 3)
    assert averages["out of English"]["empty %"] == pytest.approx(50.0)
    assert "100.0% of the hypotheses are empty" in result.stderr
    assert "confidently in another language than ja_XX" in markdown

    # a target the detector does not know: n/a with the reason, never a number
    xh = tmp_path / "out.xh"
    xh.write_text((SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8"), encoding="utf-8")
    result = run_nmt("evaluate", "--hyp", xh, "--src", SAMPLE_RAW / "test.de_DE-en_XX.en_XX", "--ref",
                     SAMPLE_RAW / "test.de_DE-en_XX.de_DE", "-d", "en_XX-xh_ZA", "--no-comet", "-o", tmp_path / "x")
    assert result.returncode == 0, result.stderr
    entry = json.loads((tmp_path / "x" / "report.json").read_text())["directions"][0]["systems"]["out"]["scores"]
    assert entry["off-target %"]["score"] is None and "no label for xh_ZA" in entry["off-target %"]["detail"]
    markdown = (tmp_path / "x" / "report.md").read_text(encoding="utf-8")
    assert _md_row(markdown, "en_XX-xh_ZA")[-2] == "n/a"
    assert "off-target % en_XX-xh_ZA: n/a: the language identifier" in markdown
