"""Round 3 of careless and hostile use outside the server: values that crashed, files that were
lost, resumes that mixed models, checks that judged wrongly, messages that misled.

Every case either works or ends with one line (``nmt: error: ...``), exit status 2."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from conftest import SAMPLE_RAW, TINY_TRAIN, run_nmt, run_nmt_process, small_raw
from nmt.errors import NmtError
from nmt.fileio import write_lines
from nmt.locks import OutputLock
from test_serve import exported  # noqa: F401  (the trained bundle with its CTranslate2 export)

DE = SAMPLE_RAW.joinpath("test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()


def _one_line(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Segmentation" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("nmt: error: "), result.stderr[-2000:]
    for needle in needles:
        assert needle in last, last
    return last


@pytest.fixture(scope="module")
def de_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "de.txt"
    path.write_text("\n".join(DE[:5]) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- values that crashed

@pytest.mark.parametrize("args, needle", [
    (["--beam", "100000000000"], "--beam"),  # CTranslate2's allocator failed (traceback)
    (["--seed", "-1", "--sampling"], "--seed"),  # CTranslate2 refused the argument type (traceback)
    (["--threads", "100000"], "--threads"),  # segmentation fault
])
def test_translate_values_that_crashed_are_one_line(trained_bundle, de_file, args, needle):
    _one_line(run_nmt("translate", "-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", de_file, *args), needle)


def test_a_huge_max_len_a_is_just_the_model_limit(trained_bundle, de_file):
    result = run_nmt("translate", "-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", de_file, "--beam", "1",
                     "--max-len-a", "1e308")  # inf * tokens made int() fail
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 5, result.stderr[-1500:]


def test_a_bundle_json_that_is_a_list(trained_bundle, tmp_path, de_file):
    bundle = shutil.copytree(trained_bundle, tmp_path / "b", ignore=shutil.ignore_patterns("ctranslate2-*"))
    (bundle / "bundle.json").write_text("[1, 2]\n")
    _one_line(run_nmt("translate", "-m", bundle, "-s", "de_DE", "-t", "en_XX", "-i", de_file), "bundle.json")


@pytest.mark.parametrize("args, needle", [
    (["--vocab-size", "100000000000"], "--vocab-size"),
    (["--seed", "-1"], "--seed"),
    (["--spm-temperature", "nan"], "--spm-temperature"),
    (["--lang-list", "BINARY"], "--lang-list"),
    (["--max-ratio", "nan"], "max_ratio"),  # accepted silently before
])
def test_prepare_values_that_crashed_are_one_line(tmp_path, args, needle):
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 4)
    args = [str(tmp_path / "binary") if a == "BINARY" else a for a in args]
    raw = small_raw(tmp_path, n=100)
    _one_line(run_nmt("prepare", "--raw", raw, "--out", tmp_path / "out", *args), needle)
    assert not (tmp_path / "out").exists()


def test_a_dictionary_made_for_another_sentencepiece_model_is_refused(prepared_sample, tmp_path):
    """A --dict that did not match --spm-model (17% <unk>) was accepted silently."""
    other = tmp_path / "dict.txt"
    symbols = (prepared_sample / "spm" / "dict.txt").read_text(encoding="utf-8").splitlines()
    other.write_text("\n".join(symbols[: len(symbols) // 2]) + "\n", encoding="utf-8")
    raw = small_raw(tmp_path, n=100)
    _one_line(run_nmt("prepare", "--raw", raw, "--out", tmp_path / "out", "--spm-model",
                      prepared_sample / "spm" / "spm.model", "--dict", other), "lacks", "pieces")


@pytest.mark.parametrize("override, needle", [
    ("training.lr=nan", "training.lr"), ("training.lr=.inf", "training.lr"), ("model.embed_dim=0", "model.embed_dim"),
])
def test_train_values_that_crashed_are_one_line(prepared_sample, tmp_path, override, needle):
    sets = [x for item in TINY_TRAIN + [override] for x in ("--set", item)]
    _one_line(run_nmt("train", "--data", prepared_sample, "-o", tmp_path / "run", *sets), needle)


def test_download_of_something_that_is_not_a_url(tmp_path):
    _one_line(run_nmt("download", "url", "--url", "not a url", "--dest", tmp_path / "m"), "not a URL")


def test_binary_api_key_file(trained_bundle, tmp_path):
    keys = tmp_path / "keys"
    keys.write_bytes(b"\xff\xfe\x00key\n")
    _one_line(run_nmt("serve", "-m", trained_bundle, "--api-keys", keys, "--port", "0"), "API key file", "UTF-8")


# --------------------------------------------------------------------------- messages that misled

def test_bare_nmt_prints_its_help_not_one_error_line():
    result = run_nmt()
    assert result.returncode == 2 and "Commands:" in result.stderr and "nmt: error" not in result.stderr
    assert len(result.stderr.splitlines()) > 10


def test_a_directory_or_fifo_as_input_is_named_for_what_it_is(trained_bundle, tmp_path):
    base = ["-m", trained_bundle, "-s", "de_DE", "-t", "en_XX"]
    _one_line(run_nmt("translate", *base, "-i", tmp_path), "is a directory")
    fifo = tmp_path / "in.pipe"
    os.mkfifo(fifo)
    _one_line(run_nmt("translate-corpus", *base, "-i", fifo, "-o", tmp_path / "o"), "is a FIFO")
    # nmt translate reads a FIFO as the stream it is
    writer = threading.Thread(target=lambda: fifo.write_text("Guten Morgen.\nDanke.\n", encoding="utf-8"))
    writer.start()
    result = run_nmt_process("translate", *base, "-i", fifo, "--beam", "1", timeout=300)  # bounded if it hangs
    writer.join(30)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2, result.stderr[-1500:]


def test_read_errors_suggest_only_options_the_command_has(tmp_path):
    from nmt.fileio import read_lines

    bad = tmp_path / "hyp.txt"
    bad.write_bytes(b"fine\n\xff broken\n")
    with pytest.raises(NmtError) as info:
        read_lines(bad)  # (what evaluate and package read hypotheses with)
    assert "line 2" in str(info.value) and "--on-bad-utf8" not in str(info.value)


# --------------------------------------------------------------------------- files that were lost

def test_output_to_dev_stdout_opened_for_append_keeps_the_file(trained_bundle, de_file, tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n", encoding="utf-8")
    to_stdout = tmp_path / "to-stdout"  # a link in the test's own directory to the process's stdout
    to_stdout.symlink_to("/dev/stdout")
    with open(log, "a", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", "nmt.cli", "translate", "-m", str(trained_bundle), "-s", "de_DE",
                               "-t", "en_XX", "-i", str(de_file), "-o", str(to_stdout), "--beam", "1"], stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-1500:]
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "earlier line" and len(lines) == 6


def test_writing_name_leaves_the_temporary_file_of_name_dot_digits_alone(tmp_path):
    """`news` took `.news.2019.<pid>.<x>.tmp` for a dead writer's (pid "2019") and deleted it."""
    live = tmp_path / f".news.2019.{os.getpid()}.abcd1234.tmp"  # a live writer of news.2019
    live.write_text("half written")
    dead = tmp_path / ".news.999999999.abcd1234.tmp"  # what a killed writer of news left
    dead.write_text("left over")
    write_lines(tmp_path / "news", ["done"])
    assert live.exists() and not dead.exists()


