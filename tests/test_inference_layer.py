"""The inference layer's seams: the bundle answers about its exports, one vocabulary module,
decoding options declared once with their classes' defaults, config validation messages."""
from __future__ import annotations

import dataclasses
import os

import click
import pytest

from nmt.bundle import EXPORT_RECORD, Bundle
from nmt.cli import main
from nmt.cli_util import decoding_options
from nmt.config import load_train_config
from nmt.data.clean import FilterConfig
from nmt.data.prepare import PrepareConfig
from nmt.errors import NmtError
from nmt.fileio import sha256_file, write_json
from nmt.presets import PRESETS
from nmt.translate.backends import DecodeOptions, EngineOptions
from nmt.vocab import SPECIALS, UNK, check_dictionary_file, read_dictionary, write_dictionary


# ------------------------------------------------------------------------------------- the bundle's exports

def _bundle(tmp_path) -> Bundle:
    bundle = Bundle(path=tmp_path, languages=["de_DE", "en_XX"], preset="small")
    bundle.checkpoint_path.parent.mkdir()
    bundle.checkpoint_path.write_bytes(b"weights" * 100)
    return bundle


def _export(bundle: Bundle, quantization: str, **record) -> None:
    directory = bundle.export_dir(quantization)
    directory.mkdir()
    (directory / "model.bin").write_bytes(b"ct2")
    write_json(directory / EXPORT_RECORD, {**bundle.checkpoint_stamp(), "sha256": sha256_file(bundle.checkpoint_path),
                                           **record})


