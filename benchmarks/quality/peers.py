"""The peer toolkits of the quality-per-budget benchmark: their environments, data, training and decoding.

Each peer lives in its own virtual environment under ``WORK/venvs`` (created here; never an nmt
dependency): Marian through ``pymarian`` 1.12.42 (the Marian C++ trainer and decoder in a wheel),
OpenNMT-py 3.5.1 (its own torch < 2.3). Both train one multilingual model the usual way for them:
all directions concatenated, the target language as a source prefix token (``>>de_DE<<``), one
shared SentencePiece vocabulary and tied embeddings.

Configurations (the documented recipes, with the model shape and batch size set equal to nmt's
so that the toolkits, not the model sizes, are compared; see ``MARIAN`` and ``ONMT``):
- Marian: Helsinki-NLP/OPUS-MT-train ``lib/train.mk`` and ``lib/config.mk`` (the OPUS-MT models):
  transformer, lr 3e-4, 16,000 warm-up updates then inverse-sqrt decay, Adam (0.9, 0.98, 1e-9),
  clip-norm 5, label smoothing 0.1, exponential smoothing, tied embeddings, dropout 0.1,
  ``--transformer-postprocess dan``, max length 500; validation by perplexity.
- OpenNMT-py: its FAQ, "How do I use the Transformer model?" (docs/source/FAQ.md): Adam
  (beta2 0.998), noam decay, learning_rate 2, 8,000 warm-up steps, label smoothing 0.1, dropout 0.1,
  glorot init, sinusoidal positions, token batches, normalization by tokens, no gradient clipping.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PINS = {
    "marian": ["pymarian==1.12.42"],
    # OpenNMT-py 3.5.1 wants torch < 2.3; its torch build needs numpy 1.x
    "onmt": ["opennmt-py==3.5.1", "numpy<2", "sentencepiece<0.2.3"],
}


def venv(work: Path, name: str) -> Path:
    """The peer's virtual environment (created and installed on first use); its python."""
    env = work / "venvs" / name
    python = env / "bin" / "python"
    stamp = env / ".installed"
    if stamp.exists() and stamp.read_text() == json.dumps(PINS[name]):
        return python
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS[name]],
                   check=True)
    stamp.write_text(json.dumps(PINS[name]))
    return python


def directions(pairs: list[str]) -> list[tuple[str, str]]:
    return [d for lang in pairs for d in ((lang, "en_XX"), ("en_XX", lang))]


def tag(lang: str) -> str:
    return f">>{lang}<<"


def concatenated(raw: Path, pairs: list[str], split: str, out: Path) -> tuple[Path, Path]:
    """All directions of a split in one tagged source file and one target file (the peers' input)."""
    src, tgt = out / f"{split}.src", out / f"{split}.tgt"
    if src.exists() and tgt.exists():
        return src, tgt
    out.mkdir(parents=True, exist_ok=True)
    with open(str(src) + ".tmp", "w", encoding="utf-8") as fs, open(str(tgt) + ".tmp", "w", encoding="utf-8") as ft:
        for s, t in directions(pairs):
            lang = s if s != "en_XX" else t
            name = f"{split}.{lang}-en_XX"
            for a, b in zip((raw / f"{name}.{s}").read_text(encoding="utf-8").splitlines(),
                            (raw / f"{name}.{t}").read_text(encoding="utf-8").splitlines()):
                fs.write(f"{tag(t)} {a}\n")
                ft.write(b + "\n")
    os.replace(str(src) + ".tmp", src)
    os.replace(str(tgt) + ".tmp", tgt)
    return src, tgt


# -- Marian ----------------------------------------------------------------------------------

def marian_train_args(shape: dict, data: Path, model_dir: Path, langs: list[str], threads: int,
                      save_freq: int, adapted: dict | None = None) -> list[str]:
    """``marian`` (pymarian's command line) for the OPUS-MT recipe at ``shape``; ``adapted``
    replaces the recipe's schedule (warm-up updates, lr) for the budget-adapted variant."""
    vocab = str(model_dir / "vocab.spm")
    schedule = adapted or {"learn_rate": 3e-4, "warmup": 16000}
    return [
        "--type", "transformer", "--model", str(model_dir / "model.npz"),
        "--train-sets", str(data / "train.src"), str(data / "train.tgt"),
        "--vocabs", vocab, vocab, "--dim-vocabs", str(shape["vocab"]), str(shape["vocab"]),
        "--sentencepiece-options", "--user_defined_symbols=" + ",".join(tag(x) for x in langs),
        "--tied-embeddings-all",
        "--enc-depth", str(shape["encoder_layers"]), "--dec-depth", str(shape["decoder_layers"]),
        "--dim-emb", str(shape["embed_dim"]), "--transformer-dim-ffn", str(shape["ffn_dim"]),
        "--transformer-heads", str(shape["heads"]),
        "--transformer-postprocess-emb", "d", "--transformer-postprocess", "dan",
        "--transformer-dropout", "0.1", "--label-smoothing", "0.1",
        "--learn-rate", str(schedule["learn_rate"]), "--lr-warmup", str(schedule["warmup"]),
        "--lr-decay-inv-sqrt", str(schedule["warmup"]), "--lr-report",
        "--optimizer-params", "0.9", "0.98", "1e-09", "--clip-norm", "5", "--exponential-smoothing",
        "--max-length", "500", "--mini-batch-words", str(shape["batch_tokens"]), "--maxi-batch", "500",
        "--valid-sets", str(data / "valid.src"), str(data / "valid.tgt"), "--valid-metrics", "perplexity",
        "--valid-freq", "1000", "--early-stopping", "10", "--valid-mini-batch", "16",
        "--save-freq", f"{save_freq}u", "--disp-freq", "100", "--cpu-threads", str(threads),
        "--workspace", "2048", "--seed", "1", "--sigterm", "save-and-exit",
        "--log", str(model_dir / "train.log"), "--valid-log", str(model_dir / "valid.log"),
    ]


