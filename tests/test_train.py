"""nmt train: learning, resume after SIGKILL, refused resume, bundles, safe checkpoint loading."""
import json
import logging
import os
import re
from pathlib import Path

import pytest
import yaml

from conftest import TINY_TRAIN, run_nmt
from nmt.bundle import Bundle
from nmt.config import load_train_config
from nmt.errors import NmtError
from nmt.fairseq_backend import load_state


def test_validation_loss_drops_and_scores_are_logged(trained_bundle):
    manifest = json.loads((trained_bundle / "training.json").read_text())
    history = manifest["validations"]
    assert [h["update"] for h in history] == [150, 300]
    assert history[-1]["valid_loss"] < history[0]["valid_loss"]
    assert manifest["updates"] == 300 and manifest["stop_reason"].startswith("reached max_updates")
    assert set(history[-1]["chrf"]) == set(manifest["directions"])  # every direction validated
    assert manifest["best"]["metric"] == "chrf" and manifest["best"]["update"] in (150, 300)
    sampling = manifest["sampling"]
    ko, de = sampling["en_XX-ko_KR"], sampling["en_XX-de_DE"]
    largest = max(sampling.values(), key=lambda row: row["pairs"])
    # temperature 5 flattens the mix: Korean (about 700 pairs) is drawn more often than it occurs,
    # the largest direction (about 2,900) no more than it has, and the shares follow n^(1/T)
    assert ko["sampled_pairs_per_epoch"] > ko["pairs"] and largest["sampled_pairs_per_epoch"] <= largest["pairs"]
    assert abs(ko["share"] / de["share"] - (ko["pairs"] / de["pairs"]) ** (1 / 5)) < 0.01
    assert abs(sum(row["share"] for row in sampling.values()) - 1) < 1e-6
    assert list((trained_bundle / "tensorboard").iterdir())


def test_a_finished_run_continues_from_its_weights_with_a_new_schedule(trained_bundle, prepared_sample, tmp_path):
    from nmt.training.translation import train

    first = json.loads((trained_bundle / "training.json").read_text())
    run = tmp_path / "more"
    cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", f"init.pretrained={trained_bundle}",
                                                "training.max_updates=30", "training.lr=0.0005",
                                                "validation.every_updates=30", "checkpoint.every_updates=30"])
    train(cfg, run)
    more = json.loads((run / "training.json").read_text())
    assert Bundle.load(run).pretrained == str(trained_bundle)
    assert more["updates"] == 30 and more["lr_schedule"]["peak_lr"] == 0.0005  # its own count and schedule
    # 30 updates from random weights would be nowhere near the first run's validation loss at update 150:
    # the continuation starts from the finished run's weights
    assert more["validations"][-1]["valid_loss"] < first["validations"][0]["valid_loss"]


def test_bundle_round_trip(trained_bundle, tmp_path):
    bundle = Bundle.load(trained_bundle)
    assert bundle.languages == ["de_DE", "en_XX", "ja_XX", "ko_KR", "ru_RU"]
    assert bundle.checkpoint_path.is_file() and "en_XX-ja_XX" in bundle.directions
    bundle.path = tmp_path
    import shutil

    for name in ("spm.model", "dict.txt"):
        shutil.copy(trained_bundle / name, tmp_path / name)
    bundle.save()
    again = Bundle.load(tmp_path, need_checkpoint=False)
    assert again.languages == bundle.languages and again.hashes == bundle.hashes


