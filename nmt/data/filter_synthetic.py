"""Filtering a teacher's (or a back-translating model's) output before it becomes training data.

``nmt translate-corpus --scores`` writes one translation and one score (the best
hypothesis' log-probability per token, higher is better) per source line. This keeps
the pairs worth learning from:

- empty outputs (lines the translator skipped) are always dropped;
- ``drop_worst``: the given share of the scored pairs with the lowest teacher scores is
  dropped (ties broken by line order, so the result is deterministic); an empty score,
  which translate-corpus writes for a line it had nothing to translate, is no score;
- ``max_ratio``: pairs whose length ratio (words; characters for CJK/Thai, as in
  ``nmt prepare``) exceeds it are dropped (hallucinated or truncated outputs).

The result is a line-aligned pair of files ``PREFIX.{src}`` / ``PREFIX.{tgt}`` (a
corpus entry for a manifest's ``synthetic:`` section) and ``PREFIX.filter.json`` with
the counts. Memory: a score, an index and a flag per line (the ranking), never the text.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nmt import langs
from nmt.data import clean, readers
from nmt.errors import NmtError
from nmt.fileio import atomic_open, refuse_same_file, write_json


def _read_scores(path: Path, expected: int) -> np.ndarray:
    """One score per line; an empty line (translate-corpus writes one where it had nothing to translate:
    an empty, undecodable or too long source) is NaN and takes no part in the ranking."""
    values = []
    for number, raw in enumerate(readers.iter_lines(path), start=1):
        if not raw.strip():
            values.append(math.nan)
            continue
        try:
            value = float(raw)
        except ValueError:
            raise NmtError(f"{path}: line {number} is not a score ({raw[:40]!r}); give the .scores file that "
                           "nmt translate-corpus --scores wrote") from None
        values.append(value if math.isfinite(value) else -math.inf)
    if len(values) != expected:
        raise NmtError(f"{path} has {len(values)} scores but the translations have {expected} lines; "
                       "give the scores of the same run")
    return np.asarray(values, dtype=np.float64)


def _count_lines(path: Path) -> int:
    return sum(1 for _ in readers.iter_lines(path))


def filter_translations(src: Path, hyp: Path, src_lang: str, tgt_lang: str, out_prefix: Path,
                        scores: Path | None = None, drop_worst: float = 0.0, max_ratio: float | None = None,
                        chunk_lines: int = 100_000) -> dict:
    """Write the kept pairs to ``out_prefix.{src_lang}`` / ``.{tgt_lang}``; return the counts."""
    src, hyp, out_prefix = Path(src), Path(hyp), Path(out_prefix)
    source_lang, target_lang = langs.get(src_lang), langs.get(tgt_lang)
    if not 0 <= drop_worst < 1:
        raise NmtError(f"--drop-worst must be a share in [0, 1), got {drop_worst}")
    if drop_worst and scores is None:
        raise NmtError("--drop-worst needs --scores (the .scores file of nmt translate-corpus --scores)")
    if max_ratio is not None and not max_ratio >= 1:
        raise NmtError(f"--max-ratio must be >= 1, got {max_ratio}")
    for path in (src, hyp) + ((Path(scores),) if scores else ()):
        for lang in (src_lang, tgt_lang):
            refuse_same_file(path, Path(f"{out_prefix}.{lang}"), "--out")
    n_src, n_hyp = _count_lines(src), _count_lines(hyp)
    if n_src != n_hyp:
        raise NmtError(f"{src} has {n_src} lines but {hyp} has {n_hyp}: the translations must be line-aligned "
                       "with their sources")
    keep = np.ones(n_src, dtype=bool)
    dropped = {"empty": 0, "score": 0, "ratio": 0}
    if drop_worst:
        values = _read_scores(Path(scores), n_src)
        scored = int((~np.isnan(values)).sum())
        worst = np.argsort(values, kind="stable")[:int(scored * drop_worst)]  # NaN sorts last: never chosen
        keep[worst] = False
        dropped["score"] = len(worst)
        threshold = float(values[worst[-1]]) if len(worst) else None
    else:
        threshold = None
    kept = 0
    position = 0
    with atomic_open(Path(f"{out_prefix}.{src_lang}")) as out_src, \
            atomic_open(Path(f"{out_prefix}.{tgt_lang}")) as out_tgt:
        for chunk_src, chunk_hyp in zip(readers.iter_chunks(src, chunk_lines), readers.iter_chunks(hyp, chunk_lines)):
            rows_src, rows_tgt = [], []
            for i, (a, b) in enumerate(zip(chunk_src, chunk_hyp)):
                if not keep[position + i]:
                    continue
                x, y = a.decode("utf-8", "replace"), b.decode("utf-8", "replace")
                if not x.strip() or not y.strip():
                    dropped["empty"] += 1
                    continue
                if max_ratio is not None:
                    lx, ly = clean.length(x, source_lang), clean.length(y, target_lang)
                    if max(lx, ly) > max_ratio * max(1, min(lx, ly)):
                        dropped["ratio"] += 1
                        continue
                rows_src.append(x)
                rows_tgt.append(y)
            position += len(chunk_src)
            if rows_src:
                out_src.write("\n".join(rows_src) + "\n")
                out_tgt.write("\n".join(rows_tgt) + "\n")
            kept += len(rows_src)
    if kept == 0:
        raise NmtError(f"no pair of {src} / {hyp} is left after filtering ({dropped}); relax the filters")
    info = {"source": str(src), "translations": str(hyp), "scores": str(scores) if scores else None,
            "lines": n_src, "kept": kept, "dropped": dropped, "drop_worst": drop_worst,
            "score_threshold": threshold, "max_ratio": max_ratio,
            "files": [f"{out_prefix.name}.{src_lang}", f"{out_prefix.name}.{tgt_lang}"]}
    write_json(Path(f"{out_prefix}.filter.json"), info)
    return info
