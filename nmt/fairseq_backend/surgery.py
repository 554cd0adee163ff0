"""Reading and editing fairseq checkpoints: architecture flags, vocabulary rows.

Used by mBART fine-tuning (reproduce a pretrained architecture exactly and
explain mismatches), vocabulary trimming and language extension (slice or grow
the embedding and output-projection rows).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from nmt.errors import NmtError
from nmt.fileio import atomic_path

# Architecture fields read from a checkpoint, with the fairseq flag each needs.
_INT_FIELDS = {
    "encoder_embed_dim": "--encoder-embed-dim", "decoder_embed_dim": "--decoder-embed-dim",
    "encoder_ffn_embed_dim": "--encoder-ffn-embed-dim", "decoder_ffn_embed_dim": "--decoder-ffn-embed-dim",
    "encoder_attention_heads": "--encoder-attention-heads", "decoder_attention_heads": "--decoder-attention-heads",
    "encoder_layers": "--encoder-layers", "decoder_layers": "--decoder-layers",
    "max_source_positions": "--max-source-positions", "max_target_positions": "--max-target-positions",
}
_BOOL_FIELDS = {
    "encoder_normalize_before": "--encoder-normalize-before", "decoder_normalize_before": "--decoder-normalize-before",
    "layernorm_embedding": "--layernorm-embedding", "encoder_learned_pos": "--encoder-learned-pos",
    "decoder_learned_pos": "--decoder-learned-pos", "share_all_embeddings": "--share-all-embeddings",
    "share_decoder_input_output_embed": "--share-decoder-input-output-embed",
    "no_scale_embedding": "--no-scale-embedding",
}


def model_namespace(state: dict):
    """The model's settings, whichever way the checkpoint stores them (args or cfg.model)."""
    args = state.get("args")
    if isinstance(args, argparse.Namespace):
        return vars(args)
    cfg = state.get("cfg") or {}
    model = cfg.get("model") if isinstance(cfg, dict) else None
    if isinstance(model, argparse.Namespace):
        return vars(model)
    if isinstance(model, dict):
        return model
    raise NmtError("the checkpoint does not say which architecture it is (no args / cfg.model)")


def architecture(state: dict) -> dict:
    ns = model_namespace(state)
    arch = ns.get("arch") or ns.get("_name")
    if not arch:
        raise NmtError("the checkpoint does not name its architecture (--arch)")
    info = {"arch": arch, "activation_fn": ns.get("activation_fn", "relu")}
    for key in list(_INT_FIELDS) + list(_BOOL_FIELDS):
        if key in ns and ns[key] is not None:
            info[key] = ns[key]
    return info


def arch_args(state: dict) -> list[str]:
    """fairseq-train arguments that rebuild exactly the checkpoint's architecture."""
    info = architecture(state)
    args = ["--arch", info["arch"], "--activation-fn", str(info["activation_fn"])]
    for key, flag in _INT_FIELDS.items():
        if key in info:
            args += [flag, str(int(info[key]))]
    for key, flag in _BOOL_FIELDS.items():
        if info.get(key):
            args.append(flag)
    return args


def embedding_rows(state: dict) -> int:
    weights = state["model"]
    for key in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        if key in weights:
            return int(weights[key].shape[0])
    raise NmtError("the checkpoint has no token embeddings (encoder.embed_tokens.weight)")


VOCAB_KEYS = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight")


def _storage(tensor) -> int:
    """Tensors tied in the model (shared embeddings) share a storage after torch.load."""
    return tensor.untyped_storage().data_ptr()


def remap_vocabulary(state: dict, rows: list, new_rows_init=None) -> dict:
    """Return a copy of ``state`` whose vocabulary tensors take old row ``rows[i]`` as new row ``i``.

    ``rows[i] is None`` makes a new row, filled by ``new_rows_init(old_tensor, i)``.
    Tied tensors (shared embeddings / output projection) stay tied: one new tensor for all of them.
    """
    import torch

    weights = dict(state["model"])
    done: dict = {}
    keep = torch.tensor([r if r is not None else 0 for r in rows], dtype=torch.long)
    for key in VOCAB_KEYS:
        if key not in weights:
            continue
        old = weights[key]
        ptr = _storage(old)
        if ptr not in done:
            new = old.index_select(0, keep).clone()
            for i, r in enumerate(rows):
                if r is None:
                    new[i] = new_rows_init(old, i)
            done[ptr] = new
        weights[key] = done[ptr]
    result = dict(state)
    result["model"] = weights
    result["last_optimizer_state"] = None  # shapes changed: optimizer state is meaningless now
    return result


def parameter_count(state: dict) -> int:
    """Parameters of a checkpoint, counting tied tensors once."""
    seen = set()
    total = 0
    for value in state["model"].values():
        if not hasattr(value, "numel"):
            continue
        ptr = _storage(value)
        if ptr in seen:
            continue
        seen.add(ptr)
        total += value.numel()
    return total


def save_state(state: dict, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def explain_missing_keys(missing, unexpected) -> str:
    """Translate missing / unexpected state-dict keys into the architecture flag that explains them."""
    hints = []
    text = " ".join(list(missing) + list(unexpected))
    if "encoder.layer_norm." in text or "decoder.layer_norm." in text:
        hints.append("--encoder-normalize-before/--decoder-normalize-before differ from the checkpoint")
    if "layernorm_embedding" in text:
        hints.append("--layernorm-embedding differs from the checkpoint")
    if "embed_positions.weight" in text:
        hints.append("learned vs sinusoidal positions differ (--encoder-learned-pos/--decoder-learned-pos)")
    if "output_projection" in text:
        hints.append("embedding sharing differs (--share-all-embeddings/--share-decoder-input-output-embed)")
    if "layers." in text and not hints:
        hints.append("the number of layers differs")
    return "; ".join(hints) or f"missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}"
