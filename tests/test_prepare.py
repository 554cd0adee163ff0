"""nmt prepare on real sample text: stages, counts, fairseq load-back, idempotency, errors."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SAMPLE_FLORES, SAMPLE_RAW, run_nmt, small_raw
from nmt.cli import main
from nmt.data import corpus
from nmt.data.prepare import PrepareConfig, prepare
from nmt.errors import NmtError
from nmt.fairseq_backend import binarize


def test_manifest_counts_and_layout(prepared_sample):
    manifest = json.loads((prepared_sample / "manifest.json").read_text())
    assert manifest["languages"] == ["de_DE", "en_XX", "ja_XX", "ko_KR", "ru_RU"]  # mBART-50 order
    assert set(manifest["directions"]) == {f"{x}-en_XX" for x in ("de_DE", "ja_XX", "ko_KR", "ru_RU")} | {
        f"en_XX-{x}" for x in ("de_DE", "ja_XX", "ko_KR", "ru_RU")}
    ko = manifest["pairs"]["ko_KR-en_XX"]
    assert ko["train"]["read"] == 800
    dropped = sum(ko["train"]["dropped"].values())
    assert ko["train"]["kept"] + dropped + ko["valid"]["lines"] == 800
    assert ko["valid"]["source"].startswith("held out")
    before_split = 800 - sum(v for k, v in ko["train"]["dropped"].items() if k != "eval_overlap")
    assert ko["valid"]["lines"] == before_split // 10  # capped at 10% of the clean pairs
    assert manifest["directions"]["en_XX-ko_KR"]["train"] == ko["train"]["kept"]
    # evaluation overlap was removed (the sample's test sets share English sentences across pairs)
    assert sum(p["train"]["dropped"]["eval_overlap"] for p in manifest["pairs"].values()) > 0
    assert (prepared_sample / "bin" / "lang_dict.txt").read_text().split() == manifest["languages"]
    for lang in manifest["languages"]:
        assert (prepared_sample / "bin" / f"dict.{lang}.txt").read_text() == \
            (prepared_sample / "bin" / "dict.txt").read_text()


def test_no_training_line_occurs_in_evaluation_sets(prepared_sample):
    """Test and FLORES lines leave every pair's training data; validation lines their own pair's
    (docs/RELIABILITY.md: a shared English side may stay in another pair)."""
    clean = prepared_sample / "clean"
    eval_lines = set()
    for path in list(clean.glob("test.*")) + list(SAMPLE_FLORES.iterdir()):
        eval_lines.update(path.read_text(encoding="utf-8").splitlines())
    for path in clean.glob("train.*"):
        held_out = clean / path.name.replace("train.", "valid.", 1)
        own = set(held_out.read_text(encoding="utf-8").splitlines()) if held_out.exists() else set()
        assert not (eval_lines | own) & set(path.read_text(encoding="utf-8").splitlines()), path.name


def test_binarized_data_loads_in_fairseq_and_decodes_to_the_clean_text(prepared_sample):
    import sentencepiece as spm
    from fairseq.data import Dictionary, data_utils

    dictionary = Dictionary.load(str(prepared_sample / "bin" / "dict.txt"))
    sp = spm.SentencePieceProcessor(model_file=str(prepared_sample / "spm" / "spm.model"))
    for split, lang in (("train", "ja_XX"), ("valid", "ko_KR"), ("test", "en_XX")):
        pair = "ja_XX-en_XX" if lang != "ko_KR" else "ko_KR-en_XX"
        prefix = prepared_sample / "bin" / f"{split}.{pair}.{lang}"
        dataset = data_utils.load_indexed_dataset(str(prefix), dictionary, "mmap")
        text = (prepared_sample / "clean" / f"{split}.{pair}.{lang}").read_text(encoding="utf-8").splitlines()
        assert len(dataset) == len(text)
        for i in range(0, len(text), max(1, len(text) // 25)):
            tokens = dataset[i]
            assert tokens[-1].item() == dictionary.eos()
            pieces = dictionary.string(tokens[:-1]).split()
            decoded = sp.decode_pieces(pieces)
            if dictionary.unk() in tokens.tolist():
                continue  # a character outside the vocabulary cannot round-trip
            assert decoded == text[i]


def test_binarizer_matches_fairseq_builder(tmp_path):
    """Our mmap writer produces the same bytes as fairseq's own MMapIndexedDatasetBuilder."""
    import torch
    from fairseq.data import indexed_dataset

    rng = np.random.default_rng(0)
    sentences = [rng.integers(4, 3000, size=rng.integers(1, 30)).tolist() for _ in range(200)]
    table = np.arange(3000)
    ours = binarize.IndexedWriter(tmp_path / "ours", 3004)
    flat, sizes = binarize.ids_with_eos(sentences, table)
    ours.add_batch(flat[: sizes[:50].sum()], sizes[:50])
    ours.add_batch(flat[sizes[:50].sum():], sizes[50:])
    ours.close()
    theirs = indexed_dataset.make_builder(str(tmp_path / "theirs.bin"), "mmap", vocab_size=10004)
    for ids in sentences:
        theirs.add_item(torch.tensor(ids + [2]))
    theirs.finalize(str(tmp_path / "theirs.idx"))
    for ext in ("bin", "idx"):
        assert (tmp_path / f"ours.{ext}").read_bytes() == (tmp_path / f"theirs.{ext}").read_bytes()


