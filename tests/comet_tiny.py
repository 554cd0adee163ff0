"""Build a tiny COMET regression model offline, for tests of the COMET plumbing.

Nothing is downloaded: a sentencepiece model is trained on local text and turned
into an ``XLMRobertaTokenizerFast``; a tiny random XLM-R encoder (2 layers, 32
dims) is saved next to it; a ``comet.models.RegressionMetric`` is built on that
encoder and saved in COMET's on-disk layout::

    OUT/model/hparams.yaml
    OUT/model/checkpoints/model.ckpt
    OUT/model/encoder/            tokenizer + config.json (no weights: the
                                  checkpoint holds them)

``kind="qe"`` builds a reference-free model the way COMET-Kiwi is one: a
``comet.models.UnifiedMetric`` whose inputs are only the translation and the
source (``input_segments: [mt, src]``), for QE reranking.

The weights are random and never trained: the scores mean nothing and must
never be reported as quality. Tests use it only to check that scoring,
batching, caching and signatures work with a real COMET model class.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def build_tiny_comet(out: Path, text_files, kind: str = "regression") -> Path:
    """Write a tiny COMET model under ``out`` (``kind``: "regression" or "qe"); returns the model directory."""
    import sentencepiece as spm
    import torch
    import yaml
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    out = Path(out)
    model_dir = out / "model"
    encoder_dir = model_dir / "encoder"
    (model_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    encoder_dir.mkdir(parents=True, exist_ok=True)

    # 1) tokenizer: sentencepiece trained on real local text (all languages of the sample)
    rng = random.Random(0)
    lines = []
    for path in text_files:
        lines += Path(path).read_text(encoding="utf-8").splitlines()[:400]
    rng.shuffle(lines)
    corpus = out / "spm_corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out / "sentencepiece.bpe"), vocab_size=2000, model_type="unigram",
        character_coverage=0.995, hard_vocab_limit=False, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1,
        minloglevel=2, num_threads=2)
    tokenizer = XLMRobertaTokenizerFast(vocab_file=str(out / "sentencepiece.bpe.model"))
    tokenizer.save_pretrained(encoder_dir)

    # 2) tiny encoder config (weights are created by COMET from the config and kept in the checkpoint)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=514, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              type_vocab_size=1)
    config.save_pretrained(encoder_dir)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(encoder_dir)  # removed below

    # 3) the COMET model on that encoder, saved like a hub COMET model
    from comet.models import RegressionMetric, UnifiedMetric

    torch.manual_seed(0)
    common = dict(encoder_model="XLM-RoBERTa", pretrained_model=str(encoder_dir), local_files_only=True,
                  load_pretrained_weights=True, hidden_sizes=[32], layer_transformation="softmax", layer_norm=True,
                  batch_size=8, nr_frozen_epochs=0.0, keep_embeddings_frozen=False)
    if kind == "qe":  # COMET-Kiwi's shape: a unified model that reads only the translation and the source
        model = UnifiedMetric(sent_layer="mix", word_layer=1, input_segments=["mt", "src"], **common)
    else:
        model = RegressionMetric(layer="mix", pool="avg", **common)
    hparams = dict(model.hparams)
    hparams["pretrained_model"] = "encoder"  # informational; loading passes the real local path
    hparams["load_pretrained_weights"] = False
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams,
                "pytorch-lightning_version": __import__("pytorch_lightning").__version__},
               model_dir / "checkpoints" / "model.ckpt")
    with open(model_dir / "hparams.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump(hparams, handle)
    (encoder_dir / "model.safetensors").unlink()  # the checkpoint holds the weights
    return model_dir


if __name__ == "__main__":  # python tests/comet_tiny.py OUT_DIR
    import sys

    here = Path(__file__).resolve().parents[1] / "data_prep" / "sample" / "flores200" / "devtest"
    print(build_tiny_comet(Path(sys.argv[1]), sorted(here.glob("*.devtest"))))
