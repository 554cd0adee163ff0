"""Romanization (uroman) from nmt prepare to nmt package: exact uroman output on real lines of ten
scripts, line alignment, the prepared data and the bundle that record it, and a tiny model trained
here on romanized Korean that takes Korean script in every command."""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys

import pytest

from conftest import SAMPLE, SAMPLE_FLORES, SAMPLE_RAW, TINY_TRAIN, run_nmt
from nmt import romanize
from nmt.bundle import Bundle
from nmt.data.manifest import PreparedData
from nmt.data.prepare import PrepareConfig, prepare
from nmt.errors import NmtError
from nmt.romanize import Romanization, romanize_lines
from nmt.translate.backends import EngineOptions

HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
KO_TEST = (SAMPLE_RAW / "test.ko_KR-en_XX.ko_KR").read_text(encoding="utf-8").splitlines()


# -- uroman itself ------------------------------------------------------------------------------------

def _cases():
    (table,) = sorted((SAMPLE / "romanize").glob("uroman-*.tsv"))
    return [line.split("\t") for line in table.read_text(encoding="utf-8").splitlines()]


def test_uroman_exact_output_on_real_lines_of_ten_scripts():
    cases = _cases()
    assert {lang for lang, *_ in cases} == {"ar_AR", "bn_IN", "hi_IN", "ja_XX", "ko_KR", "ru_RU", "uk_UA",
                                            "zh_CN", "he_IL", "fa_IR"}
    (table,) = sorted((SAMPLE / "romanize").glob("uroman-*.tsv"))
    assert table.name == f"uroman-{romanize.version()}.tsv"  # the expectations are the pinned release's
    for lang, number, text, expected in cases:
        assert romanize.romanize(text, lang) == expected, (lang, number)
        assert expected.isascii() or lang in ("ru_RU", "uk_UA")  # (the dash of two Cyrillic lines stays)
    by_lang = {}
    for lang, _, text, expected in cases:
        by_lang.setdefault(lang, []).append(text)
    for lang, texts in by_lang.items():  # the batch form gives the same
        assert romanize_lines(texts, lang) == [e for x, _, t, e in cases if x == lang]


def test_language_rules_that_can_be_checked_by_hand():
    assert romanize.romanize("Игорь", "ru_RU") == "Igor"
    assert romanize.romanize("Игорь", "uk_UA") == "Yhor"  # Ukrainian: и is y, г is h
    assert romanize.romanize("नेपाल", "hi_IN") == "nepaal"
    assert romanize.romanize("ありがとう", "ja_XX") == "arigatou"
    assert romanize.romanize("서울", "ko_KR") == "seoul"
    assert romanize.lcode("fa_IR") == "fas" and romanize.lcode("zh_CN") == "zho"


def test_alignment_with_empty_and_mixed_script_lines():
    lines = ["", "Hello, мир! 世界 ١٢٣", "  ", "\u200c", "서울 Seoul", "Tom is reading.", "a  \u200c  b"]
    out = romanize_lines(lines, "ko_KR")
    assert out == ["", "Hello, mir! shijie 123", "", "", "seoul Seoul", "Tom is reading.", "a b"]
    assert romanize_lines([], "ko_KR") == []
    assert romanize_lines(out, "ko_KR") == out  # romanized text romanizes to itself


def test_romanization_settings_are_checked():
    assert Romanization.parse("ko_KR, bn_IN,ko_KR").languages == ("ko_KR", "bn_IN")
    assert not Romanization.parse("")
    with pytest.raises(NmtError, match="unknown language code 'kr'"):
        Romanization.parse("kr")
    with pytest.raises(NmtError, match="English is already in Latin script"):
        Romanization.parse("en_XX")
    with pytest.raises(NmtError, match="--romanize-target needs --romanize"):
        Romanization.parse("", target=True)
    with pytest.raises(NmtError, match="cannot be turned back.*--romanize-target"):
        Romanization.parse("ko_KR").check_directions([("ko_KR", "en_XX"), ("en_XX", "ko_KR")])
    Romanization.parse("ko_KR", target=True).check_directions([("en_XX", "ko_KR")])
    with pytest.raises(NmtError, match="romanization record .* is malformed"):
        Romanization.from_record({"langs": []}, "x/manifest.json")


# -- prepare, train, translate ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def romanized_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("roman") / "data"
    prepare(PrepareConfig(out=str(out), raw=[str(SAMPLE_RAW)], pairs="ko_KR-en_XX", eval_sets=[str(SAMPLE_FLORES)],
                          vocab_size=1000, valid_size=60, romanize=Romanization.parse("ko_KR")))
    return out