def test_input_and_output_the_same_file_is_refused(trained_bundle, tmp_path):
    source = tmp_path / "text.de"
    source.write_text("Guten Morgen.\n", encoding="utf-8")
    link = tmp_path / "link.de"
    link.symlink_to(source)
    base = ["-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", source]
    _one_line(run_nmt("translate", *base, "-o", source), "is the input file")
    _one_line(run_nmt("translate", *base, "-o", link), "is the input file")
    _one_line(run_nmt("translate-corpus", *base, "-o", source), "is the input file")
    assert source.read_text(encoding="utf-8") == "Guten Morgen.\n"


def test_a_symlinked_or_special_lock_file_is_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / OutputLock.NAME).symlink_to(victim)
    with pytest.raises(NmtError, match="symbolic link"):
        OutputLock(out, "test").acquire()
    assert victim.read_text() == "keep me\n"
    (out / OutputLock.NAME).unlink()
    os.mkfifo(out / OutputLock.NAME)
    with pytest.raises(NmtError, match="not a regular file"):
        OutputLock(out, "test").acquire()
    assert stat.S_ISFIFO(os.lstat(out / OutputLock.NAME).st_mode)


def test_prepare_leaves_no_half_built_stage(tmp_path, monkeypatch):
    """prepare left OUT/.clean.tmp with partial data after Ctrl-C, SIGTERM or an input error."""
    from nmt.data import prepare as prepare_module

    raw = small_raw(tmp_path, n=100)
    bad = raw / "train.de_DE-en_XX.de_DE"
    bad.write_bytes(bad.read_bytes() + b"\xff\n")
    (raw / "train.de_DE-en_XX.en_XX").write_text(
        (raw / "train.de_DE-en_XX.en_XX").read_text(encoding="utf-8") + "x\n", encoding="utf-8")
    result = run_nmt("prepare", "--raw", raw, "--out", tmp_path / "out")
    _one_line(result, "UTF-8")
    assert not (tmp_path / "out" / ".clean.tmp").exists()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "stage_clean", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_module.prepare(prepare_module.PrepareConfig(out=str(tmp_path / "out2"), raw=[str(small_raw(
            tmp_path / "ok", n=100))]))
    assert not (tmp_path / "out2" / ".clean.tmp").exists()


