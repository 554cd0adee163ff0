"""Stage 3 of ``nmt prepare``: ``clean/`` text -> fairseq binaries in ``bin/``, streaming.

Each text file is read in chunks, encoded with sentencepiece and appended to an
mmap dataset, so memory depends on the chunk size only.

With ``shards`` > 1 the training data is split into fairseq's sharded layout:
``bin/shard0``, ``bin/shard1``, ... are complete data directories (dictionaries,
``lang_dict.txt``), training line ``i`` of every pair goes to shard ``i mod N``
(so every shard mixes all parts of a corpus), and validation / test data live in
``shard0``, where fairseq reads them. fairseq's multilingual task takes the data
as ``bin/shard0:bin/shard1:...`` and trains epoch ``e`` on shard ``(e - 1) mod N``;
:func:`fairseq_data_path` builds that argument from the manifest.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from nmt.data import corpus as corpora
from nmt.data import readers
from nmt.data.clean_stage import synthetic_path
from nmt.data.indexed import IndexedWriter, ids_with_eos
from nmt.vocab import UNK, load_spm, piece_table, read_dictionary


class _Encoder:
    """Appends text files to ``len(writers)`` datasets, line ``i`` of the stream going to ``writers[i % n]``."""

    def __init__(self, processor, table, prefixes: list[Path], vocab_size: int, threads: int, chunk: int):
        self.processor, self.table, self.threads, self.chunk = processor, table, threads, chunk
        self.writers = [IndexedWriter(prefix, vocab_size) for prefix in prefixes]
        self.stats = [{"lines": 0, "tokens": 0, "unk": 0} for _ in prefixes]
        self.position = 0  # lines written so far, over all appended files

    def append(self, text_path: Path, keep: np.ndarray | None = None, prefix_id: int | None = None,
               progress=None) -> None:
        """Add ``text_path``'s lines (only the 0-based line numbers in sorted ``keep`` when given),
        each preceded by the symbol ``prefix_id`` when given."""
        n = len(self.writers)
        read = 0
        for batch in readers.iter_chunks(text_path, self.chunk):
            count = len(batch)
            if keep is not None:  # the sorted line numbers that fall in this chunk
                lo, hi = np.searchsorted(keep, [read, read + count])
                batch = [batch[i] for i in keep[lo:hi] - read]
            read += count
            batch = [line.decode("utf-8") for line in batch]
            for k in range(n):
                part = batch[(k - self.position) % n::n]
                if not part:
                    continue
                ids = self.processor.encode(part, out_type=int, num_threads=self.threads)
                flat, sizes = ids_with_eos(ids, self.table)
                if prefix_id is not None:
                    flat, sizes = _with_prefix(flat, sizes, prefix_id)
                self.writers[k].add_batch(flat, sizes)
                self.stats[k]["lines"] += len(part)
                self.stats[k]["tokens"] += len(flat)
                self.stats[k]["unk"] += int((flat == UNK).sum())
            self.position += len(batch)
            if progress is not None:
                progress.update(count)

    def abort(self) -> None:
        for writer in self.writers:
            writer.abort()

    def close(self) -> list[dict]:
        for writer in self.writers:
            writer.close()
        return self.stats


def _with_prefix(flat: np.ndarray, sizes: np.ndarray, symbol: int) -> tuple[np.ndarray, np.ndarray]:
    """Every sentence of ``(flat, sizes)`` with ``symbol`` in front."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.insert(flat, starts, symbol), sizes + 1


def binarize_parts(processor, table, parts, prefixes: list[Path], vocab_size: int, threads: int,
                   chunk: int = 20000, progress=None) -> list[dict]:
    """Encode ``parts`` = ``[(text_path, keep, prefix_id), ...]`` one after the other into the datasets."""
    encoder = _Encoder(processor, table, prefixes, vocab_size, threads, chunk)
    try:
        for text_path, keep, prefix_id in parts:
            encoder.append(text_path, keep, prefix_id, progress)
    except BaseException:
        encoder.abort()
        raise
    return encoder.close()


def synthetic_plan(directions, clean_info: dict, synthetic: dict, ratio: float | None, seed: int) -> dict:
    """Per direction with synthetic corpora: how many synthetic pairs to take (``ratio`` x the real pairs
    at most), whether they are tagged, and which pair holds the real data."""
    plan = {}
    pairs = clean_info["pairs"]
    for src, tgt in directions:
        name = f"{src}-{tgt}"
        if name not in synthetic:
            continue
        pair = name if name in pairs else f"{tgt}-{src}"
        replace = synthetic[name].replace_real
        real = 0 if replace else pairs[pair]["train"]["kept"]
        available = clean_info["synthetic"][name]["train"]["kept"]
        take = available if ratio is None or replace else min(available, int(ratio * real))
        plan[name] = {"pair": pair, "real": real, "available": available, "take": take,
                      "ratio": None if replace else ratio, "replace_real": replace,
                      "tag": synthetic[name].tag, "kind": synthetic[name].kind, "seed": seed}
    return plan