@pytest.fixture(scope="module")
def romanized_bundle(romanized_data, tmp_path_factory):
    """A tiny ko_KR->en_XX model trained on romanized Korean (100 updates on one thread)."""
    from nmt.config import load_train_config
    from nmt.training.translation import train

    run = tmp_path_factory.mktemp("roman-run") / "bundle"
    cfg = load_train_config(None, TINY_TRAIN + [f"data={romanized_data}", "training.max_updates=100",
                                                "validation.every_updates=100", "checkpoint.every_updates=100",
                                                "training.threads=1"])
    train(cfg, run)
    return run


def test_prepare_romanizes_in_the_workers_and_records_it(romanized_data, tmp_path):
    manifest = json.loads((romanized_data / "manifest.json").read_text())
    record = manifest["romanization"]
    assert record["languages"] == ["ko_KR"] and record["target"] is False
    assert record["romanizer"] == f"uroman {romanize.version()}"
    assert record["training_lines"] > 600 and record["lines_per_cpu_second"] > 0
    assert PreparedData.load(romanized_data).romanization.languages == ("ko_KR",)
    clean = romanized_data / "clean"
    for split in ("train", "valid", "test"):
        korean = (clean / f"{split}.ko_KR-en_XX.ko_KR").read_text(encoding="utf-8")
        assert korean and not HANGUL.search(korean), split
    # the given test split, romanized line by line
    test = (clean / "test.ko_KR-en_XX.ko_KR").read_text(encoding="utf-8").splitlines()
    assert test == romanize_lines(KO_TEST, "ko_KR")
    # the same data without romanization: every count and the English side are unchanged (the keys
    # for duplicates and evaluation overlap are the native text's)
    plain = prepare(PrepareConfig(out=str(tmp_path / "plain"), raw=[str(SAMPLE_RAW)], pairs="ko_KR-en_XX",
                                  eval_sets=[str(SAMPLE_FLORES)], vocab_size=1500, valid_size=60))
    assert plain.raw["pairs"] == manifest["pairs"]
    assert manifest["pairs"]["ko_KR-en_XX"]["train"]["dropped"]["eval_overlap"] > 0
    for split in ("train", "valid"):
        name = f"{split}.ko_KR-en_XX.en_XX"
        assert (tmp_path / "plain" / "clean" / name).read_bytes() == (clean / name).read_bytes()
    native = (tmp_path / "plain" / "clean" / "valid.ko_KR-en_XX.ko_KR").read_text(encoding="utf-8").splitlines()
    assert romanize_lines(native, "ko_KR") == (clean / "valid.ko_KR-en_XX.ko_KR").read_text().splitlines()


def test_prepare_refuses_a_romanized_target_unless_asked(tmp_path):
    result = run_nmt("prepare", "--raw", SAMPLE_RAW, "--out", tmp_path / "a", "--pairs", "en_XX-ko_KR",
                     "--romanize", "ko_KR")
    assert result.returncode == 2 and "--romanize-target" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("nmt: error:") and len(result.stderr.strip().splitlines()) == 1
    result = run_nmt("prepare", "--raw", SAMPLE_RAW, "--out", tmp_path / "b", "--pairs", "ko_KR-en_XX",
                     "--romanize", "ja_XX")
    assert result.returncode == 2 and "not a language of the prepared directions" in result.stderr
    prepare(PrepareConfig(out=str(tmp_path / "c"), raw=[str(SAMPLE_RAW)], pairs="en_XX-ko_KR", vocab_size=1000,
                          valid_size=60, romanize=Romanization.parse("ko_KR", target=True)))
    assert not HANGUL.search((tmp_path / "c" / "clean" / "train.ko_KR-en_XX.ko_KR").read_text(encoding="utf-8"))


