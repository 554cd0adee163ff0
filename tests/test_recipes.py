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
