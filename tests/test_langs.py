import pytest

from nmt import langs
from nmt.errors import NmtError


def test_table_has_the_mbart50_languages_in_published_order():
    assert len(langs.MBART50_LANGS) == 52
    assert langs.MBART50_LANGS[:4] == ("ar_AR", "cs_CZ", "de_DE", "en_XX")
    assert langs.MBART50_LANGS[24] == "zh_CN" and langs.MBART50_LANGS[25] == "af_ZA"
    assert langs.MBART50_LANGS[-2:] == ("gl_ES", "sl_SI")
    assert len(set(langs.MBART50_LANGS)) == 52


def test_flores_codes_match_the_shared_mapping(shared_data):
    for line in (shared_data / "flores200" / "ml50_to_flores.tsv").read_text().splitlines():
        code, flores = line.split("\t")
        assert langs.get(code).flores == flores


def test_bleu_tokenizers_per_target():
    assert langs.get("zh_CN").bleu_tokenizer == "zh"
    assert langs.get("ja_XX").bleu_tokenizer == "ja-mecab"
    assert langs.get("ko_KR").bleu_tokenizer == "ko-mecab"
    assert langs.get("de_DE").bleu_tokenizer == "13a"


def test_unknown_code_lists_valid_ones():
    with pytest.raises(NmtError, match="unknown language code 'xx_YY'.*de_DE"):
        langs.get("xx_YY")


def test_directions_and_tokens():
    assert langs.parse_direction("de_DE-en_XX") == ("de_DE", "en_XX")
    assert langs.lang_token("de_DE") == "__de_DE__"
    assert langs.lang_token("de_DE", "mbart") == "[de_DE]"
    for bad in ("de_DE", "de_DE-de_DE", "de_DE-xx_YY"):
        with pytest.raises(NmtError):
            langs.parse_direction(bad)
