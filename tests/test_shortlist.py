"""Vocabulary shortlists: building them from the training text, exporting them, CTranslate2 obeying them."""
import json
import shutil
from collections import Counter

import pytest

from conftest import SAMPLE_RAW, run_nmt
from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions
from nmt.vocab import SubwordCodec
from nmt.translate.shortlist import SHORTLIST_DIR, ShortlistOptions, build_shortlists, read_shortlist, write_shortlists
from nmt.translate.translator import Translator

DE = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
EN = (SAMPLE_RAW / "test.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines()
MIN_COUNT = 20  # a short list on the small sample, so that the checks below can fail


def test_lists_hold_the_target_languages_tokens(trained_bundle, prepared_sample, tmp_path):
    bundle = Bundle.load(trained_bundle)
    maps, summary = build_shortlists(bundle, prepared_sample, ShortlistOptions(min_count=MIN_COUNT))
    assert set(maps) == {tgt for _, tgt in bundle.direction_pairs()}
    # one line with an empty key (the same list for every sentence), led by the language token
    assert all(len(lines) == 1 and lines[0].startswith(f"\t__{lang}__ ") for lang, lines in maps.items())
    loose, _ = build_shortlists(bundle, prepared_sample, ShortlistOptions(min_count=1))
    for name, lists in (("strict", maps), ("loose", loose)):
        write_shortlists(lists, tmp_path / name)
    codec = SubwordCodec(bundle.spm_path, bundle.dict_path)
    ja = read_shortlist(tmp_path / "strict" / "ja_XX.txt", codec.piece_index)
    en = read_shortlist(tmp_path / "strict" / "en_XX.txt", codec.piece_index)
    assert summary["targets"]["ja_XX"]["tokens"] == len(ja)
    # every token of the Japanese training text is in Japanese's full list (min_count 1) ...
    train_ja = (prepared_sample / "clean" / "train.ja_XX-en_XX.ja_XX").read_text(encoding="utf-8").splitlines()
    japanese = {i for ids in codec.encode(train_ja[:50]) for i in ids if i > 3}  # 0-3: specials
    assert japanese <= read_shortlist(tmp_path / "loose" / "ja_XX.txt", codec.piece_index)
    # ... while English's list holds no token with Japanese script, and Japanese's no English word
    kana = {i for i in japanese if any("\u3040" <= ch <= "\u30ff" for ch in codec.symbols[i])}
    assert kana and not kana & en
    english = set(codec.encode(["the house"])[0])
    assert english <= en and not english & ja
    # min_count prunes
    assert len(loose["ja_XX"][0].split(" ")) > len(maps["ja_XX"][0].split(" "))

def test_bad_shortlist_data_is_one_line_error(trained_bundle, tmp_path):
    result = run_nmt("export", "--model", trained_bundle, "--shortlist", tmp_path / "missing", "--force")
    assert result.returncode == 2 and "not a directory" in result.stderr and "Traceback" not in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.fr_XX-en_XX.fr_XX").write_text("Bonjour\n")
    (other / "train.fr_XX-en_XX.en_XX").write_text("Hello\n")
    with pytest.raises(NmtError, match="no training bitext"):
        build_shortlists(Bundle.load(trained_bundle), other)


@pytest.fixture(scope="module")
def shortlisted(trained_bundle, prepared_sample, tmp_path_factory):
    """A copy of the trained tiny bundle whose int8 export has short lists."""
    bundle = tmp_path_factory.mktemp("sl") / "bundle"
    shutil.copytree(trained_bundle, bundle, ignore=shutil.ignore_patterns("ctranslate2-*"))
    result = run_nmt("export", "--model", bundle, "--quantization", "int8", "--shortlist", prepared_sample,
                     "--shortlist-min-count", MIN_COUNT)
    assert result.returncode == 0, result.stderr[-1500:]
    assert "with vocabulary shortlists" in result.stderr
    return bundle


def test_ctranslate2_obeys_the_list(shortlisted, tmp_path):
    info = json.loads((shortlisted / "ctranslate2-int8" / "nmt_export.json").read_text())["shortlist"]
    assert info["min_count"] == MIN_COUNT and info["targets"]["en_XX"]["tokens"] > 0
    lines, options = DE[:60], DecodeOptions(beam=3)
    off = Translator(shortlisted, backend="ctranslate2", shortlist=False)
    codec = off.codec
    full = off.translate(lines, "de_DE", "en_XX", options)
    # a copy whose English list lacks the 5 tokens the unrestricted model used most
    used = Counter(i for t in full for i in codec.pieces_to_ids(t.hypotheses[0].tokens) if i > 3)
    banned = {codec.symbols[i] for i, _ in used.most_common(5)}
    short = shutil.copytree(shortlisted, tmp_path / "short")
    path = short / "ctranslate2-int8" / SHORTLIST_DIR / "en_XX.txt"
    kept = [x for x in path.read_text(encoding="utf-8").rstrip("\n").split(" ") if x not in banned]
    path.write_text(" ".join(kept) + "\n", encoding="utf-8")
    on = Translator(short, backend="ctranslate2")
    assert on.backend.uses_shortlist("en_XX") and not off.backend.uses_shortlist("en_XX")
    allowed = read_shortlist(path, codec.piece_index)
    # batches of several sentences whose sizes vary: the list must hold in every batch
    out = on.translate(lines, "de_DE", "en_XX", options)
    assert len(out) == len(lines) and all(t.text for t in out)
    ids = [i for t in out for i in codec.pieces_to_ids(t.hypotheses[0].tokens) if i > 3]
    assert ids and all(i in allowed for i in ids) and not {codec.symbols[i] for i in ids} & banned


def test_greedy_output_unchanged_where_it_fits_the_list(shortlisted):
    """Greedy search takes the best candidate at each step: where the full-vocabulary output
    lies inside the list, the restricted search must give exactly the same output. A
    mis-mapped forced language token or token id would not."""
    on = Translator(shortlisted, backend="ctranslate2")
    off = Translator(shortlisted, backend="ctranslate2", shortlist=False)
    codec = on.codec
    greedy = DecodeOptions(beam=1)
    for src, tgt, lines in (("de_DE", "en_XX", DE[:80]), ("en_XX", "de_DE", EN[:80])):
        allowed = read_shortlist(shortlisted / "ctranslate2-int8" / SHORTLIST_DIR / f"{tgt}.txt", codec.piece_index)
        full = off.translate(lines, src, tgt, greedy)
        restricted = on.translate(lines, src, tgt, greedy)
        inside = [i for i, t in enumerate(full)
                  if all(x in allowed or x <= 3 for x in codec.pieces_to_ids(t.hypotheses[0].tokens))]
        assert len(inside) >= 20
        assert [restricted[i].text for i in inside] == [full[i].text for i in inside]


def test_cli_shortlist_switch(shortlisted, tmp_path):
    src = tmp_path / "in.de"
    src.write_text("\n".join(DE[:12]) + "\n\n" + DE[12] + "\n", encoding="utf-8")
    outs = {}
    for flag in ("--shortlist", "--no-shortlist"):
        result = run_nmt("translate", "-m", shortlisted, "-s", "de_DE", "-t", "en_XX", "-i", src, flag,
                         "--beam", "2")
        assert result.returncode == 0, result.stderr
        outs[flag] = result.stdout.split("\n")[:-1]
        assert len(outs[flag]) == 14 and outs[flag][12] == ""
    lines = DE[:12] + [""] + [DE[12]]
    for flag, on in (("--shortlist", True), ("--no-shortlist", False)):
        expected = Translator(shortlisted, backend="ctranslate2", shortlist=on).translate_text(
            lines, "de_DE", "en_XX", options=DecodeOptions(beam=2))
        assert outs[flag] == expected
    assert outs["--shortlist"] != outs["--no-shortlist"]
