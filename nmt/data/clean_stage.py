"""Stage 1 of ``nmt prepare``, streaming: raw corpora -> ``clean/``, in bounded memory.

1. Evaluation text: the given validation and test corpora of every pair are
   normalised and written out; the 64-bit keys of their lines (and of the lines
   of ``--eval-set`` files) are kept.
2. Training text, one pass: the parent process reads every training corpus in
   chunks of ``chunk_lines`` line pairs and hands them to the worker pool
   (chunks of all pairs, so several pairs and the chunks of one large pair are
   cleaned at the same time). Results come back in submission order; the parent
   drops exact duplicates on pair keys (:class:`nmt.data.dedup.KeySet`, first
   occurrence wins), appends the kept pairs to a scratch file per pair, and
   keeps a reservoir sample of ``valid_size`` pairs for a held-out validation split.
3. The held-out validation pairs are chosen, per pair.
4. Per pair (in the pool), the scratch file is filtered: held-out pairs, pairs whose
   source or target key is an evaluation key, and pairs repeating a line held out for
   *this* pair's validation are removed. A line held out in one pair stays in the
   other pairs' training data (before, it was removed from all of them: 3.0% of the
   training pairs of ml50-mini, whose English sides overlap across pairs). Validation
   only picks checkpoints; given validation and test sets and ``--eval-set`` files are
   still removed from every pair.

Romanization (``--romanize``): in phases 1 and 2, after normalising and filtering, the
romanized languages' text is written in Latin letters (``nmt.romanize``); a pair that
becomes empty is dropped (counted as ``empty``). Every key is that of the native text,
so evaluation sets match in the script they are written in, and the output of the
other languages is what it would be without romanization.

At most ``2 * workers + 2`` chunks are in flight, so memory depends on the chunk
size, the number of workers and ``valid_size``, plus 8 bytes per distinct
training pair of the pairs being read (the dedup keys), never on text volume.
The output is the same for any chunk size and number of workers.
"""
from __future__ import annotations

import collections
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from nmt.data import clean as cleaning
from nmt.data import dedup, readers
from nmt.data.corpus import PairData
from nmt.data.sample import Reservoir
from nmt.errors import NmtError
from nmt.fileio import atomic_open
from nmt.romanize import Romanization, load as load_romanizer, romanize_lines
from nmt.workers import worker_pool

log = logging.getLogger("nmt.prepare")

SCRATCH = ".streams"


def _decode_pair(chunk_a, chunk_b, corpus, first_line: int, on_bad_utf8: str):
    paths = corpus.paths()
    src, _ = readers.decode(chunk_a, paths[0], first_line, on_bad_utf8)
    tgt, _ = readers.decode(chunk_b, paths[-1], first_line, on_bad_utf8)
    return src, tgt


def _romanized(xs: list, ys: list, a: str, b: str, romanization: Romanization) -> tuple[list, list, np.ndarray]:
    """The sides of the romanized languages in Latin letters; the mask of the pairs still non-empty."""
    out = []
    for lines, lang in ((xs, a), (ys, b)):
        out.append(romanize_lines(lines, lang) if romanization.source(lang) else lines)
    keep = np.fromiter((bool(x and y) for x, y in zip(*out)), dtype=bool, count=len(xs))
    return out[0], out[1], keep


def _clean_chunk(a: str, b: str, chunk_a, chunk_b, corpus, first_line: int, filters, on_bad_utf8: str,
                 romanization: Romanization = Romanization()) -> dict:
    """Worker: decode, normalise, filter (and romanize) one chunk; keys for dedup and overlap.

    The keys are those of the normalised native text, before romanization: evaluation sets
    (--eval-set) and a pair's given valid/test text are matched in the script they are written in."""
    src, tgt = _decode_pair(chunk_a, chunk_b, corpus, first_line, on_bad_utf8)
    counts = cleaning.FilterCounts()
    kept = list(cleaning.clean_pairs(src, tgt, a, b, filters, counts))
    xs = [x for x, _ in kept]
    ys = [y for _, y in kept]
    keys = dedup.pair_keys(xs, ys)
    line_keys = np.stack([dedup.line_keys(xs), dedup.line_keys(ys)], axis=1).reshape(-1, 2)
    result = {"counts": counts}
    if romanization.source(a) or romanization.source(b):
        load_romanizer()
        t0 = time.process_time()
        rx, ry, keep = _romanized(xs, ys, a, b, romanization)
        result["romanized"] = (len(xs), time.process_time() - t0)  # the worker's CPU time
        counts.dropped["empty"] += int(len(keep) - keep.sum())
        index = np.flatnonzero(keep)
        xs, ys = [rx[i] for i in index], [ry[i] for i in index]
        keys, line_keys = keys[index], line_keys[index]
    return {**result, "src": xs, "tgt": ys, "keys": keys, "line_keys": line_keys}