def test_bundle_lists_its_exports_preferred_first_and_knows_which_are_current(tmp_path):
    bundle = _bundle(tmp_path)
    _export(bundle, "float32")
    _export(bundle, "int8", decoder_embed_dim=64)
    (tmp_path / "ctranslate2-float16").mkdir()  # no model.bin, no record: not an export
    exports = bundle.ctranslate2_exports()
    assert list(exports) == ["int8", "float32"]
    assert all(bundle.export_is_current(d) for d in exports.values())
    assert bundle.export_model_dim(exports["int8"]) == 64  # recorded
    assert bundle.export_model_dim(exports["float32"]) == PRESETS["small"]["embed_dim"]  # older export: the preset's

    st = os.stat(bundle.checkpoint_path)  # a copy: another mtime, the same bytes
    os.utime(bundle.checkpoint_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert bundle.export_is_current(exports["int8"])
    bundle.checkpoint_path.write_bytes(b"retrained" * 100)  # another checkpoint
    assert not bundle.export_is_current(exports["int8"])
    bundle.checkpoint = "checkpoints/checkpoint_avg5.pt"
    assert not bundle.export_is_current(exports["float32"])


def test_translation_does_not_import_export():
    import nmt.translate.translator as translator

    assert "nmt.export" not in {getattr(v, "__module__", None) for v in vars(translator).values()}


# ------------------------------------------------------------------------------------------------ vocabulary

def test_dictionary_round_trip_and_errors(tmp_path):
    path = tmp_path / "dict.txt"
    write_dictionary(path, ["▁a", "b", "<x>"], [5, 3, 1])
    assert path.read_text(encoding="utf-8") == "▁a 5\nb 3\n<x> 1\n"
    assert read_dictionary(path) == list(SPECIALS) + ["▁a", "b", "<x>"]
    assert SPECIALS[UNK] == "<unk>"
    path.write_text("", encoding="utf-8")
    with pytest.raises(NmtError, match="is empty"):
        check_dictionary_file(path)
    path.write_text("nocount\n", encoding="utf-8")
    with pytest.raises(NmtError, match="line 1 is not 'symbol count'"):
        read_dictionary(path)
    with pytest.raises(NmtError, match="missing dictionary"):
        read_dictionary(tmp_path / "absent.txt")


# ------------------------------------------------------------------------------------------ decoding options

def _params(name: str) -> dict:
    return {p.name: p for p in main.commands[name].params}


@pytest.mark.parametrize("command", ["translate", "translate-corpus", "translate-file", "evaluate", "package"])
def test_decoding_option_defaults_are_the_option_classes(command):
    params = _params(command)
    expected = {"beam": DecodeOptions.beam, "lenpen": DecodeOptions.len_penalty, "max_len_a": DecodeOptions.max_len_a,
                "max_len_b": DecodeOptions.max_len_b, "split_sentences": DecodeOptions.split_sentences,
                "batch_tokens": EngineOptions.batch_tokens,
                "backend": EngineOptions.backend, "device": EngineOptions.device, "threads": EngineOptions.threads}
    if command.startswith("translate"):
        expected.update(quantization=EngineOptions.quantization, shortlist=EngineOptions.shortlist)
    if command in ("translate", "translate-corpus"):
        expected.update(batch_sentences=EngineOptions.batch_sentences or 0)
    for name, default in expected.items():
        assert params[name].default == default, (command, name)


def test_decoding_options_reach_the_command_as_objects():
    seen = {}

    def probe(decode, engine):
        seen.update(decode=decode, engine=engine)

    command = click.command()(decoding_options(probe, sampling=True))
    command.main(["--beam", "3", "--lenpen", "0.5", "--nbest", "2", "--batch-sentences", "0", "--no-shortlist",
                  "--threads", "2"], standalone_mode=False)
    assert seen["decode"] == DecodeOptions(beam=3, len_penalty=0.5, nbest=2)
    assert seen["engine"] == EngineOptions(threads=2, shortlist=False, batch_sentences=None)


PREPARE_DEFAULTS = ["pairs", "valid_size", "on_bad_utf8", "vocab_size", "spm_model_type", "character_coverage",
                    "byte_fallback", "spm_temperature", "spm_sample_size", "lang_tok_style", "seed", "shards",
                    "chunk_lines", "workers"]
FILTER_DEFAULTS = ["normalization", "min_len", "max_len", "max_ratio", "lid", "lid_threshold"]


def test_prepare_option_defaults_are_prepare_config():
    params = _params("prepare")
    for name in PREPARE_DEFAULTS:
        assert params[name].default == getattr(PrepareConfig(out="x"), name), name
    for name in FILTER_DEFAULTS:
        assert params[name].default == getattr(FilterConfig(), name), name


# ------------------------------------------------------------------------------------------------ config

@pytest.mark.parametrize("override,message", [
    ("model.embed_dim=abc", "config key model.embed_dim must be int or null, got 'abc'"),
    ("model.dropout=[1]", "config key model.dropout must be float or null, got [1]"),
    ("training.decoder_langtok=maybe", "config key training.decoder_langtok must be true or false, got 'maybe'"),
    ("training.lr=null", "config key training.lr needs a value (default 0.001); null is not allowed here"),
    ("directions=5", "config key directions must be a list, got 5"),
    ("data=[1, 2]", "config key data must be a string, got [1, 2]"),
    ("validation=3", "config key validation must be a mapping"),
    ("nonsense.key=1", "unknown config key nonsense; valid keys here: checkpoint, data,"),
])
def test_config_errors_are_one_line_and_name_the_key(override, message):
    with pytest.raises(NmtError) as info:
        load_train_config(None, ["data=/prepared", override])
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_config_values_are_coerced_as_before():
    cfg = load_train_config(None, ["data=2024", "model.embed_dim='64'", "training.max_updates=3.0",
                                   "directions=de_DE-en_XX, en_XX-de_DE", "training.decoder_langtok=yes"])
    assert cfg.data == "2024" and cfg.training.max_updates == 3 and cfg.model.embed_dim == 64
    assert cfg.directions == ["de_DE-en_XX", "en_XX-de_DE"] and cfg.training.decoder_langtok is True
    assert dataclasses.is_dataclass(cfg) and cfg.training.lr == 1e-3
    assert load_train_config(None, ["data=x", "validation=null"]).validation.beam == 1  # a null section: defaults