def test_translate_corpus_refuses_to_resume_after_the_model_changed(exported, tmp_path):
    """A retrained checkpoint of the same byte size, or an export added or removed so that `auto`
    picks another backend, was resumed silently: two models' outputs and score scales mixed."""
    # the int8 export only: without it, `auto` means fairseq
    bundle = shutil.copytree(exported, tmp_path / "bundle", ignore=shutil.ignore_patterns("ctranslate2-float32"))
    source = tmp_path / "in.de"
    source.write_text("\n".join(DE[:12]) + "\n", encoding="utf-8")
    args = ["translate-corpus", "-m", bundle, "-s", "de_DE", "-t", "en_XX", "-i", source, "-o", tmp_path / "out",
            "--chunk-lines", "3", "--beam", "1", "--shard", "1/2"]
    assert run_nmt(*args).returncode == 0  # half the chunks done, with CTranslate2 (auto)
    job = json.loads((tmp_path / "out.parts" / "job.json").read_text())
    assert job["model"]["backend"] == "ctranslate2" and job["model"]["quantization"] == "int8"
    assert "model.bin" in job["model"]["files"]
    shutil.move(bundle / "ctranslate2-int8", tmp_path / "away")  # auto now means fairseq
    _one_line(run_nmt(*args[:-2], "--shard", "2/2"), "another job", "model")
    shutil.move(tmp_path / "away", bundle / "ctranslate2-int8")
    # the fairseq checkpoint replaced by another one of the same size
    fairseq_args = args[:-2] + ["--backend", "fairseq", "--work", tmp_path / "w2"]
    best = bundle / "checkpoints" / "checkpoint_best.pt"
    size = _save(best)
    assert run_nmt(*fairseq_args, "--shard", "1/2").returncode == 0
    assert _save(best, change=True) == size
    _one_line(run_nmt(*fairseq_args, "--shard", "2/2"), "another job", "model")


def _save(checkpoint, change: bool = False):
    """Load and save ``checkpoint`` again, its weights changed with ``change``: two saves of one structure
    give files of one byte size, so the second is "a retrained checkpoint of the same size"."""
    import torch

    from nmt.fairseq_backend import load_state

    state = load_state(checkpoint)
    if change:
        key = next(k for k in state["model"] if k.endswith("embed_tokens.weight"))
        state["model"][key].add_(0.5)  # in place: tensors sharing its storage (tied embeddings) still share it
    checkpoint.unlink()  # (a hard link of checkpoint_last.pt: leave that one as it is)
    torch.save(state, checkpoint)
    return checkpoint.stat().st_size


# --------------------------------------------------------------------------- checks that judged wrongly

ZH = ["我们明天早上八点在火车站见面吧。", "这本书讲的是一个小村庄里发生的故事。", "他每天下班以后都去公园跑步。",
      "这个城市的冬天非常寒冷，经常下雪。", "请把窗户关上，外面的风太大了。", "我的妹妹正在大学学习计算机科学。",
      "昨天晚上我们一起看了一部很有意思的电影。", "我们的老师每天都给学生布置很多作业。", "这家饭馆的菜又便宜又好吃。",
      "会议推迟到下周三下午两点举行。"]
TH = ["พรุ่งนี้เช้าเราจะไปตลาดด้วยกัน", "ฉันชอบอ่านหนังสือก่อนนอนทุกคืน", "ร้านอาหารนี้เปิดตั้งแต่เจ็ดโมงเช้า",
      "เด็กๆ กำลังเล่นฟุตบอลอยู่ในสนาม", "กรุณาปิดไฟเมื่อออกจากห้อง", "แม่ของฉันทำอาหารอร่อยมากทุกวันอาทิตย์",
      "รถไฟเที่ยวสุดท้ายออกจากสถานีตอนสี่ทุ่ม", "ห้องสมุดปิดทุกวันจันทร์และวันหยุดราชการ", "เขาเรียนภาษาญี่ปุ่นมาสามปีแล้ว",
      "อากาศวันนี้ร้อนมากจนไม่อยากออกไปข้างนอก"]


def test_off_target_counts_words_by_the_detected_script():
    """ja->en hypotheses copying the source were 2.0% off-target (the truth: 100%), because the
    4-word floor used English's rule (spaces) on Japanese text."""
    from nmt.evaluate import target_checks

    ja = [x for x in SAMPLE_RAW.joinpath("test.ja_XX-en_XX.ja_XX").read_text(encoding="utf-8").splitlines()
          if len(x) >= 12][:40]
    ko = [x for x in SAMPLE_RAW.joinpath("test.ko_KR-en_XX.ko_KR").read_text(encoding="utf-8").splitlines()
          if len(x.split()) >= 4][:40]
    for copies in (ja, ko, ZH, TH):
        score = target_checks.score(copies, "en_XX")[target_checks.OFF_TARGET]
        assert score.score >= 90.0, (copies[0], score.detail)  # (the detector is unsure of a few short lines)
    english = SAMPLE_RAW.joinpath("test.ja_XX-en_XX.en_XX").read_text(encoding="utf-8").splitlines()[:40]
    assert target_checks.score(english, "en_XX")[target_checks.OFF_TARGET].score <= 5.0


