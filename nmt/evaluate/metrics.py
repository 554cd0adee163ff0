"""BLEU, chrF and chrF++ with sacrebleu, the tokenizer chosen per target language.

The language table (``nmt.langs``) says which sacrebleu tokenizer BLEU needs
for a target language: ``zh`` for Chinese, ``ja-mecab`` for Japanese,
``ko-mecab`` for Korean, ``flores200`` (spBLEU) for Thai, Burmese and Khmer,
``13a`` otherwise. ``flores200`` needs its sentencepiece model on disk
(sacrebleu downloads it on first use; offline it is missing): without it those
languages fall back to the ``char`` tokenizer, and the signature says so. Every
score carries sacrebleu's signature.
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
    score: float
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


def _bleu(tokenize: str):
    from sacrebleu.metrics import BLEU

    try:
        return BLEU(tokenize=tokenize)
    except (ImportError, RuntimeError) as exc:
        raise NmtError(f"BLEU tokenizer {tokenize} is not usable here ({exc}); install sacrebleu[ja,ko] "
                       "or pass another tokenizer") from None


def check_lengths(hyps: Sequence[str], refs: Sequence[str], what: str = "hypotheses") -> None:
    if len(hyps) != len(refs):
        raise NmtError(f"{what} have {len(hyps)} lines but the references have {len(refs)}; they must be line-aligned")


def bleu(hyps: Sequence[str], refs: Sequence[str], tgt_lang: str, tokenize: str | None = None) -> MetricScore:
    check_lengths(hyps, refs)
    metric = _bleu(bleu_tokenizer_for(tgt_lang, tokenize))
    result = metric.corpus_score(list(hyps), [list(refs)])
    detail = f"{'/'.join(f'{p:.1f}' for p in result.precisions)} (BP = {result.bp:.3f} ratio = {result.ratio:.3f})"
    return MetricScore("BLEU", round(result.score, 2), str(metric.get_signature()), detail)


def chrf(hyps: Sequence[str], refs: Sequence[str], word_order: int = 0) -> MetricScore:
    from sacrebleu.metrics import CHRF

    check_lengths(hyps, refs)
    metric = CHRF(word_order=word_order)
    result = metric.corpus_score(list(hyps), [list(refs)])
    return MetricScore("chrF++" if word_order else "chrF", round(result.score, 2), str(metric.get_signature()))
