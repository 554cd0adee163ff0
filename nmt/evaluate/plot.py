"""Source x target heatmap of one metric (many-to-many models), as a PNG.

Rows are source languages, columns target languages, in the language table's
order with English first. Cells without a score (not evaluated, the diagonal,
or COMET n/a) are grey and empty, never zero. matplotlib runs on the Agg
backend (no display needed) and the file is written atomically.
"""
from __future__ import annotations

import math
from pathlib import Path

from nmt import langs
from nmt.fileio import atomic_path


def language_order(codes) -> list[str]:
    order = {code: i for i, code in enumerate(langs.MBART50_LANGS)}
    return sorted(set(codes), key=lambda c: (c != langs.ENGLISH, order.get(c, len(order)), c))


def worth_plotting(directions) -> bool:
    """A matrix needs at least two sources and two targets (an English-centric x<->en run qualifies)."""
    return len({s for s, _ in directions}) >= 2 and len({t for _, t in directions}) >= 2


def heatmap(scores: dict, metric: str, title: str, path: Path, decimals: int = 1) -> Path:
    """``scores``: ``{(src, tgt): value or None}``; writes ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    sources = language_order(s for s, _ in scores)
    targets = language_order(t for _, t in scores)
    grid = np.full((len(sources), len(targets)), np.nan)
    for (src, tgt), value in scores.items():
        if value is not None and not math.isnan(value):
            grid[sources.index(src), targets.index(tgt)] = value
    size = max(3.5, 0.75 * max(len(sources), len(targets)) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    finite = grid[~np.isnan(grid)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 1, vmax + 1
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal")
    ax.set_xticks(range(len(targets)), labels=targets, rotation=45, ha="right")
    ax.set_yticks(range(len(sources)), labels=sources)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    ax.set_title(title, fontsize=10)
    fontsize = max(5, 10 - len(targets) // 4)
    for i in range(len(sources)):
        for j in range(len(targets)):
            if not np.isnan(grid[i, j]):
                value = grid[i, j]
                bright = (value - vmin) / (vmax - vmin) > 0.6
                ax.text(j, i, f"{value:.{decimals}f}", ha="center", va="center", fontsize=fontsize,
                        color="black" if bright else "white")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=metric)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)
