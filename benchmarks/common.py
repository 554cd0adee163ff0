"""Helpers shared by the benchmarks: timing, peak memory of child processes, machine description."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NMT_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "RESULTS.md"
PY = sys.executable
BIN = Path(sys.executable).parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import torch

    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def run(cmd, **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}\n{result.stderr[-3000:]}")
    return elapsed, result


def gnu_time(cmd, **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run under /usr/bin/time -v when present: exact peak RSS (MiB) of this command and its children."""
    if not Path("/usr/bin/time").exists():
        raise SystemExit("the benchmarks need GNU time (/usr/bin/time) for peak memory: apt-get install time")
    t0 = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v"] + [str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}\n{result.stderr[-3000:]}")
    peak = 0.0
    for line in result.stderr.splitlines():
        if "Maximum resident set size" in line:
            peak = int(line.split(":")[1]) / 1024
    return elapsed, peak, result


READING = "### Reading"  # a hand-written block at the end of a section: a rerun keeps it below the new table


def update_results(section: str, body: str) -> None:
    """Replace '## section' in RESULTS.md where it stands (or append it), keeping the other sections and
    the section's own hand-written "### Reading" block, which goes back under the new body (its author
    checks it against the new numbers)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    parts = [p.strip("\n") for p in text.split("\n## ")]
    new = f"{section}\n{body.strip()}"
    for i, part in enumerate(parts[1:], 1):
        if part.startswith(section + "\n"):
            at = part.find(f"\n{READING}")
            if at >= 0 and READING not in body:
                new += "\n\n" + part[at:].strip("\n")
            parts[i] = new
            break
    else:
        parts.append(new)
    RESULTS.write_text("\n\n## ".join(parts) + "\n", encoding="utf-8")


def _tree_rss(root: int) -> dict[int, int]:
    """RSS in bytes of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    rss, todo = {}, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            rss[pid] = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return rss


def cpu_seconds(pid: int) -> float:
    """CPU-seconds (user + system) of process ``pid``, all its threads; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def tree_peak(cmd, interval: float = 0.1, **kwargs) -> tuple[float, float, float, float]:
    """Run ``cmd``; return (seconds, peak RSS of the whole process tree in MiB, peak of one process in MiB,
    CPU seconds of the command's own process, without its children, as last sampled).

    The tree's RSS is the sum over the command and every descendant, sampled every ``interval`` s.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    peak_tree = peak_one = 0
    main_cpu = 0.0
    import threading

    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        rss = _tree_rss(proc.pid)
        if rss:
            peak_tree = max(peak_tree, sum(rss.values()))
            peak_one = max(peak_one, max(rss.values()))
            main_cpu = max(main_cpu, cpu_seconds(proc.pid))
        time.sleep(interval)
    reader.join()
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{b''.join(stderr).decode(errors='replace')[-3000:]}")
    return elapsed, peak_tree / 2**20, peak_one / 2**20, main_cpu
