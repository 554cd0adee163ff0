"""Reliability: SIGKILL at random points, full disks, bad input, hostile files, determinism.

Each test here backs one row of docs/RELIABILITY.md.
"""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SAMPLE_FLORES, SAMPLE_RAW, TINY_TRAIN, killed_at, run_nmt, run_nmt_process, small_raw
from nmt.bundle import Bundle
from nmt.fairseq_backend import load_state

NMT = [sys.executable, "-m", "nmt.cli"]


def _data_files(root: Path) -> dict:
    """Every prepared-data file except the run bookkeeping (timings live in stage.json/manifest.json)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("stage.json", "manifest.json")}


PREPARE = ["prepare", "--raw", SAMPLE_RAW, "--eval-set", SAMPLE_FLORES, "--vocab-size", "4000"]


@pytest.fixture(scope="module")
def reference_prepare(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "data"
    assert run_nmt(*PREPARE, "--out", out).returncode == 0
    return out


def _finished_stages_are_complete(out: Path, reference: Path) -> None:
    ref = _data_files(reference)
    for stage in ("clean", "spm", "bin"):
        if (out / stage).is_dir():  # a stage directory only exists once complete: it must equal the reference
            got = {k: v for k, v in _data_files(out).items() if k.startswith(stage + "/")}
            want = {k: v for k, v in ref.items() if k.startswith(stage + "/")}
            assert got == want, f"stage {stage} looks finished but differs from an uninterrupted run"


# where nmt prepare is killed: the clean stage built but not committed, the bin stage half written (its
# first dataset closed), the bin stage built but not committed, every stage committed but no manifest
PREPARE_KILLS = [("nmt.data.prepare:stage_clean", True), ("nmt.data.indexed:IndexedWriter.close", True),
                 ("nmt.data.prepare:stage_bin", True), ("nmt.data.prepare:_write_manifest", False)]


@pytest.mark.parametrize("where,after", PREPARE_KILLS)
def test_prepare_killed_inside_each_stage_then_rerun_equals_uninterrupted(reference_prepare, tmp_path, where, after):
    out = tmp_path / "run"
    killed_at(where, *PREPARE, "--out", out, after=after)
    _finished_stages_are_complete(out, reference_prepare)
    assert not (out / "manifest.json").exists()
    assert run_nmt(*PREPARE, "--out", out).returncode == 0
    assert _data_files(out) == _data_files(reference_prepare)


def test_prepare_is_deterministic_bit_for_bit(reference_prepare, tmp_path):
    out = tmp_path / "again"
    assert run_nmt(*PREPARE, "--out", out).returncode == 0
    assert _data_files(out) == _data_files(reference_prepare)


# SIGKILLs of one training run (a checkpoint every 10 updates), each in a new process resuming the last:
# before its second checkpoint write (update 20); with a new numbered checkpoint (30) written but
# checkpoint_last.pt not yet moved to it; with a checkpoint's temporary file (30) complete but not renamed
TRAIN_KILLS = [("nmt.fairseq_backend.checkpoint_files:write_checkpoint", False, 2),
               ("nmt.fairseq_backend.checkpoint_files:link_replace", False, 2), ("torch:save", True, 1)]


def test_training_killed_while_saving_resumes_and_checkpoints_always_load(prepared_sample, tmp_path):
    out = tmp_path / "run"
    sets = TINY_TRAIN + [f"data={prepared_sample}", "training.max_updates=40", "checkpoint.every_updates=10",
                         "validation.every_updates=40"]
    args = ["train", "--output", out] + [x for s in sets for x in ("--set", s)]
    last = out / "checkpoints" / "checkpoint_last.pt"
    resumed_at = []
    for where, after, nth in TRAIN_KILLS:
        killed_at(where, *args, after=after, nth=nth)
        for ckpt in (out / "checkpoints").glob("*.pt"):  # never a truncated checkpoint
            load_state(ckpt)
        resumed_at.append(load_state(last)["optimizer_history"][-1]["num_updates"])
    assert resumed_at == [10, 20, 20]
    assert list((out / "checkpoints").glob(".*.tmp"))  # what the kills left ...
    result = run_nmt(*args)
    assert result.returncode == 0, result.stderr[-1500:]
    assert not list((out / "checkpoints").glob(".*.tmp"))  # ... the next save removed
    assert "resuming at update 20" in result.stderr
    manifest = json.loads((out / "training.json").read_text())
    assert manifest["updates"] == 40 and [s["update"] for s in manifest["starts"]] == [0, 10, 20, 20]
    assert load_state(last)["optimizer_history"][-1]["num_updates"] == 40


def test_the_python_api_trains_without_signal_handlers_and_stops_on_request(prepared_sample, tmp_path):
    """Library training installs no handler (the caller's stay in place) and stops when the caller's
    StopRequest asks: the update in progress finishes and is saved, and the result says why."""
    import threading

    from nmt.config import load_train_config
    from nmt.stopping import StopRequest
    from nmt.training.translation import train

    run = tmp_path / "run"
    cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "training.max_updates=100000",
                                                "checkpoint.every_updates=1000", "validation.every_updates=1000",
                                                "training.log_every=5"])
    mine = lambda signum, frame: None  # noqa: E731
    previous = signal.signal(signal.SIGTERM, mine)
    seen: list = []
    stop = StopRequest()

    def watch() -> None:  # stops the run once it has logged update 10, noting the handlers it ran under
        deadline = time.time() + 300
        log = run / "train.log"
        while time.time() < deadline and not (log.exists() and "update 10 " in log.read_text()):
            time.sleep(0.2)
        seen.append((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)))
        stop.request()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = train(cfg, run, stop=stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.request()
    watcher.join(timeout=10)
    assert seen == [(mine, signal.default_int_handler)]  # training ran under the caller's handlers
    assert result.signal == signal.SIGTERM and result.stop_reason == "stopped by SIGTERM"
    assert result.updates >= 10
    assert load_state(run / "checkpoints" / "checkpoint_last.pt")["optimizer_history"][-1]["num_updates"] \
        == result.updates  # the update in progress finished and was saved, though no checkpoint was due


def test_training_losses_are_deterministic_on_cpu(prepared_sample, tmp_path):
    from nmt.config import load_train_config
    from nmt.training.translation import train

    runs = []
    for name in ("a", "b"):
        cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "training.max_updates=40",
                                                    "validation.every_updates=20", "checkpoint.every_updates=20"])
        train(cfg, tmp_path / name)
        manifest = json.loads((tmp_path / name / "training.json").read_text())
        runs.append([(v["update"], v["valid_loss"], v["chrf"]) for v in manifest["validations"]])
        weights = load_state(tmp_path / name / "checkpoints" / "checkpoint_last.pt")["model"]
        runs[-1].append(float(weights["decoder.layers.0.fc1.weight"].double().sum()))
    assert runs[0] == runs[1]


def test_export_killed_then_rerun(trained_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle, ignore=shutil.ignore_patterns("ctranslate2-*"))
    args = ["export", "--model", bundle, "--quantization", "int8", "--force"]
    final = bundle / "ctranslate2-int8"
    # killed when the converter has written its files: nothing looks exported
    killed_at("ctranslate2.converters:FairseqConverter.convert", *args, after=True)
    assert not final.exists()
    assert run_nmt_process(*args).returncode == 0
    assert (final / "model.bin").is_file() and (final / "nmt_export.json").is_file()
    assert not [p.name for p in bundle.iterdir() if p.name.startswith(".ctranslate2")]
    exported = (final / "model.bin").read_bytes()
    # a re-export killed as it would move into place: the previous export stays, complete
    killed_at("nmt.export:replace_dir", *args)
    assert (final / "model.bin").read_bytes() == exported and (final / "nmt_export.json").is_file()
    from nmt.translate.translator import Translator

    translator = Translator(bundle, backend="ctranslate2")
    out = translator.translate_text(["Hallo Welt", "Wie geht es dir?"], "de_DE", "en_XX")
    assert len(out) == 2 and all(out)


# ------------------------------------------------------------------ full disks

@pytest.fixture
def small_disk(tmp_path):
    """A size-limited tmpfs (needs root); remountable to another size."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()})")

    def resize(size: str):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)

    yield mount, resize
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_disk_full_during_prepare_keeps_finished_stages(small_disk, tmp_path):
    mount, resize = small_disk
    raw = small_raw(tmp_path, langs=("de_DE", "ja_XX"), n=400)
    out = mount / "data"
    cmd = ["prepare", "--raw", raw, "--out", out, "--vocab-size", "1000", "--valid-size", "20"]
    resize("300k")  # enough for the clean text, not for the rest
    result = run_nmt(*cmd)
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]  # (the lines before are progress logging)
    assert last.startswith("nmt: error: no space left on device") and "rerun" in last
    assert "Traceback" not in result.stderr
    assert (out / "clean" / "stage.json").is_file()  # the clean stage had room and finished
    assert not (out / "bin").exists()
    clean_before = _data_files(out / "clean")
    resize("50m")
    result = run_nmt(*cmd)
    assert result.returncode == 0, result.stderr
    assert "stage clean: up to date" in result.stderr  # the finished stage was kept, not redone
    assert _data_files(out / "clean") == clean_before
    assert (out / "bin" / "stage.json").is_file()


