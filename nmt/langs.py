"""The one table of languages.

Every language-dependent decision in nmt reads this table: which codes are
valid, the FLORES-200 code of a language (for evaluation sets), its script,
whether it separates words with spaces (for length filters), what separates
two sentences of one line (for joining translated sentences), and which
sacrebleu tokenizer BLEU needs when it is the target language.

Codes are the mBART-50 / ML50 codes (``de_DE``, ``ja_XX``, ...).
``MBART50_LANGS`` lists the 52 language tokens of the published mBART-50
checkpoints in their published order: that order fixes their token ids, so it
must never be re-sorted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from nmt.errors import NmtError


@dataclass(frozen=True)
class Language:
    code: str  # ML50 / mBART-50 code, e.g. "de_DE"
    name: str
    flores: str  # FLORES-200 code, e.g. "deu_Latn"
    spaces: bool = True  # words separated by spaces (False: count characters)
    # For languages written without spaces: characters per English word, so that
    # lengths are comparable across scripts (medians measured on ML50 bitext for
    # ja and zh; Thai, Burmese and Khmer are rough estimates).
    chars_per_word: float = 1.0
    bleu_tokenizer: str = "13a"  # sacrebleu tokenizer for this target language
    # what goes between two translated sentences of one line (none in Japanese and Chinese text)
    sentence_joiner: str = " "

    @property
    def iso(self) -> str:
        return self.code.split("_")[0]

    @property
    def script(self) -> str:
        return self.flores.split("_")[1]

    def length(self, text: str) -> int:
        """Length in words, or word equivalents (characters / chars_per_word) for unspaced scripts."""
        if not text:
            return 0
        if self.spaces:
            return text.count(" ") + 1
        return max(1, math.ceil((len(text) - text.count(" ")) / self.chars_per_word))

    @property
    def iso3(self) -> str:
        """ISO 639-3 code of the macrolanguage, as mtdata's index names corpora (``deu``, ``ara``)."""
        base = self.flores.split("_")[0]
        return _MACROLANGUAGE.get(base, base)


_TABLE = [
    # The mBART-25 languages, in mBART's published order ...
    Language("ar_AR", "Arabic", "arb_Arab"),
    Language("cs_CZ", "Czech", "ces_Latn"),
    Language("de_DE", "German", "deu_Latn"),
    Language("en_XX", "English", "eng_Latn"),
    Language("es_XX", "Spanish", "spa_Latn"),
    Language("et_EE", "Estonian", "est_Latn"),
    Language("fi_FI", "Finnish", "fin_Latn"),
    Language("fr_XX", "French", "fra_Latn"),
    Language("gu_IN", "Gujarati", "guj_Gujr"),
    Language("hi_IN", "Hindi", "hin_Deva"),
    Language("it_IT", "Italian", "ita_Latn"),
    Language("ja_XX", "Japanese", "jpn_Jpan", spaces=False, chars_per_word=2.4, bleu_tokenizer="ja-mecab",
             sentence_joiner=""),
    Language("kk_KZ", "Kazakh", "kaz_Cyrl"),
    Language("ko_KR", "Korean", "kor_Hang", bleu_tokenizer="ko-mecab"),
    Language("lt_LT", "Lithuanian", "lit_Latn"),
    Language("lv_LV", "Latvian", "lvs_Latn"),
    Language("my_MM", "Burmese", "mya_Mymr", spaces=False, chars_per_word=4.0, bleu_tokenizer="flores200"),
    Language("ne_NP", "Nepali", "npi_Deva"),
    Language("nl_XX", "Dutch", "nld_Latn"),
    Language("ro_RO", "Romanian", "ron_Latn"),
    Language("ru_RU", "Russian", "rus_Cyrl"),
    Language("si_LK", "Sinhala", "sin_Sinh"),
    Language("tr_TR", "Turkish", "tur_Latn"),
    Language("vi_VN", "Vietnamese", "vie_Latn"),
    Language("zh_CN", "Chinese (Simplified)", "zho_Hans", spaces=False, chars_per_word=1.6, bleu_tokenizer="zh",
             sentence_joiner=""),
    # ... then the languages mBART-50 added, in its published order.
    Language("af_ZA", "Afrikaans", "afr_Latn"),
    Language("az_AZ", "Azerbaijani", "azj_Latn"),
    Language("bn_IN", "Bengali", "ben_Beng"),
    Language("fa_IR", "Persian", "pes_Arab"),
    Language("he_IL", "Hebrew", "heb_Hebr"),
    Language("hr_HR", "Croatian", "hrv_Latn"),
    Language("id_ID", "Indonesian", "ind_Latn"),
    Language("ka_GE", "Georgian", "kat_Geor"),
    Language("km_KH", "Khmer", "khm_Khmr", spaces=False, chars_per_word=4.0, bleu_tokenizer="flores200"),
    Language("mk_MK", "Macedonian", "mkd_Cyrl"),
    Language("ml_IN", "Malayalam", "mal_Mlym"),
    Language("mn_MN", "Mongolian", "khk_Cyrl"),
    Language("mr_IN", "Marathi", "mar_Deva"),
    Language("pl_PL", "Polish", "pol_Latn"),
    Language("ps_AF", "Pashto", "pbt_Arab"),
    Language("pt_XX", "Portuguese", "por_Latn"),
    Language("sv_SE", "Swedish", "swe_Latn"),
    Language("sw_KE", "Swahili", "swh_Latn"),
    Language("ta_IN", "Tamil", "tam_Taml"),
    Language("te_IN", "Telugu", "tel_Telu"),
    Language("th_TH", "Thai", "tha_Thai", spaces=False, chars_per_word=4.0, bleu_tokenizer="flores200"),
    Language("tl_XX", "Tagalog", "tgl_Latn"),
    Language("uk_UA", "Ukrainian", "ukr_Cyrl"),
    Language("ur_PK", "Urdu", "urd_Arab"),
    Language("xh_ZA", "Xhosa", "xho_Latn"),
    Language("gl_ES", "Galician", "glg_Latn"),
    Language("sl_SI", "Slovene", "slv_Latn"),
]