def test_incomplete_and_foreign_bundles_are_refused(trained_bundle, tmp_path):
    with pytest.raises(NmtError, match="bundle.json is missing"):
        Bundle.load(tmp_path)
    meta = json.loads((trained_bundle / "bundle.json").read_text())
    (tmp_path / "bundle.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(NmtError, match="format version 99"):
        Bundle.load(tmp_path)


def _train_cmd(data, out, *extra):
    args = ["train", "--output", out]
    for item in TINY_TRAIN + [f"data={data}", *extra]:
        args += ["--set", item]
    return args


def _checkpoint_updates(path: Path) -> int:
    return load_state(path)["optimizer_history"][-1]["num_updates"]


def test_changed_config_is_refused_unless_reset(trained_bundle, prepared_sample, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_bundle, run)
    base = ["training.max_updates=300", "validation.every_updates=150", "checkpoint.every_updates=150"]
    result = run_nmt(*_train_cmd(prepared_sample, run, *base, "training.lr=0.001", "model.dropout=0.3"))
    assert result.returncode == 2
    assert "different configuration" in result.stderr and "training.lr: 0.003 -> 0.001" in result.stderr
    assert "model.dropout" in result.stderr and "--reset" in result.stderr and "Traceback" not in result.stderr
    # a bigger budget is not a different model: that resumes (and here has nothing left to do at 300)
    ok = run_nmt(*_train_cmd(prepared_sample, run, *base))
    assert ok.returncode == 0, ok.stderr[-1500:]
    reset = run_nmt(*_train_cmd(prepared_sample, run, "training.max_updates=20", "validation.every_updates=20",
                                "checkpoint.every_updates=20", "training.lr=0.001"), "--reset")
    assert reset.returncode == 0, reset.stderr[-1500:]
    assert json.loads((run / "training.json").read_text())["updates"] == 20


def test_resume_with_changed_data_is_refused(trained_bundle, tmp_path):
    import shutil

    from nmt.data.prepare import PrepareConfig, prepare

    from conftest import SAMPLE_RAW

    run = tmp_path / "run"
    shutil.copytree(trained_bundle, run)
    data = tmp_path / "data"  # the same corpora prepared again with another vocabulary
    prepare(PrepareConfig(out=str(data), raw=[str(SAMPLE_RAW)], vocab_size=3500, valid_size=100))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"] = str(data)  # as if the run had been started on this directory, re-prepared since
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_nmt("train", "--config", run / "config.yaml", "--output", run)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the prepared data's spm.model, dict.txt changed since this run started" in result.stderr, \
        result.stderr[-800:]


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, trained_bundle):
    import torch

    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "cfg": None, "x": evil}, path)
    with pytest.raises(NmtError, match="refusing to load"):
        load_state(path)
    result = run_nmt("translate", "--model", trained_bundle, "--src", "de_DE", "--tgt", "en_XX",
                     "--checkpoint", path, "--backend", "fairseq", input="Hallo\n")
    assert result.returncode == 2 and "refusing to load" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path, trained_bundle):
    path = tmp_path / "cut.pt"
    data = (trained_bundle / "checkpoints" / "checkpoint_best.pt").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NmtError, match="truncated or corrupted"):
        load_state(path)


@pytest.mark.parametrize("override,message", [
    ("model.preset=huge", "model.preset: 'huge' is not valid; choose one of: tiny, small, base, big"),
    ("training.lrr=1", "unknown config key training.lrr; valid keys here:"),
    ("training.max_updates=abc", "training.max_updates must be int"),
    ("validation.metric=ter", "choose one of: chrf, bleu, loss"),
])
def test_invalid_config_names_key_and_choices(prepared_sample, override, message):
    with pytest.raises(NmtError) as info:
        load_train_config(None, [f"data={prepared_sample}", override])
    assert message in str(info.value)


def test_average_and_fairseq_args(trained_bundle, tmp_path):
    from nmt.export import average_last

    out = average_last(trained_bundle, 2, str(tmp_path / "avg.pt"))
    avg = load_state(out)["model"]
    a = load_state(trained_bundle / "checkpoints" / "checkpoint_150.pt")["model"]
    b = load_state(trained_bundle / "checkpoints" / "checkpoint_300.pt")["model"]
    key = "encoder.layers.0.fc1.weight"
    assert (avg[key] - (a[key] + b[key]) / 2).abs().max() < 1e-6


def test_distributed_launch_arguments(prepared_sample, tmp_path):
    cfg = load_train_config(None, [f"data={prepared_sample}", "distributed.world_size=2", "distributed.rank=1",
                                   "distributed.init_method=tcp://127.0.0.1:29511"])
    from nmt.training.translation import fairseq_arguments

    argv = fairseq_arguments(cfg, tmp_path / "run")
    joined = " ".join(argv)
    for expected in ("--distributed-world-size 2", "--distributed-rank 1", "--distributed-backend gloo",
                     "--distributed-init-method tcp://127.0.0.1:29511", "--distributed-no-spawn",
                     "--ddp-backend legacy_ddp", "--cpu", "--lang-dict", "--encoder-langtok src", "--decoder-langtok",
                     "--sampling-method temperature"):
        assert expected in joined
    with pytest.raises(NmtError, match="init_method"):  # on CPU fairseq cannot spawn the ranks itself
        fairseq_arguments(load_train_config(None, [f"data={prepared_sample}", "distributed.world_size=2"]),
                          tmp_path / "x")


