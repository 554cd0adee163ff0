"""Run a training command under a CPU-time budget and watch the checkpoints it writes.

The CPU time of a command is that of its whole process tree: every live process's
user + system time (all its threads) plus what its reaped children used, read from
/proc every ``interval`` seconds. Budgets are compared in these CPU-seconds, so a
system that uses more threads or helper processes pays for them.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            out.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return out


def tree_cpu_seconds(root: int) -> float:
    """utime + stime + cutime + cstime over ``root`` and its live descendants."""
    children, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])
        todo.extend(children.get(pid, []))
    return total / TICK


def run_budgeted(cmd, log: Path, budget_s: float | None, watch=None, env=None, cwd=None,
                 interval: float = 1.0, grace_s: float = 600) -> dict:
    """Run ``cmd`` (its own process group), stopping it with SIGTERM once its tree used ``budget_s``
    CPU-seconds (None: let it finish). ``watch(cpu_s)`` is called every interval (e.g. to note new
    checkpoints with the CPU time at which they appeared). Returns cpu_s, wall_s, returncode, stopped."""
    t0 = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
    cpu, stopped, stop_at = 0.0, False, None
    while proc.poll() is None:
        cpu = max(cpu, tree_cpu_seconds(proc.pid))
        if watch is not None:
            watch(cpu)
        if budget_s is not None and cpu >= budget_s and not stopped:
            stopped, stop_at = True, time.monotonic()
            os.killpg(proc.pid, signal.SIGTERM)
        if stopped and time.monotonic() - stop_at > grace_s:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(interval)
    if watch is not None:
        watch(cpu)
    return {"cpu_s": cpu, "wall_s": time.monotonic() - t0, "returncode": proc.returncode, "stopped": stopped}


class CheckpointWatch:
    """Notes each new file matching ``pattern`` in ``directory`` with the CPU time it was first seen at."""

    def __init__(self, directory: Path, pattern: str, record: Path):
        self.directory, self.pattern, self.record = Path(directory), pattern, Path(record)
        self.seen: dict[str, float] = json.loads(self.record.read_text()) if self.record.exists() else {}
        self.offset = max(self.seen.values(), default=0.0)  # a resumed run's CPU time adds to the earlier part

    def __call__(self, cpu: float) -> None:
        if not self.directory.is_dir():
            return
        new = False
        for path in self.directory.glob(self.pattern):
            if path.name not in self.seen:
                self.seen[path.name] = self.offset + cpu
                new = True
        if new:
            self.record.write_text(json.dumps(self.seen, indent=1))
