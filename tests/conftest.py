"""Shared fixtures. Tests run on real text from the embedded sample (data_prep/sample);
those that need ../shared/data skip cleanly without it."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import traceback
import warnings
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


def run_nmt_process(*args, cwd=None, env=None, timeout=900, input=None):
    """Run the real `nmt` command in a subprocess: for what only a process shows (signals, exit on a
    kill, the console entry point, its start-up)."""
    return subprocess.run([sys.executable, "-m", "nmt.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout, input=input)


def killed_at(where: str, *args, after: bool = False, nth: int = 1, first: str = "") -> subprocess.CompletedProcess:
    """Run ``nmt ARGS`` in a new process that SIGKILLs itself when ``where`` (``module:attribute.path``) is
    called the ``nth`` time (or has returned, with ``after``), running the code ``first`` just before: a
    kill at exactly the moment a test is about, however fast the machine."""
    module, path = where.split(":")
    owner_path, _, name = path.rpartition(".")
    code = f"""import functools, importlib, os, signal, sys
owner = importlib.import_module({module!r})
for part in [p for p in {owner_path!r}.split(".") if p]:
    owner = getattr(owner, part)
original = getattr(owner, {name!r})
calls = []
@functools.wraps(original)
def killed(*args, **kwargs):
    calls.append(1)
    if len(calls) < {nth!r}:
        return original(*args, **kwargs)
    if {after!r}:
        original(*args, **kwargs)
{textwrap.indent(first, "    ")}
    os.kill(os.getpid(), signal.SIGKILL)
setattr(owner, {name!r}, killed)
from nmt.cli import invoke
sys.exit(invoke(sys.argv[1:]))
"""
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, f"not killed at {where}: {result.stderr[-2000:]}"
    return result


def run_nmt(*args, cwd=None, env=None, input=None):
    """Run an `nmt` command line in this process, as the console script does (``nmt.cli.invoke``), with
    its own stdin, stdout and stderr; the result looks like ``run_nmt_process``'s. An exception that
    would end the process is a traceback on stderr and status 1, as it would be there."""
    from click.testing import CliRunner

    from nmt.cli import invoke

    previous_dir = os.getcwd()
    root = logging.getLogger()
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}  # nmt -v turns fairseq's loggers up: for this call only
    with CliRunner().isolation(input=input, env=env) as (out, err, _), warnings.catch_warnings():
        handler = logging.StreamHandler(sys.stderr)  # the isolation's stderr: log lines land with the output
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | %(name)s | %(message)s"))
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            if cwd is not None:
                os.chdir(cwd)
            code = invoke([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            code = 1
        finally:
            os.chdir(previous_dir)
            root.removeHandler(handler)
            root.setLevel(level)
            for name, logger in list(logging.root.manager.loggerDict.items()):
                if isinstance(logger, logging.Logger):
                    logger.setLevel(levels.get(name, logging.NOTSET))
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return subprocess.CompletedProcess(["nmt", *map(str, args)], code, stdout.decode("utf-8", "replace"),
                                       stderr.decode("utf-8", "replace"))


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


@pytest.fixture(scope="session")
def exported_bundle(tmp_path_factory, trained_bundle) -> Path:
    """A copy of the trained tiny bundle with float32 and int8 CTranslate2 exports, made once. The
    trained bundle itself never gets an export, so what ``--backend auto`` picks for it does not
    depend on which tests ran first."""
    bundle = tmp_path_factory.mktemp("exported") / "bundle"
    shutil.copytree(trained_bundle, bundle, ignore=shutil.ignore_patterns("ctranslate2-*"))
    for quantization in ("float32", "int8"):
        result = run_nmt("export", "--model", bundle, "--quantization", quantization)
        assert result.returncode == 0, result.stderr[-1500:]
    return bundle


@pytest.fixture
def copy_tree():
    def _copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst
    return _copy