def _chosen_lines(item: dict, name: str) -> np.ndarray | None:
    """The synthetic lines taken: all, or a uniform sample fixed by the seed and the direction."""
    if item["take"] >= item["available"]:
        return None
    digest = int.from_bytes(hashlib.sha256(f"{item['seed']}:{name}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(digest)
    return np.sort(rng.choice(item["available"], size=item["take"], replace=False))


def _write_dictionaries(spm_dir: Path, language_list: list, out: Path, tags: list) -> None:
    out.mkdir(exist_ok=True)
    shutil.copyfile(spm_dir / "dict.txt", out / "dict.txt")
    missing = [tag for tag in tags if tag not in read_dictionary(out / "dict.txt")]
    if missing:  # reserved tags go after the subwords (language tokens follow when the model is built)
        with open(out / "dict.txt", "a", encoding="utf-8", newline="\n") as handle:
            handle.write("".join(f"{tag} 1\n" for tag in missing))
    for lang in language_list:
        shutil.copyfile(out / "dict.txt", out / f"dict.{lang}.txt")
    (out / "lang_dict.txt").write_text("".join(f"{lang}\n" for lang in language_list), encoding="utf-8")


def shard_dirs(out: Path, shards: int) -> list[Path]:
    return [out] if shards == 1 else [out / f"shard{k}" for k in range(shards)]


def stage_bin(cfg, clean_dir: Path, spm_dir: Path, language_list: list, pair_names: list, out: Path,
              progress, plan: dict | None = None, tags: list | None = None, directions=None) -> dict:
    """Binarize every pair; a direction with synthetic corpora (``plan``) gets its own training files
    (``train.{src}-{tgt}.*``: the real pairs, then the synthetic ones, tagged or not), and so does the
    other direction of its pair (the real pairs), since fairseq reads ``src-tgt`` files first."""
    plan, tags = plan or {}, tags or []
    wanted = {f"{s}-{t}" for s, t in directions or []}
    processor = load_spm(spm_dir / "spm.model")
    dirs = shard_dirs(out, cfg.shards)
    for directory in {out, *dirs}:
        _write_dictionaries(spm_dir, language_list, directory, tags)
    symbols = read_dictionary(out / "dict.txt")
    table = piece_table(processor, symbols)
    tag_id = symbols.index(tags[0]) if tags else None
    clean_pairs = json.loads((clean_dir / "stage.json").read_text())["pairs"]
    by_pair: dict = {}
    for name, item in plan.items():
        by_pair.setdefault(item["pair"], []).append(name)
    total = sum(clean_pairs[name]["train"]["kept"] * 2 for name in pair_names)
    total += sum(item["available"] * 2 + clean_pairs[item["pair"]]["train"]["kept"] * 2 for item in plan.values())
    stats: dict = {}
    synthetic_counts: dict = {}

    def encode(parts, split: str, file_name: str, bar=None) -> dict:
        targets = dirs if split == "train" else dirs[:1]
        result = binarize_parts(processor, table, parts, [d / file_name for d in targets], len(symbols),
                                cfg.n_workers, chunk=cfg.chunk_lines, progress=bar)
        total_stats = {key: sum(r[key] for r in result) for key in ("lines", "tokens", "unk")}
        if len(result) > 1:
            total_stats["shards"] = result
        return total_stats

    with progress(total=total, desc="binarize", unit="line") as bar:
        for name in pair_names:
            a, b = name.split("-")
            own = by_pair.get(name, [])
            for split in corpora.SPLITS:
                if split == "train" and own:
                    continue  # written per direction below
                for lang in (a, b):
                    text = clean_dir / f"{split}.{name}.{lang}"
                    if text.exists():
                        stats.setdefault(name, {}).setdefault(split, {})[lang] = encode(
                            [(text, None, None)], split, f"{split}.{name}.{lang}", bar if split == "train" else None)
            if not own:
                continue
            used = [d for d in (f"{a}-{b}", f"{b}-{a}") if d in own or d in wanted]
            for direction in used:
                src, tgt = direction.split("-")
                item = plan.get(direction)
                keep = _chosen_lines(item, direction) if item else None
                for lang in (src, tgt):
                    parts = [] if item and item["replace_real"] else [(clean_dir / f"train.{name}.{lang}", None, None)]
                    if item and item["take"]:
                        parts.append((synthetic_path(clean_dir, direction, lang), keep,
                                      tag_id if item["tag"] and lang == src else None))
                    stats.setdefault(direction, {}).setdefault("train", {})[lang] = encode(
                        parts, "train", f"train.{direction}.{lang}", bar)
                if item:
                    synthetic_counts[direction] = {"real": item["real"], "synthetic": item["take"],
                                                   "available": item["available"], "ratio": item["ratio"],
                                                   "kind": item["kind"], "tagged": item["tag"],
                                                   "replace_real": item["replace_real"]}
    info = {"dictionary_size": len(symbols), "languages": language_list,
            "lang_tok_style": cfg.lang_tok_style, "shards": cfg.shards, "files": stats}
    if plan:
        info.update(synthetic=synthetic_counts, tags=tags)
    return info


def fairseq_data_path(data_dir: Path, manifest: dict) -> str:
    """The data argument for fairseq: ``bin``, or ``bin/shard0:bin/shard1:...`` for sharded data."""
    return ":".join(str(d) for d in shard_dirs(Path(data_dir) / "bin", int(manifest.get("shards", 1))))