def test_the_bundle_romanizes_at_translate_time(romanized_bundle, caplog):
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator

    bundle = Bundle.load(romanized_bundle)
    assert bundle.romanized.languages == ("ko_KR",) and bundle.romanization["romanizer"].startswith("uroman ")
    translator = Translator(bundle, backend="fairseq")
    greedy = DecodeOptions(beam=1)
    lines = KO_TEST[:20] + ["", "\u200c", "서울 Seoul 123"]
    with caplog.at_level(logging.INFO, logger="nmt.translate"):
        native = translator.translate(lines, "ko_KR", "en_XX", options=greedy)
    assert any("ko_KR input is romanized with uroman" in r.getMessage() for r in caplog.records)
    assert len(native) == len(lines)
    assert native[20].text == "" and native[21].text == "" and native[21].warning is None
    # the model sees exactly what it was trained on: native script and romanized input translate alike
    romanized = translator.translate(romanize_lines(lines, "ko_KR"), "ko_KR", "en_XX", options=greedy)
    assert [r.text for r in native] == [r.text for r in romanized]
    assert sum(bool(r.text) for r in native) >= 20
    assert translator.romanizes("ko_KR", "en_XX") == {"source": True, "output": False}
    assert translator.romanizes("en_XX", "ko_KR") == {"source": False, "output": False}


def test_translate_command_and_translate_corpus_romanize_input(romanized_bundle, tmp_path):
    from nmt.translate.corpus import CorpusJob, translate_corpus

    source = tmp_path / "ko.txt"
    source.write_text("\n".join(KO_TEST[:12] + ["", "서울"]) + "\n", encoding="utf-8")
    latin = tmp_path / "ko.latin.txt"
    latin.write_text("\n".join(romanize_lines(KO_TEST[:12] + ["", "서울"], "ko_KR")) + "\n", encoding="utf-8")
    outputs = {}
    for name, path in (("native", source), ("latin", latin)):
        result = run_nmt("translate", "-m", romanized_bundle, "-s", "ko_KR", "-t", "en_XX", "-i", path, "--beam", "1",
                         "--backend", "fairseq", "-o", tmp_path / f"{name}.en")
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[name] = (tmp_path / f"{name}.en").read_text(encoding="utf-8").split("\n")[:-1]
        if name == "native":
            assert "ko_KR input is romanized with uroman" in result.stderr
    assert len(outputs["native"]) == 14 and outputs["native"][12] == ""
    assert outputs["native"] == outputs["latin"]
    job = CorpusJob(model=str(romanized_bundle), src="ko_KR", tgt="en_XX", input=str(source), chunk_lines=100,
                    engine=EngineOptions(backend="fairseq", threads=1))
    job.options.beam = 1
    translate_corpus(job, str(tmp_path / "corpus.en"), workers=1)
    assert (tmp_path / "corpus.en").read_text(encoding="utf-8").split("\n")[:-1] == outputs["native"]
    # nmt translate-file: a document in Korean script translates as its romanized copy does
    documents = {}
    for name, path in (("native", source), ("latin", latin)):
        result = run_nmt("translate-file", "-m", romanized_bundle, "-s", "ko_KR", "-t", "en_XX", "--beam", "1",
                         "--backend", "fairseq", "--threads", "1", path, tmp_path / f"{name}.file.txt")
        assert result.returncode == 0, result.stderr[-2000:]
        documents[name] = (tmp_path / f"{name}.file.txt").read_text(encoding="utf-8")
        assert name == "latin" or "ko_KR input is romanized with uroman" in result.stderr
    assert documents["native"] == documents["latin"] and documents["native"].count("\n") == 14


def test_evaluate_and_package_say_the_input_was_romanized(romanized_bundle, tmp_path):
    from nmt.evaluate.runner import EvalConfig, evaluate
    from nmt.evaluate.systems import parse_system
    from nmt.evaluate.testsets import LineRange, TestSetSource
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator
    from nmt.wmt.package import PackageConfig, build_package

    source = TestSetSource("flores200", LineRange.parse("1-15"), flores_dir=str(SAMPLE_FLORES))
    cfg = EvalConfig(systems=[parse_system(str(romanized_bundle))], out_dir=tmp_path / "eval", testset=source,
                     directions="ko_KR-en_XX", comet=False, decode=DecodeOptions(beam=1),
                     engine=EngineOptions(backend="fairseq", threads=1), heatmap_metric="none")
    result = evaluate(cfg)
    assert any("ko_KR input is romanized with uroman" in note for note in result.notes)
    info = next(iter(result.system_info.values()))
    assert info["romanization"]["languages"] == ["ko_KR"]
    flores = (SAMPLE_FLORES / "kor_Hang.devtest").read_text(encoding="utf-8").splitlines()[:15]
    translator = Translator(romanized_bundle, backend="fairseq", threads=1)
    expected = translator.translate_text(romanize_lines(flores, "ko_KR"), "ko_KR", "en_XX",
                                         options=DecodeOptions(beam=1))
    assert result.directions[0].systems[next(iter(result.system_info))].hyps == expected

    test_set = tmp_path / "ko-en.txt"
    test_set.write_text("\n".join(KO_TEST[:6]) + "\n", encoding="utf-8")
    (tmp_path / "ko-en.docs").write_text("".join(f"general\tdoc{i // 3}\n" for i in range(6)), encoding="utf-8")
    meta = build_package(PackageConfig(test_sets=[str(test_set)], output=str(tmp_path / "sub.tar.gz"), team="t",
                                       system="s", constrained=True, model=str(romanized_bundle),
                                       options=DecodeOptions(beam=1),
                                       engine=EngineOptions(backend="fairseq", threads=1))).metadata
    assert meta["model"]["romanization"]["languages"] == ["ko_KR"]
    import tarfile

    with tarfile.open(tmp_path / "sub.tar.gz") as tar:
        hyps = tar.extractfile("t.s/ko-en.s.txt").read().decode("utf-8").splitlines()
        card = tar.extractfile("t.s/MODEL_CARD.md").read().decode("utf-8")
    assert hyps == translator.translate_text(romanize_lines(KO_TEST[:6], "ko_KR"), "ko_KR", "en_XX",
                                             options=DecodeOptions(beam=1), too_long="truncate")
    assert "Reads ko_KR romanized" in card