# FLORES-200 names some languages by an individual language; corpus indexes such as
# mtdata's use the macrolanguage (ISO 639-3) instead.
_MACROLANGUAGE = {"arb": "ara", "lvs": "lav", "npi": "nep", "khk": "mon", "pes": "fas", "azj": "aze",
                  "pbt": "pus", "swh": "swa"}

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in _TABLE}
MBART50_LANGS: tuple[str, ...] = tuple(lang.code for lang in _TABLE)
MBART25_LANGS: tuple[str, ...] = MBART50_LANGS[:25]
ENGLISH = "en_XX"

# Fallback when the flores200 SentencePiece model is not installed: the
# character tokenizer is what sacrebleu recommends for unsegmented scripts.
FLORES_FALLBACK_TOKENIZER = "char"


def get(code: str) -> Language:
    """Return the language for an ML50 code, or fail with the list of valid codes."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise NmtError(
            f"unknown language code {code!r}; valid codes are: {', '.join(sorted(LANGUAGES))}"
        ) from None


def check_codes(codes) -> list[str]:
    for code in codes:
        get(code)
    return list(codes)


def by_flores(flores_code: str) -> Language:
    for lang in _TABLE:
        if lang.flores == flores_code:
            return lang
    raise NmtError(f"no language with FLORES-200 code {flores_code!r}")


def resolve(code: str, available) -> str | None:
    """A language code as a client sends it -> the ML50 code among ``available``, or None.

    Takes ML50 codes (``de_DE``) as they are, and ISO 639-1 codes as LibreTranslate
    clients send them (``de``, also with a region or script such as ``pt-BR`` or
    ``zh-Hans``): the model language whose ISO part matches."""
    if code in available:
        return code
    iso = code.strip().lower().replace("_", "-").split("-")[0]
    matches = [c for c in available if c in LANGUAGES and LANGUAGES[c].iso == iso]
    return matches[0] if matches else None


def lang_token(code: str, style: str = "multilingual") -> str:
    """The token fairseq uses for a language: ``__de_DE__`` or mBART's ``[de_DE]``."""
    if style == "multilingual":
        return f"__{code}__"
    if style == "mbart":
        return f"[{code}]"
    raise NmtError(f"unknown language-token style {style!r}; choose multilingual or mbart")


def parse_direction(text: str) -> tuple[str, str]:
    """``"de_DE-en_XX"`` -> ``("de_DE", "en_XX")``, with both codes checked."""
    parts = text.strip().split("-")
    if len(parts) != 2 or not all(parts):
        raise NmtError(f"bad direction {text!r}: write it as SRC-TGT, e.g. de_DE-en_XX")
    src, tgt = parts
    get(src)
    get(tgt)
    if src == tgt:
        raise NmtError(f"bad direction {text!r}: source and target are the same language")
    return src, tgt