class _PairStream:
    """The parent's state for one pair while its training chunks come back."""

    def __init__(self, pair: PairData, scratch: Path, valid_size: int, seed: int, hold_out: bool):
        self.pair = pair
        self.keys = dedup.KeySet()
        self.counts = cleaning.FilterCounts()
        self.kept = 0
        self.romanized = (0, 0.0)  # lines romanized, worker CPU seconds spent on it
        self.reservoir = Reservoir(valid_size if hold_out else 0, f"{seed}:{pair.name}")
        self.base = scratch / pair.key
        self.src = open(f"{self.base}.src", "w", encoding="utf-8", newline="\n")
        self.tgt = open(f"{self.base}.tgt", "w", encoding="utf-8", newline="\n")
        self.hashes = open(f"{self.base}.keys", "wb")

    def add(self, result: dict) -> None:
        self.counts.add(result["counts"])
        if "romanized" in result:
            self.romanized = (self.romanized[0] + result["romanized"][0], self.romanized[1] + result["romanized"][1])
        first = self.keys.first_occurrences(result["keys"])
        self.counts.dropped["duplicate"] += int(len(first) - first.sum())
        index = np.flatnonzero(first)
        src = [result["src"][i] for i in index]
        tgt = [result["tgt"][i] for i in index]
        if src:
            self.src.write("\n".join(src) + "\n")
            self.tgt.write("\n".join(tgt) + "\n")
            line_keys = result["line_keys"][index]
            line_keys.tofile(self.hashes)
            # the line keys go with a pair into the reservoir: a held-out pair's keys are its native text's
            self.reservoir.offer([(x, y, *k) for x, y, k in zip(src, tgt, line_keys.tolist())])
        self.kept += len(src)

    def close(self) -> None:
        for handle in (self.src, self.tgt, self.hashes):
            handle.close()
        self.keys = None


def _train_jobs(pairs: list[PairData], size: int):
    for pair in pairs:
        if not pair.splits["train"]:
            raise NmtError(f"{'synthetic direction' if pair.synthetic else 'pair'} {pair.name} has no training corpus")
        for corpus in pair.splits["train"]:
            first_line = 1
            for chunk_a, chunk_b in readers.iter_pair_chunks(corpus, size):
                yield pair, (pair.src, pair.tgt, chunk_a, chunk_b, corpus, first_line)
                first_line += len(chunk_a)
        yield pair, None  # end of this pair


def _read_train(pool, workers: int, cfg, pairs: list[PairData], scratch: Path, hold_out: dict) -> dict:
    """Phase 2: every training chunk through the pool, consumed in order."""
    streams: dict[str, _PairStream] = {}
    done: dict[str, _PairStream] = {}
    pending: collections.deque = collections.deque()

    def consume_one() -> None:
        pair, future = pending.popleft()
        if future is None:
            stream = streams.pop(pair.key)
            stream.close()
            done[pair.key] = stream
            return
        streams[pair.key].add(future.result())

    for pair, job in _train_jobs(pairs, cfg.chunk_lines):
        if pair.key not in streams and pair.key not in done:
            streams[pair.key] = _PairStream(pair, scratch, cfg.valid_size, cfg.seed, hold_out[pair.key])
        future = None if job is None else pool.submit(_clean_chunk, *job, cfg.filters, cfg.on_bad_utf8,
                                                      cfg.romanize)
        pending.append((pair, future))
        while len(pending) > 2 * workers + 2:
            consume_one()
    while pending:
        consume_one()
    return done


