"""The data every system of the quality-per-budget benchmark trains and is tested on.

From ml50-mini's raw bitext of each pair (``train.{xx}-en_XX.*``), a seeded shuffle
holds out ``test`` and ``valid`` lines per pair (in-domain test sets; ml50-mini has no
test split of its own); the rest is the training text. Every system gets exactly
these files: nmt through ``nmt prepare --raw``, the peers as plain text with the
target-language token as a source prefix. FLORES-200 devtest is the second test set.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

HELD_OUT = {"test": 500, "valid": 200}  # per pair; low-resource pairs hold out a smaller share, see split()


def split(shared: Path, pairs: list[str], out: Path, seed: int = 1) -> dict:
    """Write ``out/raw/{train,valid,test}.{xx}-en_XX.{xx,en_XX}``; counts per pair and split."""
    raw = out / "raw"
    done = out / "split.json"
    if done.exists():
        return json.loads(done.read_text())
    raw.mkdir(parents=True, exist_ok=True)
    counts = {}
    for lang in pairs:
        name = f"{lang}-en_XX"
        src = (shared / "ml50-mini" / "raw" / f"train.{name}.{lang}").read_text(encoding="utf-8").splitlines()
        tgt = (shared / "ml50-mini" / "raw" / f"train.{name}.en_XX").read_text(encoding="utf-8").splitlines()
        assert len(src) == len(tgt), name
        order = list(range(len(src)))
        random.Random(seed).shuffle(order)
        # small pairs (a few thousand lines) give up at most 10% of their lines to each held-out split
        n_test = min(HELD_OUT["test"], len(src) // 10)
        n_valid = min(HELD_OUT["valid"], len(src) // 10)
        parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
        counts[lang] = {}
        for part, idx in parts.items():
            idx = sorted(idx)  # keep the corpus order inside each split
            for side, lines in ((lang, src), ("en_XX", tgt)):
                (raw / f"{part}.{name}.{side}").write_text("".join(lines[i] + "\n" for i in idx), encoding="utf-8")
            counts[lang][part] = len(idx)
    done.write_text(json.dumps({"seed": seed, "counts": counts}, indent=1))
    return json.loads(done.read_text())
