"""The inference layer's seams: the bundle answers about its exports, one vocabulary module, every
command in its package's cli.py with its option defaults declared once in typed classes, config
validation messages."""
from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path

import click
import pytest

from nmt.bundle import EXPORT_RECORD, Bundle
from nmt import cli
from nmt.cli import main
from nmt.cli_util import SourcedOption, declared_default, opt, option, typed_options
from nmt.config import load_train_config
from nmt.data.clean import FilterConfig
from nmt.data.get import GetConfig
from nmt.data.prepare import PrepareConfig
from nmt.evaluate.runner import EvalConfig
from nmt.serve.config import Limits, ServeConfig
from nmt.translate.cli_run import FileTranslation, TranslateRun
from nmt.translate.corpus import CorpusJob
from nmt.wmt.package import PackageConfig
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


# ---------------------------------------------------------------------------------- commands and options

def _commands(group, prefix="nmt"):
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


COMMANDS = dict(_commands(main))
NO_DEFAULT = getattr(click.core, "UNSET", None)  # click >= 8.3 marks an option without a default so


def test_every_command_lives_in_its_package_cli():
    assert {"nmt serve", "nmt prepare", "nmt train", "nmt data get", "nmt evaluate"} <= set(COMMANDS)
    homes = {path: command.callback.__module__ for path, command in COMMANDS.items()}
    assert not [p for p, m in homes.items() if m == "nmt.cli" or not m.endswith(".cli")], homes
    # nmt.cli's table names each command's module, and every package cli.py's commands are in it
    modules = {importlib.import_module(m) for m in set(cli.COMMANDS.values())}
    listed = {command.name: module.__name__ for module in modules for command in module.COMMANDS}
    assert listed == cli.COMMANDS
    packages = {f"nmt.{p.parent.name}.cli" for p in Path(cli.__file__).parent.glob("*/cli.py")}
    assert packages == set(cli.COMMANDS.values())


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_option_defaults_are_declared_once_in_typed_classes(path):
    """Every option with a default takes it from the dataclass (or function) the command fills."""
    for param in COMMANDS[path].params:
        if not isinstance(param, click.Option):
            continue
        if isinstance(param, SourcedOption):
            owner, name = param.source
            declared = declared_default(owner, name)
            expected = param.none_as if declared is None and param.none_as is not None else declared
            expected = tuple(expected) if isinstance(expected, list) else expected
            assert declared is not dataclasses.MISSING or param.required, (path, param.opts, "no default")
            assert declared is dataclasses.MISSING or param.default == expected, (path, param.opts)
        else:
            assert param.default in (None, False, (), NO_DEFAULT), \
                f"{path} {param.opts}: default {param.default!r} is typed here instead of in a typed class"


class _Built(Exception):
    """Raised by a stand-in for the library function a command calls, carrying what it was given."""


def _capture(monkeypatch, target: str):
    module, name = target.rsplit(".", 1)

    def stand_in(*args, **kwargs):
        raise _Built(args, kwargs)

    monkeypatch.setattr(importlib.import_module(module), name, stand_in)


def _built(argv) -> tuple:
    with pytest.raises(_Built) as caught:
        main.main(argv, standalone_mode=False)
    return caught.value.args


