"""One-change-at-a-time training experiments behind nmt's CPU defaults (issue 24), collected from their runs.

Each run trained on the quality benchmark's data (``bench_quality_budget.py``'s ml50-mini split:
de_DE and ko_KR <-> en_XX, vocabulary 8,000 unless named) with one thread and a budget of 30 CPU
minutes (``training.max_cpu_minutes=30``), with the command

    nmt train --output RUN --set data=DATA --set training.threads=1 --set training.max_updates=1000000 \\
        --set training.max_cpu_minutes=30 [--set KEY=VALUE ...]

and the settings listed per run. This script reads each run's ``config.yaml``, ``training.json``
and log (validation: the first 200 validation lines per direction, greedy) and writes
``benchmarks/results/cpu_training_experiments.json``:

    python benchmarks/quality/experiments.py RUN_DIR [RUN_DIR ...]

A run directory's log is ``RUN_DIR.log`` (``exp/run.sh``) or ``WORK/logs/NAME-30.log`` (the
benchmark); ``RUN_DIR.time`` (``/usr/bin/time``: wall, user, sys) where it exists.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, machine  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "cpu_training_experiments.json"
VALID = re.compile(r"validation @ (\d+) \| loss ([\d.]+) \| avg chrF ([\d.]+) \| avg BLEU ([\d.]+)")
KEYS = ("preset", "lr", "lr_schedule", "warmup_updates", "lr_decay_share", "final_lr_ratio", "precision",
        "max_tokens", "max_cpu_minutes", "sampling_temperature")


def _log(run: Path) -> Path | None:
    for candidate in (run.parent / f"{run.name}.log", run.parent.parent / "logs" / f"{run.name}.log"):
        if candidate.exists():
            return candidate
    return None


def collect(run: Path) -> dict:
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    flat = {**config.get("model", {}), **config.get("training", {})}
    training = json.loads((run / "training.json").read_text()) if (run / "training.json").exists() else {}
    log = _log(run)
    validations = [dict(update=int(u), loss=float(loss), chrf=float(c), bleu=float(b))
                   for u, loss, c, b in VALID.findall(log.read_text(errors="replace"))] if log else []
    entry = {"settings": {k: flat.get(k) for k in KEYS if k in flat}, "data": config.get("data"),
             "updates": training.get("updates"), "stop_reason": training.get("stop_reason"),
             "cpu_seconds": training.get("cpu_seconds"), "validations": validations}
    timing = run.parent / f"{run.name}.time"
    if timing.exists():
        entry["time"] = timing.read_text().strip()
    return entry


def main() -> None:
    runs = [Path(a) for a in sys.argv[1:]]
    if not runs:
        raise SystemExit(__doc__)
    doc = {"machine": machine(), "command": " ".join(sys.argv), "runs": {r.name: collect(r) for r in runs}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