def test_empty_lines_chain_from_translate_corpus_scores_into_filter_translations(exported, tmp_path):
    """translate-corpus --scores writes an empty score for an empty line, which filter-translations
    rejected: recipes/back_translation.sh died at stage 2 on any file with a blank line."""
    mono = tmp_path / "mono.de"
    mono.write_text("\n".join(DE[:30] + [""] + DE[30:60]) + "\n", encoding="utf-8")
    out = tmp_path / "bt.en"
    result = run_nmt("translate-corpus", "-m", exported, "-s", "de_DE", "-t", "en_XX", "-i", mono, "-o", out,
                     "--scores", "--beam", "1", "--chunk-lines", "20")
    assert result.returncode == 0, result.stderr[-1500:]
    assert out.with_name("bt.en.scores").read_text().splitlines()[30] == ""
    result = run_nmt("data", "filter-translations", "--src", mono, "--hyp", out, "--src-lang", "de_DE", "--tgt-lang",
                     "en_XX", "--scores", f"{out}.scores", "--drop-worst", "0.1", "-o", tmp_path / "kept")
    assert result.returncode == 0, result.stderr[-1500:]
    info = json.loads((tmp_path / "kept.filter.json").read_text())
    assert info["dropped"]["score"] == 6 and info["dropped"]["empty"] >= 1  # 10% of the 60 scored lines


def test_no_significance_mark_on_a_difference_that_prints_as_zero():
    from nmt.evaluate.report import _cell

    def direction(p):
        result = SimpleNamespace(p_value=p, ci=None)
        return SimpleNamespace(significance={"bs": {"BLEU": [result, result]}})

    assert _cell(direction(0.001), "BLEU", 1, 30.04, 30.0, 1, 0.05).endswith(")")  # +0.0: no mark
    assert _cell(direction(0.001), "BLEU", 1, 30.06, 30.0, 1, 0.05).endswith("*")  # +0.1: marked
    assert _cell(direction(0.2), "BLEU", 1, 31.0, 30.0, 1, 0.05).endswith(")")


def test_held_out_validation_lines_leave_only_their_own_pair(tmp_path):
    """A line held out for one pair's validation was removed from every pair's training data (3.0%
    of ml50-mini's training pairs: their English sides overlap)."""
    from nmt.data.prepare import PrepareConfig, prepare

    raw = tmp_path / "raw"
    raw.mkdir()
    en = SAMPLE_RAW.joinpath("train.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines()[:300]
    de = SAMPLE_RAW.joinpath("train.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()[:300]
    for lang in ("de_DE", "ru_RU"):  # two pairs with the same lines: every filter decides alike for both
        (raw / f"train.{lang}-en_XX.{lang}").write_text("\n".join(de) + "\n", encoding="utf-8")
        (raw / f"train.{lang}-en_XX.en_XX").write_text("\n".join(en) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    prepare(PrepareConfig(out=str(out), raw=[str(raw)], valid_size=20, vocab_size=2000))
    clean = out / "clean"
    held_de = set((clean / "valid.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines())
    train_de = set((clean / "train.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines())
    train_ru = set((clean / "train.ru_RU-en_XX.en_XX").read_text(encoding="utf-8").splitlines())
    assert held_de and not held_de & train_de
    assert held_de - set((clean / "valid.ru_RU-en_XX.en_XX").read_text(encoding="utf-8").splitlines()) <= train_ru


def test_unknown_words_are_never_generated(exported):
    """`<unk>` came out as ` ⁇ `. Policy: decoding never generates <unk> (CTranslate2's disable_unk,
    fairseq's unk_penalty), nor CTranslate2's padding and start symbols, which decode as <unk> too."""
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator

    lines = DE[:50]
    # near-uniform sampling over long outputs: every token gets drawn (before: 10 of 50 lines with ⁇ on
    # CTranslate2, 1 on fairseq)
    options = DecodeOptions(beam=1, sampling=True, temperature=50.0, seed=3, max_len_b=200)
    for backend in ("ctranslate2", "fairseq"):
        results = Translator(exported, backend=backend).translate(lines, "de_DE", "en_XX", options)
        assert not [r.text for r in results if "\u2047" in r.text or "<unk>" in r.text], backend
