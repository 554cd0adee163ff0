"""BLEU, chrF and chrF++ with sacrebleu, the tokenizer chosen per target language.

The language table (``nmt.langs``) says which sacrebleu tokenizer BLEU needs
for a target language: ``zh`` for Chinese, ``ja-mecab`` for Japanese,
``ko-mecab`` for Korean, ``flores200`` (spBLEU) for Thai, Burmese and Khmer,
``13a`` otherwise. ``flores200`` needs its sentencepiece model on disk
(sacrebleu downloads it on first use; offline it is missing): without it those
languages fall back to the ``char`` tokenizer, and the signature says so. Every
score carries sacrebleu's signature.

Scores are kept at sacrebleu's full float precision everywhere (report.json,
report.csv, averages, significance); only a table cell rounds, once, so a
1-decimal cell reads exactly what ``sacrebleu`` prints with ``-w 1``.

The BLEU tokenizer can be overridden for every target (``13a``) or per target
language (``ja_XX=char,zh_CN=zh``); ``parse_tokenize`` reads that syntax and
``tokenizer_plan`` says, per target, which tokenizer is used and why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from nmt import langs
from nmt.errors import NmtError

TOKENIZERS = ("13a", "intl", "zh", "ja-mecab", "ko-mecab", "char", "none", "flores101", "flores200")


@dataclass
class MetricScore:
    name: str  # BLEU | chrF | chrF++
    score: float  # full precision, as sacrebleu (or COMET) computed it; rounded only for display
    signature: str
    detail: str = ""  # e.g. BLEU's n-gram precisions and brevity penalty


def flores_spm_available(kind: str = "flores200") -> bool:
    from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS
    from sacrebleu.utils import SACREBLEU_DIR

    path = os.path.join(SACREBLEU_DIR, "models", os.path.basename(SPM_MODELS[kind]["url"]))
    return os.path.isfile(path) and os.path.getsize(path) > 0


def bleu_tokenizer_for(lang: str, override: str | None = None) -> str:
    """The sacrebleu tokenizer for BLEU into ``lang`` (an explicit override wins)."""
    if override:
        if override not in TOKENIZERS:
            raise NmtError(f"unknown BLEU tokenizer {override!r}; choose one of {', '.join(TOKENIZERS)}")
        if override.startswith("flores") and not flores_spm_available(override):
            raise NmtError(f"--tokenize {override} needs sacrebleu's {override} sentencepiece model, which is not "
                           "installed (run sacrebleu once online with -tok flores200, or pick another tokenizer)")
        return override
    tok = langs.get(lang).bleu_tokenizer
    if tok.startswith("flores") and not flores_spm_available(tok):
        return langs.FLORES_FALLBACK_TOKENIZER
    return tok


def parse_tokenize(spec: str | None) -> dict[str, str]:
    """``"13a"`` -> ``{"*": "13a"}``; ``"ja_XX=char,zh_CN=zh"`` -> per target language.

    Both forms can be mixed (``"intl,ja_XX=ja-mecab"``); names and codes are checked.
    """
    plan: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        lang, sep, tok = item.partition("=")
        if not sep:
            lang, tok = "*", item
        else:
            langs.get(lang.strip())
        tok = tok.strip()
        if tok not in TOKENIZERS:
            raise NmtError(f"unknown BLEU tokenizer {tok!r}; choose one of {', '.join(TOKENIZERS)}")
        plan[lang.strip()] = tok
    return plan


def tokenizer_plan(lang: str, overrides: dict[str, str] | None = None) -> tuple[str, str]:
    """``(tokenizer, why)`` for BLEU into ``lang``; ``why`` explains any non-default choice."""
    overrides = overrides or {}
    chosen = overrides.get(lang) or overrides.get("*")
    if chosen:
        return bleu_tokenizer_for(lang, chosen), "set by --tokenize"
    wanted = langs.get(lang).bleu_tokenizer
    tok = bleu_tokenizer_for(lang)
    if tok != wanted:
        return tok, (f"{wanted} wanted, but sacrebleu's {wanted} sentencepiece model is not installed "
                     f"(it is downloaded on first online use): fell back to {tok}")
    return tok, ""


def bleu_metric(tgt_lang: str, tokenize: str | None = None, references=None):
    """A configured sacrebleu ``BLEU`` object for ``tgt_lang`` (used by the paired tests)."""
    return _bleu(bleu_tokenizer_for(tgt_lang, tokenize), references)


def chrf_metric(word_order: int = 0, references=None):
    """A sacrebleu ``CHRF`` object: chrF (``word_order=0``) or chrF++ (``word_order=2``)."""
    from sacrebleu.metrics import CHRF

    return CHRF(word_order=word_order, references=references)


def _bleu(tokenize: str, references=None):
    from sacrebleu.metrics import BLEU

    try:
        return BLEU(tokenize=tokenize, references=references)
    except (ImportError, RuntimeError) as exc:
        why = " ".join(str(exc).split())  # sacrebleu's message spans lines; an nmt error is one line
        raise NmtError(f"BLEU tokenizer {tokenize} is not usable here ({why}); install sacrebleu[ja,ko] "
                       "or pass another tokenizer") from None


def check_lengths(hyps: Sequence[str], refs: Sequence[str], what: str = "hypotheses") -> None:
    if len(hyps) != len(refs):
        raise NmtError(f"{what} have {len(hyps)} lines but the references have {len(refs)}; they must be line-aligned")


def bleu(hyps: Sequence[str], refs: Sequence[str], tgt_lang: str, tokenize: str | None = None) -> MetricScore:
    check_lengths(hyps, refs)
    metric = _bleu(bleu_tokenizer_for(tgt_lang, tokenize))
    result = metric.corpus_score(list(hyps), [list(refs)])
    detail = f"{'/'.join(f'{p:.1f}' for p in result.precisions)} (BP = {result.bp:.3f} ratio = {result.ratio:.3f})"
    return MetricScore("BLEU", result.score, str(metric.get_signature()), detail)


def chrf(hyps: Sequence[str], refs: Sequence[str], word_order: int = 0) -> MetricScore:
    from sacrebleu.metrics import CHRF

    check_lengths(hyps, refs)
    metric = CHRF(word_order=word_order)
    result = metric.corpus_score(list(hyps), [list(refs)])
    return MetricScore("chrF++" if word_order else "chrF", result.score, str(metric.get_signature()))


def chrf_pp(hyps: Sequence[str], refs: Sequence[str]) -> MetricScore:
    """chrF++: chrF with word unigrams and bigrams (``word_order=2``, Popovic 2017)."""
    return chrf(hyps, refs, word_order=2)


def sentence_chrf(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """Sentence-level chrF per line (for inspecting segments; corpus chrF is not their mean)."""
    metric = chrf_metric()
    return [metric.sentence_score(h, [r]).score for h, r in zip(hyps, refs)]
