"""Normalisation and every bitext filter, on real sample sentences."""
import pytest

from nmt import langs
from nmt.data import clean, dedup
from nmt.text import normalize
from nmt.errors import NmtError


def test_normalize_whitespace_controls_and_nfc():
    decomposed = "Cafe\u0301"  # e + combining acute
    assert normalize(decomposed) == "Café"
    assert normalize("  Guten\u00a0Tag,\tTom!\u3000 ") == "Guten Tag, Tom!"
    assert normalize("\ufeffHallo\x00 Welt\x1b") == "Hallo Welt"
    assert normalize("a\u2028b\r\nc") == "a b c"
    # zero-width non-joiner is part of Persian / Indic spelling: kept
    assert normalize("می\u200cخواهم") == "می\u200cخواهم"
    assert normalize("ﾃｽﾄ", "NFKC") == "テスト"
    assert normalize("ﾃｽﾄ", "NFC") == "ﾃｽﾄ"


def test_length_counts_words_or_character_equivalents():
    assert clean.length("Tom likes Italian food.", langs.get("en_XX")) == 4
    ja = langs.get("ja_XX")
    assert clean.length("彼は自分の目的を全て達成した。", ja) == 7  # 15 characters / 2.4
    assert clean.length("", ja) == 0


def _counts_after(pairs, src="de_DE", tgt="en_XX", **cfg):
    counts = clean.FilterCounts()
    kept = list(clean.clean_pairs([p[0] for p in pairs], [p[1] for p in pairs], src, tgt,
                                  clean.FilterConfig(**cfg), counts))
    return kept, counts


def test_each_filter_drops_and_counts():
    pairs = [
        ("Ich mag Äpfel.", "I like apples."),               # kept
        ("", "Hello."),                                       # empty
        ("Ja", "Yes"),                                        # too short (min_len 2)
        ("eins zwei drei vier fünf sechs sieben acht neun zehn elf", "one two three four five six seven eight nine ten eleven"),  # too long
        ("Hallo Tom", "Hello there my dear old friend Tom"), # ratio 3.5 > 3
        (None, "I like pears."),                              # bad UTF-8 (skipped by the reader)
    ]
    kept, counts = _counts_after(pairs, min_len=2, max_len=10, max_ratio=3)
    assert kept == [("Ich mag Äpfel.", "I like apples.")]
    assert counts.read == 6 and counts.bad_utf8 == 1
    # duplicates and evaluation overlap need the whole corpus: the clean stage counts them (below)
    assert counts.dropped == {"empty": 1, "too_short": 1, "too_long": 1, "ratio": 1, "duplicate": 0,
                              "eval_overlap": 0}


def test_ratio_uses_character_equivalents_for_japanese():
    # a normal Japanese/English pair must not be dropped by the ratio filter
    kept, counts = _counts_after([("大学では建築学を専攻してたよ。", "I majored in architecture in college.")],
                                 "ja_XX", "en_XX")
    assert kept and counts.dropped["ratio"] == 0


def test_duplicates_after_normalisation_are_duplicates():
    kept, _ = _counts_after([("Guten  Tag", "Good day"), ("Guten Tag ", "Good  day"), ("Hallo", "Hello")])
    keys = dedup.pair_keys([x for x, _ in kept], [y for _, y in kept])
    seen = dedup.KeySet()
    first = seen.first_occurrences(keys)  # what the clean stage keeps
    assert [kept[i] for i in range(len(kept)) if first[i]] == [("Guten Tag", "Good day"), ("Hallo", "Hello")]


@pytest.mark.parametrize("kwargs", [dict(normalization="NFD"), dict(min_len=5, max_len=2), dict(max_ratio=0.5)])
def test_bad_filter_settings_are_errors(kwargs):
    with pytest.raises(NmtError):
        clean.FilterConfig(**kwargs).check()