def _without_japanese_bleu(monkeypatch):
    """sacrebleu as installed without its [ja] extra: the ja-mecab tokenizer cannot load."""
    import sacrebleu.metrics

    real = sacrebleu.metrics.BLEU

    def bleu(*args, tokenize=None, **kwargs):
        if tokenize == "ja-mecab":
            raise ImportError("\nJapanese tokenization requires extra dependencies.\n\n    pip install sacrebleu[ja]\n")
        return real(*args, tokenize=tokenize, **kwargs)

    monkeypatch.setattr(sacrebleu.metrics, "BLEU", bleu)


def test_missing_bleu_tokenizer_gives_na_not_a_crash_mid_training(prepared_sample, tmp_path, monkeypatch, caplog):
    """Seen on a GPU box without sacrebleu[ja]: training died at its first validation. Now BLEU
    into Japanese is n/a (warned before training starts), chrF still picks the best checkpoint,
    and a run that selects by BLEU is refused before it starts."""
    from nmt.training.hooks import bleu_unusable
    from nmt.training.translation import train

    _without_japanese_bleu(monkeypatch)
    caplog.set_level(logging.INFO, logger="nmt.train")
    sets = ["en_XX-ja_XX", "en_XX-de_DE"]
    missing = bleu_unusable(sets, "chrf")
    assert list(missing) == ["en_XX-ja_XX"] and "sacrebleu[ja,ko]" in missing["en_XX-ja_XX"]
    assert "\n" not in missing["en_XX-ja_XX"]  # one line, as every nmt error
    with pytest.raises(NmtError, match="validation.metric is bleu.*en_XX-ja_XX"):
        bleu_unusable(sets, "bleu")
    run = tmp_path / "run"
    cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "training.max_updates=20",
                                                "validation.every_updates=20", "validation.max_sentences=5",
                                                "checkpoint.every_updates=20"])
    result = train(cfg, run)
    manifest = json.loads((run / "training.json").read_text())
    assert result.updates == manifest["updates"] == 20 and result.signal is None
    last = manifest["validations"][-1]
    assert "en_XX-ja_XX" not in last["bleu"] and "en_XX-de_DE" in last["bleu"]
    assert set(last["chrf"]) == set(manifest["directions"])
    assert list(manifest["validation_bleu_unavailable"]) == ["en_XX-ja_XX"]
    assert (run / "checkpoints" / "checkpoint_best.pt").is_file()
    assert "validation BLEU for en_XX-ja_XX will be n/a" in (run / "train.log").read_text()
    assert re.search(r"en_XX-ja_XX \d+\.\d/n/a", caplog.text)  # the per-direction validation line
    bleu_cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "validation.metric=bleu"])
    with pytest.raises(NmtError, match="validation.metric is bleu"):
        train(bleu_cfg, tmp_path / "run-bleu")
    assert not (tmp_path / "run-bleu").exists()


def test_bf16_on_gpu_is_not_taken_for_a_tpu(prepared_sample, tmp_path):
    """fairseq 0.12 turns --bf16 into --tpu, and its Trainer then crashed on a GPU (seen on an
    H200: torch_xla's xla_device). The adapter keeps bf16 and drops the TPU flag."""
    from nmt.data.manifest import PreparedData
    from nmt.fairseq_backend.training import fairseq_train_args, parse_fairseq_args

    data = PreparedData.load(prepared_sample)
    for precision, flag in (("bf16", "bf16"), ("fp16", "fp16")):
        cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", f"training.precision={precision}"])
        argv = fairseq_train_args(cfg, str(prepared_sample / "bin"), [("de_DE", "en_XX")],
                                  data.lang_tok_style, str(tmp_path / "ckpt"), "cuda")
        assert f"--{flag}" in argv and "--cpu" not in argv
        parsed = parse_fairseq_args(argv)
        assert getattr(parsed.common, flag) is True and parsed.common.tpu is False and parsed.common.cpu is False
