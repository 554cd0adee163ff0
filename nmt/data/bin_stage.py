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

import json
import shutil
from pathlib import Path

import numpy as np

from nmt.data import corpus as corpora
from nmt.data import readers
from nmt.data import spm as spm_lib
from nmt.fairseq_backend import binarize


def piece_table(processor, symbols: list[str]) -> np.ndarray:
    """Map every sentencepiece id to its dictionary id (``<unk>`` when the dictionary lacks it)."""
    index = {s: i for i, s in enumerate(symbols)}
    table = np.full(processor.get_piece_size(), binarize.UNK, dtype=np.int64)
    for i in range(processor.get_piece_size()):
        table[i] = index.get(processor.id_to_piece(i), binarize.UNK)
    table[processor.unk_id()] = binarize.UNK
    return table


def binarize_file(processor, table, text_path: Path, prefixes: list[Path], vocab_size: int, threads: int,
                  chunk: int = 20000, progress=None) -> list[dict]:
    """Encode a text file into ``len(prefixes)`` datasets, line ``i`` going to ``prefixes[i % n]``."""
    n = len(prefixes)
    writers = [binarize.IndexedWriter(prefix, vocab_size) for prefix in prefixes]
    stats = [{"lines": 0, "tokens": 0, "unk": 0} for _ in prefixes]
    position = 0
    try:
        for batch in readers.iter_chunks(text_path, chunk):
            batch = [line.decode("utf-8") for line in batch]
            for k in range(n):
                part = batch[(k - position) % n::n]
                if not part:
                    continue
                ids = processor.encode(part, out_type=int, num_threads=threads)
                flat, sizes = binarize.ids_with_eos(ids, table)
                writers[k].add_batch(flat, sizes)
                stats[k]["lines"] += len(part)
                stats[k]["tokens"] += len(flat)
                stats[k]["unk"] += int((flat == binarize.UNK).sum())
            position += len(batch)
            if progress is not None:
                progress.update(len(batch))
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.close()
    return stats


def _write_dictionaries(spm_dir: Path, language_list: list, out: Path) -> None:
    out.mkdir(exist_ok=True)
    shutil.copyfile(spm_dir / "dict.txt", out / "dict.txt")
    for lang in language_list:
        shutil.copyfile(spm_dir / "dict.txt", out / f"dict.{lang}.txt")
    (out / "lang_dict.txt").write_text("".join(f"{lang}\n" for lang in language_list), encoding="utf-8")


def shard_dirs(out: Path, shards: int) -> list[Path]:
    return [out] if shards == 1 else [out / f"shard{k}" for k in range(shards)]


def stage_bin(cfg, clean_dir: Path, spm_dir: Path, language_list: list, pair_names: list, out: Path,
              progress) -> dict:
    processor = spm_lib.load(spm_dir / "spm.model")
    symbols = binarize.read_dictionary(spm_dir / "dict.txt")
    table = piece_table(processor, symbols)
    dirs = shard_dirs(out, cfg.shards)
    for directory in {out, *dirs}:
        _write_dictionaries(spm_dir, language_list, directory)
    clean_pairs = json.loads((clean_dir / "stage.json").read_text())["pairs"]
    total = sum(clean_pairs[name]["train"]["kept"] * 2 for name in pair_names)
    stats: dict = {}
    with progress(total=total, desc="binarize", unit="line") as bar:
        for name in pair_names:
            for split in corpora.SPLITS:
                for lang in name.split("-"):
                    text = clean_dir / f"{split}.{name}.{lang}"
                    if not text.exists():
                        continue
                    targets = dirs if split == "train" else dirs[:1]
                    result = binarize_file(processor, table, text, [d / f"{split}.{name}.{lang}" for d in targets],
                                           len(symbols), cfg.n_workers, chunk=cfg.chunk_lines,
                                           progress=bar if split == "train" else None)
                    total_stats = {key: sum(r[key] for r in result) for key in ("lines", "tokens", "unk")}
                    if len(result) > 1:
                        total_stats["shards"] = result
                    stats.setdefault(name, {}).setdefault(split, {})[lang] = total_stats
    return {"dictionary_size": len(symbols), "languages": language_list,
            "lang_tok_style": cfg.lang_tok_style, "shards": cfg.shards, "files": stats}


def fairseq_data_path(data_dir: Path, manifest: dict) -> str:
    """The data argument for fairseq: ``bin``, or ``bin/shard0:bin/shard1:...`` for sharded data."""
    return ":".join(str(d) for d in shard_dirs(Path(data_dir) / "bin", int(manifest.get("shards", 1))))
