"""Checkpoint utilities: averaging and conversion to CTranslate2."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from nmt import langs
from nmt.errors import NmtError
from nmt.fairseq_backend import install_safe_globals, load_state
from nmt.fileio import atomic_path


def average(paths, output) -> dict:
    """Average the model weights of several checkpoints (same architecture) into ``output``.

    Floating-point tensors are averaged; integer buffers are taken from the last
    checkpoint, as is everything else (config, extra state). Optimizer state is
    dropped: the result is for inference, not for resuming.
    """
    import torch

    if len(paths) < 2:
        raise NmtError(f"averaging needs at least 2 checkpoints, got {len(paths)}")
    total = None
    last = None
    for path in paths:
        state = load_state(path)
        weights = state["model"]
        if total is None:
            total = {k: v.double().clone() if v.is_floating_point() else v for k, v in weights.items()}
        else:
            if set(weights) != set(total):
                raise NmtError(f"{path} has different parameters from {paths[0]}: not the same architecture")
            for key, value in weights.items():
                if value.shape != total[key].shape:
                    raise NmtError(f"{path}: parameter {key} has shape {tuple(value.shape)}, "
                                   f"{paths[0]} has {tuple(total[key].shape)}")
                if value.is_floating_point():
                    total[key] += value.double()
                else:
                    total[key] = value
        last = state
    averaged = {k: (v / len(paths)).to(last["model"][k].dtype) if v.is_floating_point() else v
                for k, v in total.items()}
    result = {key: value for key, value in last.items() if key not in ("last_optimizer_state", "model")}
    result["model"] = averaged
    result["last_optimizer_state"] = None
    result["extra_state"] = {**(last.get("extra_state") or {}), "nmt_averaged_from": [str(p) for p in paths]}
    with atomic_path(output) as tmp:
        torch.save(result, tmp)
    return {"averaged": [str(p) for p in paths], "output": str(output)}


def convert_to_ctranslate2(checkpoint: Path, dict_path: Path, languages, lang_tok_style: str, output: Path,
                           quantization: str = "int8") -> tuple[Path, dict]:
    """Convert a ``translation_multi_simple_epoch`` checkpoint with CTranslate2's fairseq converter.

    Returns the converted model's temporary directory (beside ``output``; the caller
    moves it into place) and facts about the model that the converted files do not
    say (``decoder_embed_dim``).

    The converter rebuilds fairseq's task, which reads ``dict.{lang}.txt`` and the
    language list from a data directory: a temporary one is made from the bundle's
    files. The checkpoint is read with ``weights_only=True`` and the allow-list.
    """
    install_safe_globals()
    state = load_state(checkpoint)  # fails cleanly on a hostile or broken file before the converter sees it
    from nmt.fairseq_backend.surgery import architecture

    info = {k: v for k, v in architecture(state).items() if k == "decoder_embed_dim"}
    del state
    from ctranslate2.converters import FairseqConverter

    with tempfile.TemporaryDirectory(prefix="nmt-ct2-data-") as data_dir:
        data = Path(data_dir)
        for lang in languages:
            shutil.copyfile(dict_path, data / f"dict.{lang}.txt")
        shutil.copyfile(dict_path, data / "dict.txt")
        (data / "lang_dict.txt").write_text("".join(f"{x}\n" for x in languages), encoding="utf-8")
        tmp_out = output.with_name(f".{output.name}.tmp")
        shutil.rmtree(tmp_out, ignore_errors=True)
        converter = FairseqConverter(str(checkpoint), data_dir, source_lang=languages[0],
                                     target_lang=languages[-1] if len(languages) > 1 else languages[0])
        try:
            converter.convert(str(tmp_out), quantization=quantization, force=True)
        except (ValueError, NotImplementedError) as exc:
            shutil.rmtree(tmp_out, ignore_errors=True)
            raise NmtError(f"CTranslate2 cannot convert this model: {str(exc).splitlines()[0]}") from None
        vocab = tmp_out / "shared_vocabulary.json"
        if vocab.is_file():  # sanity: language tokens must be in the converted vocabulary
            import json

            tokens = set(json.loads(vocab.read_text(encoding="utf-8")))
            missing = [x for x in languages if langs.lang_token(x, lang_tok_style) not in tokens]
            if missing:
                shutil.rmtree(tmp_out, ignore_errors=True)
                raise NmtError(f"converted vocabulary lacks language tokens for {', '.join(missing)}")
    return tmp_out, info