def test_serve_answers_native_script_and_says_it_romanized(romanized_bundle):
    import urllib.request

    from test_serve import call, serving

    with serving("-m", romanized_bundle, "--backend", "fairseq", "--threads", "1") as server:
        body = json.dumps({"texts": KO_TEST[:3] + [""], "source": "ko", "target": "en", "beam": 1}).encode()
        request = urllib.request.Request(server.url + "/v1/translate", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        with urllib.request.urlopen(server.url + "/v1/models", timeout=60) as response:
            models = json.loads(response.read())
        # the LibreTranslate endpoint: Korean script and its romanized copy give the same translations
        libre = {name: call(server.url, "/translate", {"q": texts, "source": "ko", "target": "en"})
                 for name, texts in (("native", KO_TEST[:3]), ("latin", romanize_lines(KO_TEST[:3], "ko_KR")))}
    assert answer["romanized"] == ["source"] and len(answer["translations"]) == 4
    assert answer["translations"][3]["text"] == ""
    assert models[0]["romanized_input"] == ["ko_KR"] and models[0]["romanized_output"] == []
    assert libre["native"][0] == 200 and libre["native"][2] == libre["latin"][2]
    assert len(libre["native"][2]["translatedText"]) == 3


# -- vocabulary surgery ----------------------------------------------------------------------------

def test_trim_vocab_romanizes_text_in_a_romanized_language(romanized_bundle, tmp_path):
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator
    from nmt.vocab_surgery import trim_vocabulary

    texts = [SAMPLE_RAW / "train.ko_KR-en_XX.ko_KR", SAMPLE_RAW / "train.ko_KR-en_XX.en_XX"]
    info = trim_vocabulary(romanized_bundle, texts, tmp_path / "trim")
    assert info.dictionary_after < info.dictionary_before
    trimmed = Bundle.load(tmp_path / "trim")
    assert trimmed.romanized.languages == ("ko_KR",)
    kept = set(trimmed.dict_path.read_text(encoding="utf-8").split())
    assert not any(HANGUL.search(piece) for piece in kept)
    greedy = DecodeOptions(beam=1)
    before = Translator(romanized_bundle, backend="fairseq", threads=1)
    after = Translator(tmp_path / "trim", backend="fairseq", threads=1)
    lines = romanize_lines(KO_TEST[:40], "ko_KR")
    covered = [x for x, y in zip(KO_TEST[:40], lines) if 3 not in after.codec.encode([y])[0]
               and before.codec.ids_to_pieces(before.codec.encode([y])[0])
               == after.codec.ids_to_pieces(after.codec.encode([y])[0])]
    assert len(covered) >= 20
    assert before.translate_text(covered, "ko_KR", "en_XX", options=greedy) == \
        after.translate_text(covered, "ko_KR", "en_XX", options=greedy)
    unnamed = tmp_path / "text.txt"
    shutil.copyfile(texts[0], unnamed)
    with pytest.raises(NmtError, match="which language is it.*LANG=PATH"):
        trim_vocabulary(romanized_bundle, [unnamed], tmp_path / "trim2")
    trim_vocabulary(romanized_bundle, [f"ko_KR={unnamed}", texts[1]], tmp_path / "trim3")
    assert (tmp_path / "trim3" / "dict.txt").read_bytes() == (tmp_path / "trim" / "dict.txt").read_bytes()


def test_shortlist_of_a_romanized_target_from_raw_text(romanized_bundle, tmp_path):
    from nmt.translate.shortlist import build_shortlists

    model = shutil.copytree(romanized_bundle, tmp_path / "m", ignore=shutil.ignore_patterns("checkpoints"))
    meta = json.loads((model / "bundle.json").read_text())
    meta["directions"] = ["ko_KR-en_XX", "en_XX-ko_KR"]
    meta["extra"]["romanization"]["target"] = True  # as if trained with --romanize-target
    (model / "bundle.json").write_text(json.dumps(meta))
    maps, summary = build_shortlists(Bundle.load(model, need_checkpoint=False), SAMPLE_RAW)
    tokens = maps["ko_KR"][0].split("\t")[1].split(" ")
    assert summary["targets"]["ko_KR"]["tokens"] > 50
    assert not any(HANGUL.search(t) for t in tokens)  # from romanized Korean, as the model writes it


def test_extend_langs_marks_romanized_languages_and_adds_pieces(romanized_bundle, tmp_path):
    """The romanized model's vocabulary has never seen Hangul: pieces learnt on Korean text give it some;
    a language marked romanized learns its pieces from romanized text."""
    import torch

    from nmt.config import load_train_config
    from nmt.fairseq_backend import load_state
    from nmt.pretrained import check_vocabulary_fits, finetune_checkpoint
    from nmt.vocab import UNK, SubwordCodec

    text = f"bn_IN={SAMPLE_RAW / 'train.ko_KR-en_XX.ko_KR'}"  # any text in a new script: here Korean
    old = Bundle.load(romanized_bundle)
    old_dict = old.dict_path.read_text(encoding="utf-8").splitlines()
    # marked romanized: the text is romanized before pieces are learnt, so the new pieces are Latin
    result = run_nmt("extend-langs", "-m", romanized_bundle, "--add", "bn_IN", "--romanize", "bn_IN",
                     "--new-pieces-from", text, "--new-pieces", "400", "-o", tmp_path / "roman")
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stderr.strip().splitlines()[-1])
    assert info["added"] == ["bn_IN"] and info["romanized"] == ["ko_KR", "bn_IN"] and info["new_pieces"] > 0
    marked = Bundle.load(tmp_path / "roman")
    assert marked.romanized.languages == ("ko_KR", "bn_IN") and marked.romanized.source("bn_IN")
    check_vocabulary_fits(marked)
    added = marked.dict_path.read_text(encoding="utf-8").splitlines()[len(old_dict):]
    assert len(added) == info["new_pieces"] and not any(HANGUL.search(line) for line in added)
    # native script: Hangul pieces join the vocabulary; the marks the model had are kept
    result = run_nmt("extend-langs", "-m", romanized_bundle, "--add", "bn_IN", "--new-pieces-from", text,
                     "--new-pieces", "400", "-o", tmp_path / "small")
    assert result.returncode == 2 and not (tmp_path / "small").exists()
    assert result.stderr.startswith("nmt: error: --new-pieces-from: a vocabulary of 400 pieces cannot hold all "
                                    "the characters") and result.stderr.strip().endswith("; raise --new-pieces")
    result = run_nmt("extend-langs", "-m", romanized_bundle, "--add", "bn_IN", "--new-pieces-from", text,
                     "--new-pieces", "1000", "-o", tmp_path / "ext")
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stderr.strip().splitlines()[-1])
    assert info["added"] == ["bn_IN"] and info["romanized"] == ["ko_KR"] and info["new_pieces"] > 100
    new = Bundle.load(tmp_path / "ext")
    assert new.romanized.languages == ("ko_KR",) and new.extended_with["new_pieces"]["pieces"] == info["new_pieces"]
    check_vocabulary_fits(new)
    new_dict = new.dict_path.read_text(encoding="utf-8").splitlines()
    assert new_dict[:len(old_dict)] == old_dict and len(new_dict) == len(old_dict) + info["new_pieces"]
    assert sum(bool(HANGUL.search(line)) for line in new_dict[len(old_dict):]) > 100
    w_old = load_state(old.checkpoint_path)["model"]["encoder.embed_tokens.weight"]
    w_new = load_state(new.checkpoint_path)["model"]["encoder.embed_tokens.weight"]
    n = 4 + len(old_dict)
    assert torch.equal(w_new[:n], w_old[:n]) and torch.equal(w_new[-1 - len(old.languages):-1], w_old[n:])
    # Korean script: <unk> for the old vocabulary, pieces for the extended one, decoding gives it back
    lines = KO_TEST[:50]
    before, after = SubwordCodec.for_bundle(old), SubwordCodec.for_bundle(new)
    unknown_before = sum(i == UNK for ids in before.encode(lines) for i in ids)
    encoded = after.encode(lines)
    assert unknown_before > 100 and sum(i == UNK for ids in encoded for i in ids) * 10 < unknown_before
    covered = [(ids, line) for ids, line in zip(encoded, lines) if UNK not in ids]
    assert len(covered) >= 30 and all(after.decode(ids) == line for ids, line in covered)
    # fine-tuning data must romanize a language the model reads romanized
    lang_list = tmp_path / "langs.txt"
    lang_list.write_text("\n".join(marked.languages) + "\n")
    data = prepare(PrepareConfig(out=str(tmp_path / "d"), raw=[str(SAMPLE_RAW)], pairs="ko_KR-en_XX", valid_size=30,
                                 spm_model=str(marked.spm_path), dictionary=str(marked.dict_path),
                                 lang_list=str(lang_list)))
    assert not data.romanization and "romanization" not in data.raw
    cfg = load_train_config(None, [f"data={tmp_path / 'd'}", f"init.pretrained={tmp_path / 'roman'}"])
    with pytest.raises(NmtError, match="reads ko_KR romanized .* prepare with --romanize ko_KR"):
        finetune_checkpoint(cfg, PreparedData.load(tmp_path / "d"))


