"""Benchmark: `nmt serve` under concurrent load vs `nmt translate` on the same sentences as one batch job.

    .venv/bin/python benchmarks/bench_serve.py [--model BUNDLE] [--sentences 512] [--clients 16,64]

Without --model, a small-preset model with random weights is built in a temporary directory from
the embedded sample (`nmt prepare`, one update of `nmt train --preset small`, `nmt export` int8):
speed does not depend on the weights. Everything runs on 127.0.0.1, inside a temporary directory.

For each number of concurrent clients and each request size (one sentence, a small batch), every
FLORES-200 devtest sentence is sent exactly once; each client keeps one HTTP connection and sends
its next request when the previous one is answered. Every response is checked against the batch
job's output for the same sentences: the output length cap is per sentence (nmt's default since the
cap stopped depending on the batch), so the outputs must be identical whatever the batching;
`--max-len-a 0 --max-len-b B` gives a fixed cap instead (what this benchmark used before).
"""
import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import BIN, REPO, cpu_seconds, machine, run, update_results  # noqa: E402

SECTION = "Translation server under load (`nmt serve`, FLORES-200 devtest)"


def build_model(work: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import SAMPLE_FLORES, SAMPLE_RAW

    data, bundle = work / "data", work / "small"
    run([BIN / "nmt", "prepare", "--raw", SAMPLE_RAW, "--out", data, "--eval-set", SAMPLE_FLORES, "--vocab-size", 4000,
         "--valid-size", 100])
    run([BIN / "nmt", "train", "--data", data, "--output", bundle, "--set", "model.preset=small", "--set",
         "training.max_updates=1", "--set", "validation.every_updates=1000", "--set", "validation.max_sentences=1",
         "--set", "checkpoint.every_updates=1000"])
    run([BIN / "nmt", "export", "-m", bundle, "--quantization", "int8"])
    return bundle


def machine_cpu_s() -> float:
    """CPU-seconds every process on the machine has used since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def batch_lines(server: "Server") -> tuple[float, float]:
    """(lines, merged decoding calls) so far, from the server's nmt_batch_lines histogram (/metrics)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    found = dict(re.findall(r"^nmt_batch_lines_(sum|count)\{[^}]*\} (\S+)$", text, flags=re.M))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def first_difference(got: str, want: str) -> str:
    """Where two outputs part: the character position and 30 characters of each from there."""
    i = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return f"from character {i}: {got[i:i + 30]!r} vs {want[i:i + 30]!r}"


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Server:
    def __init__(self, args, log_path: Path):
        self.log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen([str(BIN / "nmt"), "serve", "--host", "127.0.0.1", "--port", "0", *map(str, args)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        self.host = self.port = None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise SystemExit(f"nmt serve exited ({self.proc.wait()})")
            self.log.write(line)
            if line.startswith('{"event": "listening"'):
                self.host, port = json.loads(line)["url"].rsplit("/", 1)[1].split(":")
                self.port = int(port)
                break
        if self.port is None:
            self.stop()
            raise SystemExit("nmt serve did not start within 180 s")
        threading.Thread(target=lambda: shutil.copyfileobj(self.proc.stderr, self.log), daemon=True).start()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def load(server: Server, sentences, expected, src, tgt, clients: int, per_request: int, max_seconds: float) -> dict:
    """Send every sentence once, ``per_request`` at a time, from ``clients`` threads; check every response."""
    chunks = [list(range(i, min(i + per_request, len(sentences)))) for i in range(0, len(sentences), per_request)]
    lock = threading.Lock()
    latencies, answered, problems = [], [], []
    deadline = time.monotonic() + max_seconds

    def client():
        conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        while time.monotonic() < deadline:
            with lock:
                if not chunks:
                    break
                chunk = chunks.pop(0)
            body = json.dumps({"texts": [sentences[i] for i in chunk], "source": src, "target": tgt})
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/translate", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = json.loads(response.read())
                status = response.status
            except (OSError, http.client.HTTPException, ValueError) as exc:
                conn.close()
                conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
                status, payload = None, {"error": repr(exc)}
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    problems.append(f"HTTP {status}: {payload.get('error')}")
                    continue
                got = [t["text"] for t in payload["translations"]]
                if len(got) != len(chunk):
                    problems.append(f"sentences {chunk[0]}-{chunk[-1]}: {len(got)} outputs for {len(chunk)} texts")
                    continue
                for i, text in zip(chunk, got):
                    if text != expected[i]:
                        others = [j for j, e in enumerate(expected) if e == text and j != i]
                        kind = f"the output of sentence {others[0]} (misaligned)" if others else \
                            "an output of its own that differs from the batch job's"
                        problems.append(f"sentence {i}: {kind}, {first_difference(text, expected[i])}")
                answered.extend(chunk)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    merged0 = batch_lines(server)
    cpu0 = (machine_cpu_s(), cpu_seconds(server.proc.pid), own_cpu_s())
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    # where the 2 cores went during the row: the server, the client threads, everything else
    machine_s, server_s, client_s = (b - a for a, b in zip(cpu0, (machine_cpu_s(), cpu_seconds(server.proc.pid),
                                                                 own_cpu_s())))
    merged = [b - a for a, b in zip(merged0, batch_lines(server))]
    lost = len(sentences) - len(set(answered))
    duplicated = len(answered) - len(set(answered))
    return {"clients": clients, "per_request": per_request, "rate": len(set(answered)) / wall, "wall": wall,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "requests": len(latencies), "server_cpu_s": server_s, "client_cpu_s": client_s,
            "other_cpu_s": max(0.0, machine_s - server_s - client_s),
            "lines_per_batch": merged[0] / merged[1] if merged[1] else float("nan"), "lost": lost, "duplicated": duplicated, "problems": problems}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle with an int8 CTranslate2 export (default: build one)")
    parser.add_argument("--src", default="en_XX")
    parser.add_argument("--tgt", default="de_DE")
    parser.add_argument("--sentences", type=int, default=512, help="FLORES-200 devtest sentences (the first N)")
    parser.add_argument("--clients", default="16,64")
    parser.add_argument("--batch", type=int, default=4, help="sentences per request in the small-batch runs")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--max-len-a", type=float, default=1.5, help="output cap a * source tokens + b, both sides")
    parser.add_argument("--max-len-b", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=120, help="time limit of each load run")
    parser.add_argument("--baseline-rounds", type=int, default=3,
                        help="runs of the batch job; the server is compared with the fastest")
    parser.add_argument("--flores-dir", type=Path, default=REPO / "data_prep" / "sample" / "flores200" / "devtest")
    parser.add_argument("--label", default="",
                        help="names the model in the RESULTS section and the JSON file (one section per label)")
    args = parser.parse_args()
    from nmt import langs

    args.load_before = os.getloadavg()[0]  # what else ran on the machine just before (1-minute average)

    work = Path(tempfile.mkdtemp(prefix="bench_serve."))
    try:
        bundle = args.model or build_model(work)
        lines = (args.flores_dir / f"{langs.get(args.src).flores}.devtest").read_text(encoding="utf-8").splitlines()
        sentences = lines[:args.sentences]
        src_file, one = work / "src.txt", work / "one.txt"
        src_file.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        one.write_text(sentences[0] + "\n", encoding="utf-8")
        decode = ["--beam", args.beam, "--max-len-a", args.max_len_a, "--max-len-b", args.max_len_b, "--threads", 2]
        translate = [BIN / "nmt", "translate", "-m", bundle, "-s", args.src, "-t", args.tgt, "--backend",
                     "ctranslate2", *decode]
        # the baseline, --baseline-rounds times: its fastest run is the one the server is judged against
        rates, start_ups, expected = [], [], None
        args.batch_cpu_s = args.batch_wall_s = args.batch_other_cpu_s = 0.0
        for _ in range(args.baseline_rounds):
            start_up, _ = run(translate + ["-i", one])
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            before = (machine_cpu_s(), children.ru_utime + children.ru_stime, own_cpu_s())
            batch_time, result = run(translate + ["-i", src_file])
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            batch_cpu = children.ru_utime + children.ru_stime - before[1]
            # what else ran during the batch job (CPU-seconds): the baseline is only as clean as the machine
            args.batch_other_cpu_s += max(0.0, machine_cpu_s() - before[0] - batch_cpu - (own_cpu_s() - before[2]))
            args.batch_cpu_s += batch_cpu
            args.batch_wall_s += batch_time
            outputs = result.stdout.split("\n")[:len(sentences)]
            if expected is not None and outputs != expected:
                raise SystemExit("nmt translate gave different outputs in two runs of the same file")
            expected = outputs
            rates.append(len(sentences) / (batch_time - start_up))
            start_ups.append(start_up)
            print(f"nmt translate: {batch_time:.1f} s, start-up {start_up:.1f} s, {rates[-1]:.1f} sentences/s", flush=True)
        batch_rate, start_up = max(rates), start_ups[rates.index(max(rates))]
        args.batch_rates = rates

        server = Server(["-m", bundle, "--backend", "ctranslate2", "--queue-lines", 8192, "--max-lines", 64,
                         *decode], work / "server.log")
        runs = []
        try:
            load(server, sentences[:16], expected[:16], args.src, args.tgt, 4, 1, args.max_seconds)  # warm-up
            for clients in [int(c) for c in args.clients.split(",")]:
                for per_request in (1, args.batch):
                    runs.append(load(server, sentences, expected, args.src, args.tgt, clients, per_request,
                                     args.max_seconds))
                    r = runs[-1]
                    print(f"{clients} clients x {per_request}: {r['rate']:.1f} sentences/s, p50 {r['p50']:.3f} s, "
                          f"p95 {r['p95']:.3f} s, lost {r['lost']}, problems {len(r['problems'])}", flush=True)
        finally:
            exit_code = server.stop()
        merged = [line for line in (work / "server.log").read_text().splitlines() if line.startswith('{"ts"')]
        report(args, bundle, batch_rate, start_up, runs, exit_code, len(merged))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(args, bundle, batch_rate, start_up, runs, exit_code, logged):
    rows = []
    for r in runs:
        rows.append(f"| {r['clients']} | {r['per_request']} | {r['requests']} | {r['rate']:.1f} | "
                    f"**{r['rate'] / batch_rate:.2f}x** | {r['p50'] * 1000:.0f} | {r['p95'] * 1000:.0f} | "
                    f"{r['p99'] * 1000:.0f} | {r['lines_per_batch']:.1f} | {r['server_cpu_s']:.1f} / {r['client_cpu_s']:.1f} / "
                    f"{r['other_cpu_s']:.1f} | {r['lost']} / {r['duplicated']} / {len(r['problems'])} |")
    clean = all(not r["lost"] and not r["duplicated"] and not r["problems"] for r in runs)
    lowest = min(runs, key=lambda r: r["rate"]) if runs else None
    verdict = "no load run" if lowest is None else (
        f"from {min(r['clients'] for r in runs)} to {max(r['clients'] for r in runs)} clients the lowest ratio is "
        f"{lowest['rate'] / batch_rate:.3f}x the batch job's sentences/s ({lowest['clients']} clients x "
        f"{lowest['per_request']}): {'every row meets' if lowest['rate'] >= 0.8 * batch_rate else 'below'} "
        f"the 0.8x target")
    outcome = ("every response held exactly its own sentences, in order, identical to the batch job" if clean
               else "not every output was identical to the batch job (last column; details below)")
    model = (f"given bundle{f' ({args.label})' if args.label else ''}" if args.model
             else "small preset, random weights (1 update), int8")
    cores = os.cpu_count() or 1
    rows_wall = sum(r["wall"] for r in runs)
    other_rows = sum(r["other_cpu_s"] for r in runs) / max(1e-9, rows_wall * cores)
    other_batch = args.batch_other_cpu_s / max(1e-9, args.batch_wall_s * cores)
    quiet = max(other_rows, other_batch) < 0.05
    niceness = f"nice -n {os.nice(0)} " if os.nice(0) else ""
    command = ("benchmarks/bench_serve.py" + (f" --model {args.model}" if args.model else "")
               + (f" --label {args.label}" if args.label else ""))
    body = f"""
Machine: {machine()}.
Command: `{niceness}.venv/bin/python {command} --sentences {args.sentences} --clients {args.clients}`
({time.strftime('%Y-%m-%d')}). Model: {model}. FLORES-200 devtest {args.src} -> {args.tgt}, the first
{args.sentences} sentences, beam {args.beam}, `--threads 2`, output cap {args.max_len_a:g} x source tokens +
{args.max_len_b} per sentence on both sides (`--max-len-a 0`: a fixed cap). Baseline: `nmt translate` on the same sentences as one file, its start-up
({start_up:.1f} s, a one-line run) subtracted, the fastest of {len(args.batch_rates)} runs
({', '.join(f'{r:.1f}' for r in args.batch_rates)}): **{batch_rate:.1f} sentences/s**. Server: `nmt serve` on
127.0.0.1 (defaults: 5 ms batch window, batches cut as `nmt translate` cuts them, every decoding worker
kept busy); clients are threads in the
benchmark process on the same 2 cores, one keep-alive connection each, each sending its next request when the
previous one is answered; every sentence is sent once per row. Each response is compared with the batch job's
output for its own sentences. Lines / batch: the mean lines per merged decoding call (the server's
`nmt_batch_lines`). CPU-s: where the {cores} cores went during the row (/proc): the server process, the
benchmark's client threads, every other process.

| clients | sentences / request | requests | sentences/s | vs batch job | p50 ms | p95 ms | p99 ms | lines / batch | CPU-s server / clients / other | lost / duplicated / wrong |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|
""" + "\n".join(rows) + f"""

Result: {verdict}; {outcome}. The server stopped on SIGTERM with exit status {exit_code} and wrote {logged}
access-log lines. Other processes used {100 * other_batch:.1f}% of the {cores} cores during the batch-job runs
(their {args.batch_cpu_s:.1f} CPU-s) and {100 * other_rows:.1f}% during the server rows: {'a quiet machine' if quiet
else 'other jobs were running: expect noise'} (load average just before: {args.load_before:.2f}).
""" + "".join(f"\n- {r['clients']} clients x {r['per_request']}: {problem}"
              for r in runs for problem in r["problems"][:5])
    update_results(SECTION + (f", {args.label}" if args.label else ""), body)
    name = f"serve-{args.label or 'small-random'}.json"
    (REPO / "benchmarks" / "results" / name).write_text(json.dumps({
        "machine": machine(), "command": command, "args": {k: str(v) for k, v in vars(args).items()},
        "batch_sentences_per_s": batch_rate, "start_up_s": start_up, "exit_code": exit_code,
        "batch_rates": args.batch_rates, "batch_cpu_s": args.batch_cpu_s, "batch_other_cpu_s": args.batch_other_cpu_s, "quiet": quiet,
        "runs": [{k: v for k, v in r.items() if k != "problems"} | {"problems": r["problems"][:20]} for r in runs]},
        indent=1), encoding="utf-8")
    print(body)


if __name__ == "__main__":
    main()