def test_rerun_skips_and_force_redoes(tmp_path):
    raw = small_raw(tmp_path)
    cfg = dict(out=str(tmp_path / "out"), raw=[str(raw)], vocab_size=1000, valid_size=20)
    prepare(PrepareConfig(**cfg))
    stamp = (tmp_path / "out" / "bin" / "stage.json").stat().st_mtime_ns
    before = (tmp_path / "out" / "bin" / "train.de_DE-en_XX.de_DE.bin").read_bytes()
    prepare(PrepareConfig(**cfg))
    assert (tmp_path / "out" / "bin" / "stage.json").stat().st_mtime_ns == stamp  # skipped
    prepare(PrepareConfig(**cfg, force=True))
    assert (tmp_path / "out" / "bin" / "stage.json").stat().st_mtime_ns != stamp  # rebuilt ...
    assert (tmp_path / "out" / "bin" / "train.de_DE-en_XX.de_DE.bin").read_bytes() == before  # ... identically
    # a changed setting redoes the stages that depend on it
    prepare(PrepareConfig(**{**cfg, "vocab_size": 1100}))
    assert json.loads((tmp_path / "out" / "spm" / "stage.json").read_text())["vocab_size"] == 1100


def test_interrupted_stage_never_looks_finished(tmp_path):
    raw = small_raw(tmp_path)
    cfg = PrepareConfig(out=str(tmp_path / "out"), raw=[str(raw)], vocab_size=10 ** 6, valid_size=20)
    with pytest.raises(NmtError, match="lower --vocab-size"):
        prepare(cfg)  # the spm stage fails after clean finished
    assert (tmp_path / "out" / "clean" / "stage.json").is_file()
    assert not (tmp_path / "out" / "spm").exists()
    assert not (tmp_path / "out" / "bin").exists()


