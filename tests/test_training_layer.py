"""The pieces of the training layer that need no training: typed manifest, bundle fields, loop settings,
run directory checks, downloads. (Training itself: test_train.py, test_mbart.py.)"""
import hashlib
import json

import pytest

from nmt.bundle import Bundle
from nmt.config import load_train_config
from nmt.data.manifest import PreparedData
from nmt.errors import NmtError
from nmt.training.rundir import RunDir
from nmt.fairseq_backend.settings import LoopSettings


def test_prepared_data_is_typed_and_checked(prepared_sample, tmp_path):
    data = PreparedData.load(prepared_sample)
    raw = json.loads((prepared_sample / "manifest.json").read_text())
    assert data.languages == raw["languages"] and data.lang_tok_style == raw["lang_tok_style"]
    assert {k: v.to_dict() for k, v in data.directions.items()} == raw["directions"]
    assert data.normalization == raw["settings"]["filters"]["normalization"] == "NFC"
    assert data.dictionary.is_file() and data.spm_model.is_file() and data.lang_dict.is_file()
    assert data.clean_file("valid", "de_DE-en_XX", "de_DE").is_file()
    assert data.fingerprint() == json.loads((prepared_sample / "bin" / "stage.json").read_text())["fingerprint"]
    # a manifest without the normalization setting: the one default
    old = {**raw, "settings": {}}
    assert PreparedData.from_dict(old, prepared_sample).normalization == "NFC"
    with pytest.raises(NmtError, match="lacks 'directions'.*nmt prepare --force"):
        PreparedData.from_dict({k: v for k, v in raw.items() if k != "directions"}, prepared_sample)
    with pytest.raises(NmtError, match="malformed"):
        PreparedData.from_dict({**raw, "directions": {"de_DE-en_XX": {"data": "x", "train": "many"}}},
                               prepared_sample)
    with pytest.raises(NmtError, match="not a finished prepared-data directory"):
        PreparedData.load(tmp_path)


def _bundle_json(path, extra):
    path.mkdir(parents=True, exist_ok=True)
    (path / "spm.model").write_bytes(b"spm")
    (path / "dict.txt").write_text("a 1\n")
    meta = {"format": "nmt-bundle", "format_version": 1, "nmt_version": "0.0.9", "kind": "translation",
            "languages": ["de_DE", "en_XX"], "lang_tok_style": "multilingual", "encoder_langtok": "src",
            "decoder_langtok": True, "directions": ["de_DE-en_XX"], "checkpoint": "checkpoints/checkpoint_best.pt",
            "spm": "spm.model", "dictionary": "dict.txt", "sha256": {}, "extra": extra}
    (path / "bundle.json").write_text(json.dumps(meta))


def test_bundle_extra_block_becomes_fields_and_is_written_back(tmp_path):
    extra = {"normalization": "NFKC", "max_source_positions": 256, "preset": "tiny",
             "extended_with": {"gl_ES": "es_XX"}, "from_a_newer_nmt": [1, 2]}
    _bundle_json(tmp_path / "b", extra)
    bundle = Bundle.load(tmp_path / "b", need_checkpoint=False)
    assert (bundle.normalization, bundle.max_source_positions, bundle.preset) == ("NFKC", 256, "tiny")
    assert bundle.extended_with == {"gl_ES": "es_XX"} and bundle.pretrained is None
    assert bundle.other_extra == {"from_a_newer_nmt": [1, 2]}
    assert bundle.extra == extra  # what readers of the block see
    bundle.save()
    assert json.loads((tmp_path / "b" / "bundle.json").read_text())["extra"] == extra
    _bundle_json(tmp_path / "old", {})  # written before any of it was recorded: the defaults
    old = Bundle.load(tmp_path / "old", need_checkpoint=False)
    assert old.normalization == "NFC" and old.max_source_positions is None and old.extra == {"normalization": "NFC"}
    for bad, needle in (({"normalization": "NFD"}, "extra.normalization"),
                        ({"max_source_positions": "long"}, "extra.max_source_positions"),
                        ({"source": "somewhere"}, "extra.source must be an object")):
        _bundle_json(tmp_path / "bad", bad)
        with pytest.raises(NmtError, match=needle):
            Bundle.load(tmp_path / "bad", need_checkpoint=False)


def test_loop_settings_from_config(prepared_sample):
    cfg = load_train_config(None, [f"data={prepared_sample}", "training.threads=3", "validation.patience=2"])
    cpu = LoopSettings.from_config(cfg, "cpu")
    assert (cpu.threads, cpu.metric, cpu.patience, cpu.generation, cpu.finetune) == (3, "chrf", 2, None, False)
    assert cpu.validate_every == cfg.validation.every_updates and cpu.keep_last == cfg.checkpoint.keep_last
    assert LoopSettings.from_config(cfg, "cuda", metric="loss").threads == 0
    assert LoopSettings.from_config(cfg, "cuda", metric="loss").metric == "loss"


def test_run_directory_refusals_and_reset(prepared_sample, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NmtError, match="--output .* is a file; give a directory for the run"):
        RunDir(tmp_path / "file", "the run")
    run = RunDir(tmp_path / "run", "the run")
    assert not run.resuming and run.config_differences(load_train_config(None, [f"data={prepared_sample}"])) == []
    with run.lock("nmt test"):
        run.save_config(load_train_config(None, [f"data={prepared_sample}", "training.lr=0.001"]))
        (run.checkpoints).mkdir()
        (run.checkpoints / "checkpoint_last.pt").write_bytes(b"")
        (run.path / "keep.log").write_text("log")
        assert run.resuming
        differences = run.config_differences(load_train_config(None, [f"data={prepared_sample}",
                                                                      "training.lr=0.002"]))
        assert differences == ["training.lr: 0.001 -> 0.002"]
        with pytest.raises(NmtError, match="holds a run with a different configuration .*pass --reset"):
            run.refuse_changed("a run", differences)
        run.refuse_changed("a run", [])
        run.reset(("checkpoints", "training.json"))
        assert not run.resuming and (run.path / "keep.log").is_file()
        run.reset()
        assert sorted(p.name for p in run.path.iterdir()) == [".nmt.lock"]


def test_download_resumes_a_file_url_and_restarts_a_stale_part(tmp_path):
    from nmt import downloads

    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "copy.bin"
    dest.parent.mkdir()
    part = dest.with_name("copy.bin.part")
    part.write_bytes(source.read_bytes()[:1000])  # an interrupted earlier run
    assert downloads.fetch(source.as_uri(), dest, "test", expected_sha256=digest) == digest
    assert dest.read_bytes() == source.read_bytes() and not part.exists()
    part.write_bytes(b"x" * 300_000)  # longer than the file: not a prefix of it, start over
    assert downloads.fetch(source.as_uri(), dest, "test") == digest
    with pytest.raises(NmtError, match="test: cannot read"):
        downloads.fetch((tmp_path / "missing").as_uri(), dest, "test")
    with pytest.raises(NmtError, match="test: checksum mismatch"):
        downloads.fetch(source.as_uri(), dest, "test", expected_sha256="0" * 64)
    assert not part.exists()
