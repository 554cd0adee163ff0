"""Two checks of what a system produced, per direction, beside the metrics:

``off-target %``  the share of hypotheses that the language identifier of
                  ``nmt.data.lid`` confidently puts in another language than the
                  target (the classic failure of many-to-many and zero-shot
                  directions: fluent output in the wrong language scores a little
                  chrF and nothing else explains it);
``empty %``       the share of hypotheses with no visible character (a model
                  that stops at once: BLEU and chrF are then 0.0 with no other sign).

Both are percentages of all hypotheses of the direction. Empty hypotheses and
those under ``lid.MIN_WORDS`` words are never off-target; words are counted by the
detected language's script as well (``lid.words``), so a hypothesis that copies a
Japanese, Chinese or Thai source is judged, not waved through as "one word". When the identifier
has no label for the target language, off-target is ``None`` (``n/a`` in the
report) and ``why_na`` says why. Each carries a signature like the metrics do.
"""
from __future__ import annotations

from nmt import __version__
from nmt.data import lid
from nmt.evaluate.metrics import MetricScore

OFF_TARGET = "off-target %"
EMPTY = "empty %"
NAMES = (OFF_TARGET, EMPTY)
WARN_PERCENT = 10.0  # a share above this gets a warning and a note in the report

OFF_TARGET_SIGNATURE = (f"nmt:{__version__}|lid:fasttext-lid.176.ftz|threshold:{lid.DEFAULT_THRESHOLD}"
                        f"|min-words:{lid.MIN_WORDS}|words:by-detected-script")
EMPTY_SIGNATURE = f"nmt:{__version__}|empty:no-visible-character"


def _empty(text: str) -> bool:
    return not text.strip()


def why_na(tgt: str) -> str:
    return f"the language identifier ({lid.DETECTOR_NAME}) has no label for {tgt}"


def score(hyps: list[str], tgt: str) -> dict[str, MetricScore]:
    n = max(1, len(hyps))
    empty = sum(_empty(h) for h in hyps)
    scores = {EMPTY: MetricScore(EMPTY, 100.0 * empty / n, EMPTY_SIGNATURE)}
    if lid.supports(tgt):
        off = [h for h in hyps if not _empty(h) and lid.off_target(h, tgt)]
        labels: dict = {}
        for h in off:
            label = lid.identify(h)[0]
            labels[label] = labels.get(label, 0) + 1
        common = ", ".join(f"{k} {v}" for k, v in sorted(labels.items(), key=lambda kv: -kv[1])[:3])
        scores[OFF_TARGET] = MetricScore(OFF_TARGET, 100.0 * len(off) / n, OFF_TARGET_SIGNATURE,
                                         f"{len(off)} of {len(hyps)}" + (f"; labels: {common}" if common else ""))
    else:
        scores[OFF_TARGET] = MetricScore(OFF_TARGET, None, "", why_na(tgt))  # type: ignore[arg-type]
    return scores


def warnings(direction: str, tgt: str, scores: dict, system: str | None = None) -> list[str]:
    """Lines for the log and the report's notes when a share is high or cannot be measured."""
    who = f"{system}, {direction}" if system else direction
    out = []
    empty = scores[EMPTY].score
    if empty > WARN_PERCENT:
        out.append(f"WARNING {who}: {empty:.1f}% of the hypotheses are empty: the system produced nothing "
                   "for them, which is what BLEU/chrF measure here (check the model, its budget and decoding)")
    off = scores[OFF_TARGET]
    if off.score is None:
        out.append(f"off-target % {who}: n/a: {off.detail}")
    elif off.score > WARN_PERCENT:
        out.append(f"WARNING {who}: {off.score:.1f}% of the hypotheses are confidently in another language than "
                   f"{tgt} ({off.detail}): off-target translation")
    return out
