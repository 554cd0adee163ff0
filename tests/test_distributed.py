"""Data-parallel training with fairseq's own torch.distributed code: 2 CPU processes, gloo."""
import json
import os
import socket
import subprocess
import sys

from conftest import TINY_TRAIN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_training(prepared_sample, tmp_path):
    port = _free_port()
    out = tmp_path / "ddp"
    procs, logs = [], []
    for rank in (0, 1):
        sets = TINY_TRAIN + [f"data={prepared_sample}", "training.max_updates=24", "validation.every_updates=12",
                             "checkpoint.every_updates=12", "training.threads=1", "distributed.world_size=2",
                             f"distributed.rank={rank}", f"distributed.init_method=tcp://127.0.0.1:{port}"]
        cmd = [sys.executable, "-m", "nmt.cli", "train", "--output", str(out)]
        for item in sets:
            cmd += ["--set", item]
        # output into files, not pipes: a rank blocked on a full pipe nobody reads would stall the other
        # rank in a collective, and this test with it
        logs.append(tmp_path / f"rank{rank}.log")
        with open(logs[-1], "w") as log:
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True,
                                          env={**os.environ, "OMP_NUM_THREADS": "1"}))
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = [(code, log.read_text()) for code, log in zip(codes, logs)]
    for code, err in results:
        assert code == 0, err[-2000:]
    manifest = json.loads((out / "training.json").read_text())
    assert manifest["world_size"] == 2 and manifest["updates"] == 24
    assert (out / "checkpoints" / "checkpoint_last.pt").is_file()
    assert "2 process(es)" in results[0][1]
    # rank 0 stopped at the budget, and rank 1 finished too (a rank stopping at another update would
    # leave the other waiting in a collective until the timeout); fairseq mutes rank 1's logging
    assert "training stopped at update 24: reached max_updates (24)" in results[0][1]