def _write_eval_split(pair: PairData, split: str, out: Path, cfg, keys: list) -> int:
    """Phase 1: a given validation/test split, normalised, empty pairs dropped."""
    if not pair.splits[split]:
        return 0
    a, b = pair.src, pair.tgt
    n = 0
    with atomic_open(out / f"{split}.{pair.name}.{a}") as out_a, atomic_open(out / f"{split}.{pair.name}.{b}") as out_b:
        for corpus in pair.splits[split]:
            first_line = 1
            for chunk_a, chunk_b in readers.iter_pair_chunks(corpus, cfg.chunk_lines):
                src, tgt = _decode_pair(chunk_a, chunk_b, corpus, first_line, cfg.on_bad_utf8)
                first_line += len(chunk_a)
                rows = []
                for x, y in zip(src, tgt):
                    if x is None or y is None:
                        continue
                    x = cleaning.normalize(x, cfg.filters.normalization)
                    y = cleaning.normalize(y, cfg.filters.normalization)
                    if x and y:
                        rows.append((x, y))
                xs, ys = [row[0] for row in rows], [row[1] for row in rows]
                keys += [dedup.line_keys(xs), dedup.line_keys(ys)]  # of the native text (see _clean_chunk)
                rx, ry, keep = _romanized(xs, ys, a, b, cfg.romanize)
                index = np.flatnonzero(keep)
                for handle, lines in ((out_a, rx), (out_b, ry)):
                    if len(index):
                        handle.write("\n".join(lines[i] for i in index) + "\n")
                n += len(index)
    if n == 0:  # as before: no file for an empty split
        (out / f"{split}.{pair.name}.{a}").unlink()
        (out / f"{split}.{pair.name}.{b}").unlink()
    return n


def _eval_set_keys(paths, normalization: str, size: int) -> np.ndarray:
    files = []
    for path in paths:
        path = Path(path)
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    keys = []
    for file in files:
        for chunk in readers.iter_chunks(file, size):
            lines, _ = readers.decode(chunk, file, 1, on_bad_utf8="skip")
            keys.append(dedup.line_keys([x for x in (cleaning.normalize(x, normalization)
                                                     for x in lines if x is not None) if x]))
    return dedup.sorted_unique(keys)


