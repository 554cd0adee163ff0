"""End-to-end runs of the recipes (slow: CI runs them with `pytest -m slow`)."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
NMT = Path(sys.executable).parent / "nmt"


def _run(script, env, *args, timeout=3600):
    return subprocess.run(["bash", str(REPO / "recipes" / script), *args], capture_output=True, text=True,
                          env={**os.environ, "NMT": str(NMT), **env}, timeout=timeout)


def test_quickstart_end_to_end(tmp_path):
    work = tmp_path / "qs"
    result = _run("quickstart.sh", {"WORKDIR": str(work), "TRAIN_MINUTES": "1.5"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for n in range(1, 7):
        assert (work / f".done.{n}").is_file()
    report = (work / "eval-indomain" / "report.md").read_text()
    for direction in ("de_DE-en_XX", "en_XX-de_DE", "ja_XX-en_XX", "en_XX-ja_XX", "ko_KR-en_XX", "en_XX-ko_KR",
                      "ru_RU-en_XX", "en_XX-ru_RU"):
        assert f"| {direction} | 200 |" in report  # every direction scored on its 200 test lines
    assert "tok:ja-mecab" in report and "COMET: n/a" in report
    assert len((work / "demo.ja_XX").read_text().splitlines()) == 3
    with tarfile.open(work / "submission.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("metadata.json") for n in names) and any(n.endswith(".txt") for n in names)
    training = json.loads((work / "model" / "training.json").read_text())
    history = training["validations"]
    # it learned something: an untrained model's validation loss is about log2(vocabulary) = 12 bits
    assert history[-1]["valid_loss"] < 9 and history[-1]["avg_chrf"] > 0
    # a rerun skips every finished stage; --stage 5 redoes 5 and 6 only
    again = _run("quickstart.sh", {"WORKDIR": str(work), "TRAIN_MINUTES": "1.5"})
    assert again.returncode == 0 and again.stdout.count("done before, skipped") == 6
    redo = _run("quickstart.sh", {"WORKDIR": str(work), "TRAIN_MINUTES": "1.5"}, "--stage", "5")
    assert redo.returncode == 0, redo.stderr[-2000:]
    assert "== stage 5 (translate)" in redo.stdout and "== stage 6 (package)" in redo.stdout
    assert "stage 2" not in redo.stdout
    bad = _run("quickstart.sh", {"WORKDIR": str(work)}, "--stage", "x")
    assert bad.returncode == 2


def test_ml50_recipe_prepares_all_of_ml50_mini(shared_data, tmp_path):
    work = tmp_path / "ml50"
    result = _run("ml50_many_to_many.sh", {"WORKDIR": str(work), "SHARED": str(shared_data)}, "--stop-stage", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    assert len(manifest["directions"]) == 40 and len(manifest["languages"]) == 21
    args = subprocess.run([str(NMT), "train", "--config",
                           str(REPO / "recipes" / "configs" / "ml50_many_to_many.yaml"), "--data", str(work / "data"),
                           "--output", str(work / "model"), "--print-fairseq-args"], capture_output=True, text=True)
    assert args.returncode == 0 and "--lang-pairs" in args.stdout and "--sampling-temperature 5" in args.stdout


def test_distill_and_back_translation_recipes(trained_bundle, prepared_sample, tmp_path):
    """A tiny teacher distils into a student (and a baseline on the original pairs), then back-translates
    English into Korean for a tagged ko_KR->en_XX model: every stage, the counts and the reports."""
    from conftest import SAMPLE_FLORES, SAMPLE_RAW, TINY_TRAIN

    student = " ".join(f"--set {s}" for s in TINY_TRAIN + [
        "training.max_time_minutes=0", "training.max_updates=20", "validation.every_updates=20",
        "checkpoint.every_updates=20"])
    common = {"TEACHER": str(trained_bundle), "FLORES": str(SAMPLE_FLORES), "LINES": "1-30", "THREADS": "2",
              "BASELINE": "1", "EVAL_ARGS": "--no-comet --bootstrap-samples 100"}
    work = tmp_path / "kd"
    result = _run("distill.sh", {**common, "TEACHER_DATA": str(prepared_sample), "WORKDIR": str(work),
                                 "DIRECTIONS": "de_DE-en_XX,en_XX-de_DE", "MAX_LINES": "150",
                                 "STUDENT_ARGS": student})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert all((work / f".done.{n}").is_file() for n in range(1, 8))
    for direction, tgt in (("de_DE-en_XX", "en_XX"), ("en_XX-de_DE", "de_DE")):
        assert len((work / "distill" / f"{direction}.{tgt}").read_text().splitlines()) == 150
        assert len((work / "distill" / f"{direction}.{tgt}.scores").read_text().splitlines()) == 150
    manifest = json.loads((work / "data-student" / "manifest.json").read_text())
    for direction in ("de_DE-en_XX", "en_XX-de_DE"):
        info = manifest["directions"][direction]
        kept = json.loads((work / "distill" / f"{direction}.kept.filter.json").read_text())["kept"]
        assert info["train_real"] == 0 and info["synthetic"]["replace_real"] is True
        assert 0 < info["train_synthetic"] <= kept < 150  # the worst 5% went, then prepare's own filters
    original = json.loads((work / "data-original" / "manifest.json").read_text())
    assert "train_synthetic" not in original["directions"]["de_DE-en_XX"]
    assert original["directions"]["de_DE-en_XX"]["train"] > 140
    report = (work / "report" / "report.md").read_text()
    assert "| direction | teacher (baseline) | student | student-original |" in report
    assert "**Systems**" in report and "sentences/s" in report
    for name in ("teacher", "student", "student-original"):
        assert f"| {name} | ctranslate2" in report
    # back-translation: English -> Korean by the same tiny model, tagged, added to ko_KR-en_XX
    mono = tmp_path / "mono.en_XX"
    mono.write_text("\n".join((SAMPLE_RAW / "train.de_DE-en_XX.en_XX").read_text().splitlines()[:120]) + "\n")
    bt = tmp_path / "bt"
    result = _run("back_translation.sh", {**{k: v for k, v in common.items() if k != "TEACHER"},
                                          "MODEL": str(trained_bundle), "DATA": str(prepared_sample),
                                          "DIRECTION": "ko_KR-en_XX", "MONO": str(mono), "WORKDIR": str(bt),
                                          "SYNTHETIC_RATIO": "0.1", "TRAIN_ARGS": student,
                                          "MAX_RATIO": "100", "DROP_WORST": "0"})  # a 300-update model's output
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifest = json.loads((bt / "data-bt" / "manifest.json").read_text())
    info = manifest["directions"]["ko_KR-en_XX"]
    assert manifest["tags"] == ["<BT>"] and info["synthetic"]["tagged"] is True
    assert info["train_synthetic"] == min(int(0.1 * info["train_real"]), info["synthetic"]["available"]) > 0
    assert json.loads((bt / "bt" / "bundle.json").read_text())["tags"] == ["<BT>"]
    assert "tags" not in json.loads((bt / "baseline" / "bundle.json").read_text())
    report = (bt / "report" / "report.md").read_text()
    assert "baseline (baseline)" in report and "| ko_KR-en_XX |" in report
    hyps = (bt / "report" / "hyps" / "bt" / "ko_KR-en_XX.hyp").read_text().splitlines()
    assert len(hyps) == 30 and not any("<BT>" in h for h in hyps)