def test_a_bundle_with_a_broken_romanization_record_is_refused(romanized_bundle, tmp_path):
    model = shutil.copytree(romanized_bundle, tmp_path / "m", ignore=shutil.ignore_patterns("checkpoints"))
    meta = json.loads((model / "bundle.json").read_text())
    meta["extra"]["romanization"] = {"languages": ["xx_YY"]}
    (model / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(NmtError, match="romanization: unknown language code 'xx_YY'"):
        Bundle.load(model, need_checkpoint=False)


def test_missing_uroman_is_one_clear_line(tmp_path):
    code = ("import sys; sys.modules['uroman'] = None\n"
            "import importlib.metadata as m\n"
            "real = m.version\n"
            "m.version = lambda name: (_ for _ in ()).throw(m.PackageNotFoundError(name)) if name == 'uroman' "
            "else real(name)\n"
            "from nmt.cli import run\n"
            f"sys.argv = ['nmt', 'prepare', '--raw', {str(SAMPLE_RAW)!r}, '--out', {str(tmp_path / 'd')!r}, "
            "'--pairs', 'ko_KR-en_XX', '--romanize', 'ko_KR']\n"
            "run()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == "nmt: error: romanization needs the uroman package: pip install 'uroman>=1.3,<1.4'"


def test_evaluate_romanizes_references_of_a_romanized_target(romanized_bundle, tmp_path):
    from nmt.evaluate.runner import EvalConfig, evaluate
    from nmt.evaluate.systems import parse_system
    from nmt.evaluate.testsets import LineRange, TestSetSource
    from nmt.translate.backends import DecodeOptions

    model = shutil.copytree(romanized_bundle, tmp_path / "m")
    meta = json.loads((model / "bundle.json").read_text())
    meta["directions"] = ["ko_KR-en_XX", "en_XX-ko_KR"]
    meta["extra"]["romanization"]["target"] = True  # as if trained with --romanize-target (analysis)
    (model / "bundle.json").write_text(json.dumps(meta))
    source = TestSetSource("flores200", LineRange.parse("1-5"), flores_dir=str(SAMPLE_FLORES))
    cfg = EvalConfig(systems=[parse_system(str(model))], out_dir=tmp_path / "eval", testset=source,
                     directions="en_XX-ko_KR", comet=False, decode=DecodeOptions(beam=1),
                     engine=EngineOptions(backend="fairseq", threads=1), heatmap_metric="none")
    result = evaluate(cfg)
    refs = result.directions[0].testset.ref
    flores = (SAMPLE_FLORES / "kor_Hang.devtest").read_text(encoding="utf-8").splitlines()[:5]
    assert refs == romanize_lines(flores, "ko_KR")
    assert any("references were romanized with uroman" in note for note in result.notes)
    # compared with a system that writes Korean script, the run is refused
    cfg.systems = [parse_system(f"a={model}"), parse_system(f"b={romanized_bundle}")]
    with pytest.raises(NmtError, match="write.* romanized ko_KR and b do"):
        evaluate(cfg)