def test_commands_hand_their_library_functions_the_classes_defaults(monkeypatch, tmp_path):
    """Given only what they require, the commands build exactly the typed objects' defaults."""
    _capture(monkeypatch, "nmt.serve.server.run_serve")
    (cfg,), _ = _built(["serve", "-m", "bundle"])
    assert cfg == ServeConfig(models=["bundle"])
    _capture(monkeypatch, "nmt.translate.cli_run.run_translate")
    (run,), _ = _built(["translate", "-m", "bundle"])
    assert run == TranslateRun(model="bundle")
    _capture(monkeypatch, "nmt.translate.cli.run_corpus")
    (job,), kwargs = _built(["translate-corpus", "-m", "b", "-s", "de_DE", "-t", "en_XX", "-i", "in", "-o", "out"])
    assert job == CorpusJob(model="b", src="de_DE", tgt="en_XX", input="in")
    assert kwargs == {"output": "out", "work": None, "shard": "1/1", "workers": 1, "merge_only": False,
                      "restart": False}
    _capture(monkeypatch, "nmt.translate.cli_run.run_translate_file")
    (source, target, job), _ = _built(["translate-file", "a.txt", "b.txt", "-m", "b", "-s", "de_DE", "-t", "en_XX"])
    assert (source, target) == ("a.txt", "b.txt")
    assert job == FileTranslation(model="b", src="de_DE", tgt="en_XX") and job.too_long == "truncate"
    _capture(monkeypatch, "nmt.data.prepare.prepare")
    (cfg,), _ = _built(["prepare", "--raw", "r", "-o", "out"])
    assert cfg == PrepareConfig(out="out", raw=["r"])
    _capture(monkeypatch, "nmt.data.get.get")
    (cfg,), _ = _built(["data", "get", "-o", "out"])
    assert cfg == GetConfig(out="out")
    _capture(monkeypatch, "nmt.wmt.package.build_package")
    (cfg,), _ = _built(["package", "t.xml", "-o", "a.tgz", "--team", "t", "--system", "s", "-m", "b"])
    assert cfg == PackageConfig(output="a.tgz", team="t", system="s", test_sets=["t.xml"], model="b")
    _capture(monkeypatch, "nmt.evaluate.runner.evaluate")
    (tmp_path / "hyp.txt").write_text("x\n")
    (cfg,), _ = _built(["evaluate", "--hyp", str(tmp_path / "hyp.txt"), "-d", "de_DE-en_XX", "-o", "rep"])
    defaults = EvalConfig(out_dir="rep")
    differing = [f.name for f in dataclasses.fields(EvalConfig)
                 if getattr(cfg, f.name) != getattr(defaults, f.name)]
    assert differing == ["systems", "testset", "directions", "command"]
    assert cfg.testset.kind == "flores200" and cfg.directions == "de_DE-en_XX"


def test_command_line_values_reach_the_typed_objects(monkeypatch):
    _capture(monkeypatch, "nmt.serve.server.run_serve")
    (cfg,), _ = _built(["serve", "-m", "a=x", "-m", "y", "--port", "0", "--beam", "3", "--max-len-b", "20",
                        "--timeout", "5", "--backend", "fairseq", "--threads", "2"])
    assert cfg.models == ["a=x", "y"] and cfg.port == 0
    assert cfg.limits == Limits(default_beam=3, max_len_b=20, timeout_s=5.0)
    assert cfg.engine == EngineOptions(backend="fairseq", threads=2)
    _capture(monkeypatch, "nmt.translate.cli_run.run_translate")
    (run,), _ = _built(["translate", "-m", "b", "--beam", "3", "--lenpen", "0.5", "--nbest", "2",
                        "--batch-sentences", "0", "--no-shortlist", "--threads", "2", "--too-long", "truncate"])
    assert run.decode == DecodeOptions(beam=3, len_penalty=0.5, nbest=2) and run.too_long == "truncate"
    assert run.engine == EngineOptions(threads=2, shortlist=False, batch_sentences=None)
    _capture(monkeypatch, "nmt.translate.cli_run.run_translate_file")
    (_, _, job), _ = _built(["translate-file", "a.html", "b.html", "-m", "b", "-s", "de_DE", "-t", "en_XX",
                             "--split-sentences", "never", "--too-long", "skip", "--max-bytes", "10", "--force"])
    assert job.decode == DecodeOptions(split_sentences="never") and job.engine == EngineOptions()
    assert (job.too_long, job.max_bytes, job.force) == ("skip", 10, True)
    _capture(monkeypatch, "nmt.data.prepare.prepare")
    (cfg,), _ = _built(["prepare", "--raw", "a", "--raw", "b", "-o", "o", "--min-len", "3", "--lid", "--shards", "2"])
    assert cfg.raw == ["a", "b"] and cfg.shards == 2 and cfg.filters == FilterConfig(min_len=3, lid=True)


def test_options_refuse_a_second_declaration_of_a_default():
    with pytest.raises(ValueError, match="default"):
        option(DecodeOptions, "beam", "--beam", default=3)
    with pytest.raises(ValueError, match="no field"):
        opt_command = typed_options(DecodeOptions, "decode", opt("beams", "--beams"))
        opt_command(lambda decode: None)


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