MARIAN_TRANSLATE = r'''
import sys
from pymarian import Translator
model, vocab, src_path, out_path, threads = sys.argv[1:6]
t = Translator(models=model, vocabs=[vocab, vocab], beam_size=5, normalize=1.0, cpu_threads=int(threads),
               mini_batch=32, maxi_batch=100, max_length=500, max_length_crop=True, quiet=True)
lines = open(src_path, encoding="utf-8").read().splitlines()
out = t.translate(lines)
assert len(out) == len(lines)
open(out_path, "w", encoding="utf-8").write("".join(h.replace("\n", " ") + "\n" for h in out))
'''


# -- OpenNMT-py ------------------------------------------------------------------------------

def onmt_config(shape: dict, data: Path, run: Path, spm: Path, vocab: Path, threads: int, save_steps: int,
                warmup: int, lr_factor: float) -> dict:
    """The FAQ's transformer recipe at ``shape`` (one process on the CPU, no gradient accumulation)."""
    return {
        "save_data": str(run / "data"), "src_vocab": str(vocab), "share_vocab": True,
        "src_subword_model": str(spm), "tgt_subword_model": str(spm),
        "src_seq_length": 500, "tgt_seq_length": 500,
        "data": {
            "train": {"path_src": str(data / "train.src"), "path_tgt": str(data / "train.tgt"),
                      "transforms": ["sentencepiece", "filtertoolong"]},
            "valid": {"path_src": str(data / "valid.src"), "path_tgt": str(data / "valid.tgt"),
                      "transforms": ["sentencepiece", "filtertoolong"]},
        },
        "save_model": str(run / "model"), "save_checkpoint_steps": save_steps, "keep_checkpoint": -1,
        "train_steps": 10_000_000, "valid_steps": 1000, "report_every": 100, "seed": 1,
        "world_size": 1, "gpu_ranks": [], "num_workers": 0,
        "batch_type": "tokens", "batch_size": shape["batch_tokens"], "valid_batch_size": 16,
        "accum_count": [1], "accum_steps": [0], "model_dtype": "fp32",
        "optim": "adam", "adam_beta2": 0.998, "decay_method": "noam", "learning_rate": lr_factor,
        "warmup_steps": warmup, "max_grad_norm": 0, "label_smoothing": 0.1, "param_init": 0,
        "param_init_glorot": True, "normalization": "tokens",
        "encoder_type": "transformer", "decoder_type": "transformer", "position_encoding": True,
        "enc_layers": shape["encoder_layers"], "dec_layers": shape["decoder_layers"], "heads": shape["heads"],
        "hidden_size": shape["embed_dim"], "word_vec_size": shape["embed_dim"], "transformer_ff": shape["ffn_dim"],
        "dropout": [0.1], "attention_dropout": [0.1], "dropout_steps": [0],
        "share_embeddings": True, "share_decoder_embeddings": True,
    }


def noam_factor(peak: float, dim: int, warmup: int) -> float:
    """OpenNMT-py's noam rate peaks at factor * dim^-0.5 * warmup^-0.5: the factor for a given peak."""
    return peak / (dim ** -0.5 * warmup ** -0.5)


# the FAQ recipe's peak rate: factor 2, hidden size 512, 8,000 warm-up steps
ONMT_PEAK = 2 * 512 ** -0.5 * 8000 ** -0.5

SPM_TRAIN = r'''
import sys, sentencepiece as spm
text, prefix, size, symbols = sys.argv[1:5]
spm.SentencePieceTrainer.train(input=text, model_prefix=prefix, vocab_size=int(size), model_type="unigram",
                               user_defined_symbols=symbols.split(","), input_sentence_size=2000000,
                               shuffle_input_sentence=True, num_threads=1)
'''

SPM_APPLY = r'''
import sys, sentencepiece as spm
model, mode, src, out = sys.argv[1:5]
sp = spm.SentencePieceProcessor(model_file=model)
lines = open(src, encoding="utf-8").read().splitlines()
if mode == "encode":
    res = [" ".join(sp.encode(l, out_type=str)) for l in lines]
else:
    res = [sp.decode(l.split()) for l in lines]
open(out, "w", encoding="utf-8").write("".join(r + "\n" for r in res))
'''
