"""Streaming `nmt prepare`: bounded memory, output independent of chunking, compressed and TSV inputs."""
import gzip
import lzma
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import zstandard

from conftest import SAMPLE_RAW, TINY_TRAIN, run_nmt, small_raw
from nmt.data.dedup import KeySet, pair_keys
from nmt.data.prepare import PrepareConfig, prepare
from nmt.data.sample import Reservoir
from nmt.data.indexed import read_indexed
from nmt.fairseq_backend import load_state


def _data_files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("stage.json", "manifest.json")}


def scaled_raw(dst: Path, copies: int) -> int:
    """The sample's training data repeated ``copies`` times, every copy's lines made unique by a suffix
    (so nothing is a duplicate); returns the bytes of training text written."""
    dst.mkdir(parents=True)
    written = 0
    for src in sorted(SAMPLE_RAW.iterdir()):
        lines = src.read_text(encoding="utf-8").splitlines()
        if src.name.startswith("train."):
            text = "".join(f"{x} {k}\n" for k in range(copies) for x in lines)
            written += len(text.encode("utf-8"))
        else:
            text = "".join(x + "\n" for x in lines)
        (dst / src.name).write_text(text, encoding="utf-8")
    return written


def _peak_rss_bytes(args) -> int:
    """Largest resident set of any process of an `nmt` run (the command and its workers), from getrusage."""
    probe = ("import resource, subprocess, sys\n"
             "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "nmt.cli", *map(str, args)],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) * 1024


def test_peak_memory_does_not_grow_with_the_corpus(prepared_sample, tmp_path):
    """The old design held every pair's whole corpus in one process (several times its text volume);
    a streaming run's peak must grow by far less than the text added."""
    peaks, text = {}, {}
    for copies in (2, 16):
        raw = tmp_path / f"raw{copies}"
        text[copies] = scaled_raw(raw, copies)
        peaks[copies] = _peak_rss_bytes([
            "prepare", "--raw", raw, "--out", tmp_path / f"out{copies}", "--chunk-lines", 500, "--workers", 2,
            "--spm-model", prepared_sample / "spm" / "spm.model", "--dict", prepared_sample / "spm" / "dict.txt"])
    added_text = text[16] - text[2]
    assert peaks[16] - peaks[2] < added_text / 4, (peaks, added_text)


def test_output_does_not_depend_on_chunk_size_or_workers(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE", "ja_XX"), n=400)
    for side in ("de_DE", "en_XX"):  # duplicates spread over several chunks
        path = raw / f"train.de_DE-en_XX.{side}"
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(lines + lines[::3]) + "\n", encoding="utf-8")
    outputs = []
    for chunk, workers in ((50_000, 2), (7, 2), (64, 2), (7, 1)):
        out = tmp_path / f"out{chunk}-{workers}"
        prepare(PrepareConfig(out=str(out), raw=[str(raw)], vocab_size=1000, valid_size=20, chunk_lines=chunk,
                              workers=workers))
        outputs.append(out)
    first = _data_files(outputs[0])
    for out in outputs[1:3]:
        assert _data_files(out) == first
    # (sentencepiece's trainer, given another thread count, may build another model; the text may not differ)
    assert _data_files(outputs[3] / "clean") == _data_files(outputs[0] / "clean")
    manifest = (outputs[0] / "manifest.json").read_text()
    assert '"duplicate": 134' in manifest  # the 134 repeated pairs, found across chunk boundaries too


def test_compressed_and_tsv_inputs_give_the_same_data(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE", "ja_XX"), n=300)
    packed = tmp_path / "packed"
    packed.mkdir()
    writers = {".gz": gzip.compress, ".xz": lzma.compress, ".zst": zstandard.ZstdCompressor().compress}
    for i, path in enumerate(sorted(raw.iterdir())):
        suffix = list(writers)[i % 3]
        (packed / (path.name + suffix)).write_bytes(writers[suffix](path.read_bytes()))
    settings = dict(vocab_size=800, valid_size=20)
    prepare(PrepareConfig(out=str(tmp_path / "plain"), raw=[str(raw)], **settings))
    prepare(PrepareConfig(out=str(tmp_path / "packed_out"), raw=[str(packed)], **settings))
    assert _data_files(tmp_path / "plain") == _data_files(tmp_path / "packed_out")

    # the same corpora through a manifest: de-en as one gzipped TSV, ja-en as compressed prefixes
    de = (raw / "train.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
    en = (raw / "train.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines()
    tsv = "".join(f"{x}\t{y}\n" for x, y in zip(de, en)).encode("utf-8")
    (tmp_path / "de-en.tsv.gz").write_bytes(gzip.compress(tsv))
    (tmp_path / "corpora.yaml").write_text(
        "pairs:\n"
        "  de_DE-en_XX:\n    train: [{tsv: de-en.tsv.gz}]\n    test: [packed/test.de_DE-en_XX]\n"
        "  ja_XX-en_XX:\n    train: [packed/train.ja_XX-en_XX]\n    test: [packed/test.ja_XX-en_XX]\n")
    prepare(PrepareConfig(out=str(tmp_path / "listed"), manifest=str(tmp_path / "corpora.yaml"), **settings))
    assert _data_files(tmp_path / "plain") == _data_files(tmp_path / "listed")


def test_bad_tsv_and_damaged_archive_are_one_line_errors(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",), n=100)
    (tmp_path / "bad.tsv").write_text("Hallo\tHello\nnur eine Spalte\n", encoding="utf-8")
    (tmp_path / "corpora.yaml").write_text("pairs:\n  de_DE-en_XX:\n    train: [{tsv: bad.tsv}]\n")
    result = run_nmt("prepare", "--manifest", tmp_path / "corpora.yaml", "--out", tmp_path / "o1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("nmt: error: ")
    assert "line 2 has 1 tab-separated fields" in result.stderr
    packed = raw / "train.de_DE-en_XX.de_DE"
    data = gzip.compress(packed.read_bytes())
    packed.unlink()
    (raw / "train.de_DE-en_XX.de_DE.gz").write_bytes(data[: len(data) // 2])  # cut in the middle
    result = run_nmt("prepare", "--raw", raw, "--out", tmp_path / "o2")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "cannot decompress" in result.stderr.strip().splitlines()[-1]


def test_keyset_keeps_first_occurrences_across_calls():
    keys = KeySet()
    rng = np.random.default_rng(0)
    stream = rng.integers(0, 5000, size=20_000).astype(np.uint64)
    masks = [keys.first_occurrences(stream[i:i + 700]) for i in range(0, len(stream), 700)]
    got = np.flatnonzero(np.concatenate(masks))
    _, want = np.unique(stream, return_index=True)
    assert np.array_equal(got, np.sort(want))
    assert len(keys) == len(want) and len(keys.runs) <= int(np.log2(len(want))) + 1
    assert pair_keys(["a b"], ["c"])[0] != pair_keys(["a"], ["b c"])[0]


def test_reservoir_is_uniform_and_independent_of_chunking():
    def draw(seed, chunk):
        reservoir = Reservoir(10, seed)
        for start in range(0, 1000, chunk):
            reservoir.offer(list(range(start, min(start + chunk, 1000))))
        return [i for i, _ in reservoir.sample()]

    assert draw(1, 1000) == draw(1, 3) == draw(1, 97)
    counts = np.zeros(1000)
    for seed in range(600):
        counts[draw(seed, 250)] += 1
    # each item is kept with probability 10/1000: 6 expected per item over 600 draws
    assert counts.mean() == 6
    assert counts[:500].sum() / counts.sum() > 0.45 and counts[:500].sum() / counts.sum() < 0.55


def test_shards_split_the_training_data_round_robin(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",), n=300)
    settings = dict(raw=[str(raw)], vocab_size=800, valid_size=20)
    whole = prepare(PrepareConfig(out=str(tmp_path / "whole"), **settings))
    sharded = prepare(PrepareConfig(out=str(tmp_path / "sharded"), shards=3, **settings))
    assert sharded.shards == 3 and whole.shards == 1
    bin_dir = tmp_path / "sharded" / "bin"
    for lang in ("de_DE", "en_XX"):
        items = read_indexed(tmp_path / "whole" / "bin" / f"train.de_DE-en_XX.{lang}")
        parts = [read_indexed(bin_dir / f"shard{k}" / f"train.de_DE-en_XX.{lang}") for k in range(3)]
        assert [len(p) for p in parts] == [len(items[k::3]) for k in range(3)]
        for k in range(3):
            assert all(np.array_equal(x, y) for x, y in zip(parts[k], items[k::3]))
        for split in ("valid", "test"):  # fairseq reads evaluation data from the first shard only
            assert (bin_dir / "shard0" / f"{split}.de_DE-en_XX.{lang}.idx").is_file()
            assert not (bin_dir / "shard1" / f"{split}.de_DE-en_XX.{lang}.idx").exists()
    for k in range(3):
        assert (bin_dir / f"shard{k}" / "dict.txt").read_bytes() == (bin_dir / "dict.txt").read_bytes()
        assert (bin_dir / f"shard{k}" / "lang_dict.txt").is_file()


def test_training_reads_one_shard_per_epoch_and_resumes_across_shards(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",), n=120)
    data = tmp_path / "data"
    prepare(PrepareConfig(out=str(data), raw=[str(raw)], shards=2, vocab_size=600, valid_size=10))
    sets = TINY_TRAIN + [f"data={data}", "training.max_updates=1000", "training.max_tokens=512",
                         "validation.every_updates=1000", "checkpoint.every_updates=1000", "validation.max_sentences=5"]
    loaded = re.compile(r"(shard\d) train de_DE-en_XX \d+ examples")

    def train(max_epochs):
        args = ["-v", "train", "--output", tmp_path / "run"]
        for setting in sets + [f"training.max_epochs={max_epochs}"]:
            args += ["--set", setting]
        result = run_nmt(*args)
        assert result.returncode == 0, result.stderr[-2000:]
        state = load_state(tmp_path / "run" / "checkpoints" / "checkpoint_last.pt")
        return loaded.findall(result.stderr), state["extra_state"]["train_iterator"]["epoch"], \
            state["optimizer_history"][-1]["num_updates"]

    shards, epoch, updates = train(2)
    assert shards == ["shard0", "shard1"]  # epoch 1 on the first shard, epoch 2 on the second
    assert epoch == 3  # the iterator state points at the epoch to come
    shards, epoch, more = train(3)  # resume: epoch 3 starts over with the first shard
    assert shards == ["shard0"] and epoch == 4 and more > updates
