"""`nmt translate-corpus`: chunked, resumable after SIGKILL, shardable, deterministic merge."""
import json
import time
from pathlib import Path

import pytest

from conftest import SAMPLE_FLORES, killed_at, run_nmt
from nmt.translate.corpus import CorpusJob, translate_corpus
from nmt.translate.backends import DecodeOptions, EngineOptions
from nmt.translate.translator import Translator

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """260 real German lines with an empty line, a line that is not UTF-8 and a NEL inside a line."""
    lines = (SAMPLE_FLORES / "deu_Latn.devtest").read_bytes().splitlines()[:257]
    lines[10] = b""
    lines[20] = b"Ung\xfcltig kodiert"
    lines[30] = "Erste Zeile\u0085zweiter Teil".encode()
    path = tmp_path_factory.mktemp("corpus") / "de.txt"
    path.write_bytes(b"\n".join(lines + [b"Guten Morgen.", b"Danke.", b"Bis bald."]) + b"\n")
    return path


def _args(bundle, corpus, out, *extra):
    return ["translate-corpus", "-m", bundle, "-s", "de_DE", "-t", "en_XX", "-i", corpus, "-o", out,
            "--chunk-lines", "40", "--beam", "1", "--backend", "fairseq", "--threads", "1", *extra]


@pytest.fixture(scope="module")
def reference(trained_bundle, corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "en.txt"
    result = run_nmt(*_args(trained_bundle, corpus, out, "--scores"))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_one_line_out_per_line_in_with_scores(reference, corpus, trained_bundle):
    out = reference.read_text(encoding="utf-8").split("\n")
    assert out[-1] == "" and len(out) - 1 == 260  # 260 lines, each ending in \n, none split
    assert reference.read_text(encoding="utf-8").splitlines() == out[:-1]
    assert out[10] == "" and out[20] == ""  # empty and undecodable lines stay empty lines
    scores = Path(f"{reference}.scores").read_text().splitlines()
    assert len(scores) == 260 and scores[10] == "" and float(scores[0]) < 0
    # chunk by chunk, the same translations as the Python API on the same lines
    translator = Translator(trained_bundle, backend="fairseq", threads=1)
    lines = corpus.read_bytes().split(b"\n")[:-1]
    chunk = [line.decode("utf-8") for line in lines[40:80]]
    expected = [r.text for r in translator.translate(chunk, "de_DE", "en_XX", DecodeOptions(beam=1),
                                                     too_long="truncate")]
    assert out[40:80] == expected


def test_killed_runs_resume_without_redoing_chunks_and_equal_the_uninterrupted_run(
        reference, corpus, trained_bundle, tmp_path):
    out = tmp_path / "en.txt"
    parts = tmp_path / "en.txt.parts"
    pids = tmp_path / "workers.txt"
    # killed when two chunks are done (the others in flight in the two workers)
    killed_at("nmt.translate.corpus:_Progress.update", *_args(trained_bundle, corpus, out, "--scores", "--workers", "2"),
              after=True, nth=2, first=f"import multiprocessing; open({str(pids)!r}, 'w').write(' '.join("
                                        "str(p.pid) for p in multiprocessing.active_children()))")
    workers = [int(pid) for pid in pids.read_text().split()]
    finished = {p.name: p.stat().st_mtime_ns for p in parts.glob("chunk-*")}
    assert len(finished) >= 4 and not out.exists()  # two chunks, each with its scores (and maybe more)
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    assert len(workers) == 2 and not [w for w in workers if Path(f"/proc/{w}").exists()], \
        "workers outlived the killed run"
    result = run_nmt(*_args(trained_bundle, corpus, out, "--scores"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p: parts.joinpath(p).stat().st_mtime_ns for p in finished} == finished  # not redone
    assert out.read_bytes() == reference.read_bytes()
    assert Path(f"{out}.scores").read_bytes() == Path(f"{reference}.scores").read_bytes()


def test_shards_split_the_chunks_and_merge_to_the_same_output(reference, corpus, trained_bundle, tmp_path):
    out = tmp_path / "en.txt"
    first = run_nmt(*_args(trained_bundle, corpus, out, "--scores", "--shard", "2/3"))
    assert first.returncode == 0 and "other shards still to run" in first.stderr and not out.exists()
    merged = run_nmt(*_args(trained_bundle, corpus, out, "--scores", "--merge-only"))
    assert merged.returncode == 2 and "not translated yet" in merged.stderr.strip().splitlines()[-1]
    for shard in ("1/3", "3/3"):
        result = run_nmt(*_args(trained_bundle, corpus, out, "--scores", "--shard", shard))
        assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes() == reference.read_bytes()
    chunks = sorted(p.name for p in (tmp_path / "en.txt.parts").glob("chunk-*.txt"))
    assert len(chunks) == 7  # 260 lines in chunks of 40


def test_a_different_job_in_the_work_directory_is_refused_unless_restarted(corpus, trained_bundle, tmp_path):
    out = tmp_path / "en.txt"
    job = CorpusJob(model=str(trained_bundle), src="de_DE", tgt="en_XX", input=str(corpus), chunk_lines=100,
                    options=DecodeOptions(beam=1), engine=EngineOptions(backend="fairseq", threads=1))
    summary = translate_corpus(job, str(out))
    assert summary.merged and summary.lines == 260 and summary.chunks == summary.chunks_translated == 3
    before = out.read_bytes()
    result = run_nmt(*_args(trained_bundle, corpus, out))  # chunk size 40, not 100
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "another job" in line and "chunk_lines" in line
    assert out.read_bytes() == before
    result = run_nmt(*_args(trained_bundle, corpus, out, "--restart"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "en.txt.parts" / "job.json").read_text())["chunk_lines"] == 40
    for bad, needle in ((["--shard", "3/2"], "--shard"), (["--shard", "x"], "--shard")):
        result = run_nmt(*_args(trained_bundle, corpus, tmp_path / "other.txt", *bad))
        assert result.returncode == 2 and needle in result.stderr.strip().splitlines()[-1]