def _hold_out(stream: _PairStream, cfg, out: Path, keys: list) -> tuple[np.ndarray, int]:
    """Phase 3: choose the held-out validation pairs, write them, return their indices; their line
    keys are appended to ``keys`` (the pair's own)."""
    name = stream.pair.name
    n_valid = min(cfg.valid_size, stream.kept // 10)
    if n_valid < 1:
        raise NmtError(f"pair {name} has only {stream.kept} clean training pairs: too few to hold "
                       "out a validation split; add a valid.* corpus")
    chosen = sorted(stream.reservoir.rng.sample(stream.reservoir.sample(), n_valid), key=lambda row: row[0])
    rows = [row for _, row in chosen]
    for side, lang in enumerate((stream.pair.src, stream.pair.tgt)):
        with atomic_open(out / f"valid.{name}.{lang}") as handle:
            handle.write("\n".join(row[side] for row in rows) + "\n")
        keys.append(np.array([row[2 + side] for row in rows], dtype=np.uint64))
    return np.array([i for i, _ in chosen], dtype=np.int64), n_valid


def _finish_train(base: str, out_a: Path, out_b: Path, held: np.ndarray, eval_keys: np.ndarray,
                  size: int) -> tuple[int, int]:
    """Worker, phase 4: scratch file -> final training files; returns (kept, dropped for overlap)."""
    kept = overlap = 0
    position = 0
    with open(f"{base}.keys", "rb") as hashes, atomic_open(out_a, "wb") as file_a, atomic_open(out_b, "wb") as file_b:
        chunks_a = readers.iter_chunks(f"{base}.src", size)
        chunks_b = readers.iter_chunks(f"{base}.tgt", size)
        for chunk_a, chunk_b in zip(chunks_a, chunks_b):
            n = len(chunk_a)
            keys = np.fromfile(hashes, dtype=np.uint64, count=2 * n).reshape(n, 2)
            index = np.arange(position, position + n)
            keep = ~np.isin(index, held, assume_unique=True)
            overlapping = dedup.contains(eval_keys, keys[:, 0]) | dedup.contains(eval_keys, keys[:, 1])
            overlap += int((keep & overlapping).sum())
            keep &= ~overlapping
            for lines, handle in ((chunk_a, file_a), (chunk_b, file_b)):
                selected = [lines[i] for i in np.flatnonzero(keep)]
                if selected:
                    handle.write(b"\n".join(selected) + b"\n")
            kept += int(keep.sum())
            position += n
    return kept, overlap


def synthetic_path(out: Path, name: str, lang: str) -> Path:
    """The cleaned training text of a direction's synthetic corpora, under ``clean/``."""
    return out / "synthetic" / f"train.{name}.{lang}"


def stage_clean(cfg, pairs: dict[str, PairData], out: Path, synthetic: dict[str, PairData] | None = None) -> dict:
    """Clean the real pairs and the synthetic corpora (one stream per direction, no held-out split)."""
    pair_list = [pairs[name] for name in sorted(pairs)]
    synthetic_list = [synthetic[name] for name in sorted(synthetic or {})]
    streams_in = pair_list + synthetic_list
    scratch = out / SCRATCH
    scratch.mkdir()
    if cfg.romanize:
        load_romanizer()  # once, here: the forked workers inherit it
    if synthetic_list:
        (out / "synthetic").mkdir()
    eval_keys: list = [_eval_set_keys(cfg.eval_sets, cfg.filters.normalization, cfg.chunk_lines)]
    given = {p.name: {split: _write_eval_split(p, split, out, cfg, eval_keys) for split in ("valid", "test")}
             for p in pair_list}
    hold_out = {p.key: not p.synthetic and not p.splits["valid"] for p in streams_in}
    workers = max(1, cfg.n_workers)
    with worker_pool(workers) as pool:
        streams = _read_train(pool, workers, cfg, streams_in, scratch, hold_out)
        held, own_keys = {}, {}
        for pair in streams_in:
            stream = streams[pair.key]
            if stream.kept == 0:
                raise NmtError(
                    f"all {stream.counts.read} training pairs of {'synthetic ' if pair.synthetic else ''}"
                    f"{pair.name} were filtered out ({json.dumps(stream.counts.dropped)}); check the data or "
                    "relax the filters")
            own_keys[pair.key] = []
            if hold_out[pair.key]:
                held[pair.key], given[pair.name]["valid"] = _hold_out(stream, cfg, out, own_keys[pair.key])
            else:
                held[pair.key] = np.zeros(0, dtype=np.int64)
        all_eval = dedup.sorted_unique(eval_keys)
        removed = {p.key: dedup.sorted_unique(eval_keys + own_keys[p.key]) if own_keys[p.key] else all_eval
                   for p in streams_in}

        def output(pair: PairData, lang: str) -> Path:
            return synthetic_path(out, pair.name, lang) if pair.synthetic else out / f"train.{pair.name}.{lang}"

        futures = {p.key: pool.submit(_finish_train, str(streams[p.key].base), output(p, p.src), output(p, p.tgt),
                                      held[p.key], removed[p.key], cfg.chunk_lines)
                   for p in streams_in}
        info = {"pairs": {}}
        for pair in streams_in:
            kept, overlap = futures[pair.key].result()
            counts = streams[pair.key].counts
            counts.dropped["eval_overlap"] = overlap
            counts.kept = kept
            if not kept:
                raise NmtError(f"no training pairs of {'synthetic ' if pair.synthetic else ''}{pair.name} are "
                               "left after removing evaluation overlap")
            lines, seconds = streams[pair.key].romanized
            if lines:
                info.setdefault("romanized", {})[pair.key] = {"lines": lines, "cpu_seconds": round(seconds, 3)}
            if pair.synthetic:
                info.setdefault("synthetic", {})[pair.name] = {"train": counts.as_dict(), "kind": pair.kind,
                                                               "tag": pair.tag}
                continue
            info["pairs"][pair.name] = {
                "train": counts.as_dict(),
                "valid": {"lines": given[pair.name]["valid"],
                          "source": f"held out from train (seed {cfg.seed})" if hold_out[pair.name] else "given"},
                "test": {"lines": given[pair.name]["test"]},
            }
            if cfg.filters.lid:
                summary = cleaning.lid_summary(pair.src, pair.tgt, cfg.filters)
                info["pairs"][pair.name]["lid"] = summary
                if summary["not_judged"]:
                    log.warning("language-ID filter, %s: %s", pair.name, summary["note"])
    shutil.rmtree(scratch)
    info["eval_overlap_lines"] = len(all_eval)
    info["held_out_removed_from"] = "own pair"
    return info
