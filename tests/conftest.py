"""Shared fixtures. Tests run on real text from the embedded sample (data_prep/sample);
those that need ../shared/data skip cleanly without it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data_prep" / "sample"
SAMPLE_RAW = SAMPLE / "ml50" / "raw"
SAMPLE_FLORES = SAMPLE / "flores200" / "devtest"
SHARED = Path(os.environ.get("NMT_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests that take minutes")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "ml50-mini" / "raw").is_dir():
        pytest.skip(f"needs the shared data at {SHARED}")
    return SHARED


def run_nmt(*args, cwd=None, env=None, timeout=900, input=None):
    """Run the real `nmt` command in a subprocess (what users run)."""
    return subprocess.run([sys.executable, "-m", "nmt.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout, input=input)


def small_raw(tmp_path: Path, langs=("de_DE", "ja_XX"), n=400) -> Path:
    """A copy of the first n sample pairs of some languages, as an ML50 raw directory."""
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        for side in (lang, "en_XX"):
            for split in ("train", "test"):
                src = SAMPLE_RAW / f"{split}.{lang}-en_XX.{side}"
                lines = src.read_text(encoding="utf-8").splitlines()[: n if split == "train" else 50]
                (raw / src.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return raw


@pytest.fixture(scope="session")
def prepared_sample(tmp_path_factory) -> Path:
    """The whole embedded sample, prepared once per test session (about 2 s)."""
    from nmt.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("prepared") / "data"
    prepare(PrepareConfig(out=str(out), raw=[str(SAMPLE_RAW)], eval_sets=[str(SAMPLE_FLORES)], vocab_size=4000,
                          valid_size=100))
    return out


TINY_TRAIN = [
    "model.preset=tiny", "model.embed_dim=64", "model.ffn_dim=128", "model.heads=2",
    "model.encoder_layers=1", "model.decoder_layers=1", "training.lr=0.003", "training.warmup_updates=50",
    "training.max_tokens=2048", "training.log_every=25", "validation.max_sentences=40",
    "training.threads=2",
]


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory, prepared_sample) -> Path:
    """A tiny model trained for 300 updates on the sample (about a minute on 2 cores)."""
    from nmt.config import load_train_config
    from nmt.training.translation import train

    run = tmp_path_factory.mktemp("run") / "bundle"
    cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "training.max_updates=300",
                                                "validation.every_updates=150", "checkpoint.every_updates=150"])
    train(cfg, run)
    return run


@pytest.fixture
def copy_tree():
    def _copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst
    return _copy