def test_directions_subset_and_given_valid(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE", "ja_XX", "ko_KR"))
    for side in ("de_DE", "en_XX"):  # give de-en a validation split of its own
        lines = (raw / f"train.de_DE-en_XX.{side}").read_text().splitlines()
        (raw / f"valid.de_DE-en_XX.{side}").write_text("\n".join(lines[:30]) + "\n")
    manifest = prepare(PrepareConfig(out=str(tmp_path / "out"), raw=[str(raw)], pairs="de_DE-en_XX,en_XX-ko_KR",
                                     vocab_size=1000, valid_size=20))
    assert list(manifest["directions"]) == ["de_DE-en_XX", "en_XX-ko_KR"]
    assert manifest["languages"] == ["de_DE", "en_XX", "ko_KR"]
    assert manifest["pairs"]["de_DE-en_XX"]["valid"] == {"lines": 30, "source": "given"}
    # training pairs that appear in the given validation set were removed
    assert manifest["pairs"]["de_DE-en_XX"]["train"]["dropped"]["eval_overlap"] >= 30
    assert not (tmp_path / "out" / "bin" / "train.ja_XX-en_XX.ja_XX.bin").exists()


def test_manifest_input(tmp_path):
    raw = small_raw(tmp_path, langs=("ja_XX",))
    (tmp_path / "corpora.yaml").write_text(
        "pairs:\n  ja_XX-en_XX:\n    train:\n      - raw/train.ja_XX-en_XX\n"
        "    test: [{ja_XX: raw/test.ja_XX-en_XX.ja_XX, en_XX: raw/test.ja_XX-en_XX.en_XX}]\n")
    manifest = prepare(PrepareConfig(out=str(tmp_path / "out"), manifest=str(tmp_path / "corpora.yaml"),
                                     vocab_size=1000, valid_size=20))
    assert manifest["pairs"]["ja_XX-en_XX"]["test"]["lines"] == 50


def test_on_bad_utf8_skip_counts_lines(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",))
    path = raw / "train.de_DE-en_XX.de_DE"
    data = path.read_bytes().split(b"\n")
    data[3] = b"kaputt \xff\xfe"
    path.write_bytes(b"\n".join(data))
    manifest = prepare(PrepareConfig(out=str(tmp_path / "out"), raw=[str(raw)], vocab_size=1000, valid_size=20,
                                     on_bad_utf8="skip"))
    assert manifest["pairs"]["de_DE-en_XX"]["train"]["bad_utf8"] == 1


# ---------------------------------------------------------------- bad input: one-line errors, exit != 0

def _cli_error(tmp_path, raw, *extra):
    result = CliRunner().invoke(main, ["prepare", "--raw", str(raw), "--out", str(tmp_path / "out"),
                                       "--vocab-size", "300", *extra])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("nmt: error: ")
    assert result.output.count("\n") == 1  # one line
    assert "Traceback" not in result.output
    return result.output


def test_mismatched_line_counts(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",))
    path = raw / "train.de_DE-en_XX.en_XX"
    path.write_text("\n".join(path.read_text().splitlines()[:-5]) + "\n")
    message = _cli_error(tmp_path, raw)
    assert "train.de_DE-en_XX.de_DE has 400 lines" in message and "has 395" in message


def test_invalid_utf8_names_file_and_line(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",))
    path = raw / "train.de_DE-en_XX.en_XX"
    data = path.read_bytes().split(b"\n")
    data[6] = b"bad \xc3\x28 byte"
    path.write_bytes(b"\n".join(data))
    message = _cli_error(tmp_path, raw)
    assert "train.de_DE-en_XX.en_XX: line 7 is not valid UTF-8" in message and "--on-bad-utf8 skip" in message


def test_unknown_language(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",))
    (raw / "train.xx_YY-en_XX.xx_YY").write_text("a\n")
    (raw / "train.xx_YY-en_XX.en_XX").write_text("a\n")
    assert "unknown language code 'xx_YY'" in _cli_error(tmp_path, raw)


def test_empty_corpus(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",))
    (raw / "train.de_DE-en_XX.de_DE").write_text("")
    (raw / "train.de_DE-en_XX.en_XX").write_text("")
    assert "empty corpus" in _cli_error(tmp_path, raw)


def test_missing_partner_file(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",))
    (raw / "train.de_DE-en_XX.en_XX").unlink()
    assert "missing file" in _cli_error(tmp_path, raw)


def test_missing_directory_and_unknown_direction(tmp_path):
    assert "does not exist" in _cli_error(tmp_path, tmp_path / "nope")
    raw = small_raw(tmp_path, langs=("de_DE",))
    assert "no data for direction fr_XX-en_XX" in _cli_error(tmp_path, raw, "--pairs", "fr_XX-en_XX")


def test_real_process_exits_nonzero_without_traceback(tmp_path):
    result = run_nmt("prepare", "--raw", tmp_path / "missing", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("nmt: error:") and "Traceback" not in result.stderr


def test_discover_raw_groups_pairs():
    pairs = corpus.discover_raw([SAMPLE_RAW])
    assert sorted(pairs) == ["de_DE-en_XX", "ja_XX-en_XX", "ko_KR-en_XX", "ru_RU-en_XX"]
    assert len(pairs["de_DE-en_XX"].splits["test"]) == 1 and not pairs["de_DE-en_XX"].splits["valid"]
    directions = corpus.resolve_directions("to-en", pairs)
    assert all(t == "en_XX" for _, t in directions) and len(directions) == 4