def test_disk_full_while_saving_a_checkpoint(small_disk, prepared_sample):
    mount, resize = small_disk
    resize("60m")
    out = mount / "run"
    sets = TINY_TRAIN + [f"data={prepared_sample}", "checkpoint.every_updates=10", "validation.every_updates=1000",
                         "checkpoint.keep_last=1"]
    args = ["train", "--output", out] + [x for s in sets + ["training.max_updates=10"] for x in ("--set", s)]
    result = run_nmt(*args)
    assert result.returncode == 0, result.stderr[-1500:]
    size = (out / "checkpoints" / "checkpoint_last.pt").stat().st_size
    used = shutil.disk_usage(mount).used  # (checkpoint copies are hard links: count blocks, not names)
    resize(f"{(used + size // 2) // 1024 + 64}k")  # no room for another checkpoint
    args = ["train", "--output", out] + [x for s in sets + ["training.max_updates=30"] for x in ("--set", s)]
    result = run_nmt(*args)
    assert result.returncode != 0
    assert "could not write checkpoint" in result.stderr and "intact" in result.stderr
    assert "Traceback" not in result.stderr
    state = load_state(out / "checkpoints" / "checkpoint_last.pt")
    assert state["optimizer_history"][-1]["num_updates"] == 10
    assert not list((out / "checkpoints").glob(".*.tmp"))


# ------------------------------------------------------------------ bad input

def test_crlf_nul_and_huge_lines_in_prepare(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",))
    lf = raw / "train.de_DE-en_XX.de_DE"
    crlf_dir = tmp_path / "crlf"
    shutil.copytree(raw, crlf_dir)
    (crlf_dir / lf.name).write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    a = run_nmt("prepare", "--raw", raw, "--out", tmp_path / "a", "--vocab-size", "500", "--valid-size", "20")
    b = run_nmt("prepare", "--raw", crlf_dir, "--out", tmp_path / "b", "--vocab-size", "500", "--valid-size", "20")
    assert a.returncode == 0 and b.returncode == 0
    assert _data_files(tmp_path / "a") == _data_files(tmp_path / "b")  # CRLF is read as LF
    lines = lf.read_bytes().split(b"\n")
    lines[0] = b"Hallo\x00 Welt"  # NUL removed by normalisation
    lines[1] = b"x " * 500_000  # a 1 MB single line: dropped by the length filter, counted
    lf.write_bytes(b"\n".join(lines))
    c = run_nmt("prepare", "--raw", raw, "--out", tmp_path / "c", "--vocab-size", "500", "--valid-size", "20")
    assert c.returncode == 0, c.stderr
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["pairs"]["de_DE-en_XX"]["train"]["dropped"]["too_long"] >= 1
    assert "\x00" not in (tmp_path / "c" / "clean" / "train.de_DE-en_XX.de_DE").read_text()


def test_one_megabyte_line_in_translate_keeps_alignment(trained_bundle, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Hallo\n" + "Haus " * 200_000 + "\nTschüss\n")
    result = run_nmt("translate", "-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", src, "--beam", "1",
                     "--backend", "fairseq")
    assert result.returncode == 0
    out = result.stdout.split("\n")
    assert len(out) == 4 and out[1] == "" and out[0] and out[2]
    assert "line 2:" in result.stderr


@pytest.mark.parametrize("damage", ["missing_spm", "corrupt_dict", "truncated_checkpoint", "dict_mismatch",
                                    "bundle_json_garbage"])
def test_damaged_bundles_are_clear_errors(trained_bundle, tmp_path, damage):
    bundle = tmp_path / "b"
    shutil.copytree(trained_bundle, bundle, ignore=shutil.ignore_patterns("ctranslate2-*"))
    ckpt = bundle / "checkpoints" / "checkpoint_best.pt"
    expected = {"missing_spm": "incomplete: missing spm.model", "corrupt_dict": "does not match its SHA-256",
                "truncated_checkpoint": "truncated or corrupted", "dict_mismatch": "dictionary does not match",
                "bundle_json_garbage": "not valid JSON"}[damage]
    if damage == "missing_spm":
        (bundle / "spm.model").unlink()
    elif damage == "corrupt_dict":
        with open(bundle / "dict.txt", "a") as f:
            f.write("extra 1\n")
    elif damage == "truncated_checkpoint":
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) // 3])
    elif damage == "dict_mismatch":  # a consistent bundle whose dictionary is not the checkpoint's
        with open(bundle / "dict.txt", "a") as f:
            f.write("extra 1\n")
        meta = Bundle.load(bundle, need_checkpoint=False, verify=False)
        meta.save()
    else:
        (bundle / "bundle.json").write_text("{not json")
    result = run_nmt("translate", "-m", bundle, "-s", "de_DE", "-t", "en_XX", "--backend", "fairseq", input="Hallo\n")
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_unknown_language_in_prepare_and_translate(trained_bundle):
    result = run_nmt("translate", "-m", trained_bundle, "-s", "xx_YY", "-t", "en_XX", input="a\n")
    assert result.returncode == 2 and "xx_YY" in result.stderr


def test_missing_bundle_and_input(tmp_path, trained_bundle):
    result = run_nmt("translate", "-m", tmp_path / "nope", "-s", "de_DE", "-t", "en_XX", input="a\n")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run_nmt("translate", "-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", tmp_path / "none.txt")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_package_killed_then_rerun(trained_bundle, tmp_path):
    import tarfile

    from conftest import REPO

    wmt = REPO / "data_prep" / "sample" / "wmt" / "wmt24-general" / "sources"
    archive = tmp_path / "sub.tar.gz"
    args = ["package", "--model", trained_bundle, "--team", "t", "--system", "s", "--constrained", "--output",
            archive, "--force", "--backend", "fairseq", wmt / "en-de.txt", wmt / "en-ja.txt"]

    def members():
        with tarfile.open(archive) as tar:  # a complete, readable archive
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}

    def leftovers():
        return sorted(p.name for p in tmp_path.iterdir() if p.name != archive.name)

    killed_at("nmt.translate.translator:Translator.translate", *args)  # while translating
    assert not archive.exists() and leftovers() == []
    killed_at("nmt.fileio:_fsync_file", *args)  # the archive written, not yet renamed into place
    assert not archive.exists() and len(leftovers()) == 1  # the killed writer's temporary file
    assert run_nmt_process(*args).returncode == 0
    assert leftovers() == []  # the next writer removed it
    complete = members()
    submissions = [k for k in complete if not k.endswith((".json", ".md"))]
    assert len(submissions) == 2 and {"t.s/metadata.json", "t.s/MODEL_CARD.md"} <= set(complete)
    killed_at("nmt.fileio:_fsync_file", *args)  # a second packaging killed at the same moment
    assert members() == complete  # the previous archive, whole


def test_sigterm_saves_a_checkpoint_and_exits(prepared_sample, tmp_path):
    out = tmp_path / "run"
    sets = TINY_TRAIN + [f"data={prepared_sample}", "training.max_updates=100000", "checkpoint.every_updates=1000",
                         "validation.every_updates=1000", "training.log_every=5"]
    proc = subprocess.Popen(NMT + ["train", "--output", str(out)] + [x for s in sets for x in ("--set", s)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    log = out / "train.log"
    while time.time() < deadline and not (log.exists() and "update 10 " in log.read_text()):
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-1500:]
    state = load_state(out / "checkpoints" / "checkpoint_last.pt")
    saved = state["optimizer_history"][-1]["num_updates"]
    assert saved >= 10  # the update in progress finished and was saved, although no checkpoint was due
    assert json.loads((out / "training.json").read_text())["stop_reason"] == "stopped by SIGTERM"
