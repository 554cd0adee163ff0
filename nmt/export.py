"""``nmt export`` (CTranslate2 conversion into the bundle) and ``nmt average``."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fileio import read_json, write_json


def checkpoint_stamp(path: Path) -> dict:
    st = os.stat(path)
    return {"checkpoint": str(path.name), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def export_ctranslate2(model, quantization: str = "int8", force: bool = False, checkpoint: str | None = None) -> Path:
    from nmt.fairseq_backend.checkpoints import convert_to_ctranslate2

    bundle = Bundle.load(model)
    ckpt = Path(checkpoint) if checkpoint else bundle.checkpoint_path
    out = bundle.path / f"ctranslate2-{quantization}"
    if out.exists() and not force:
        raise NmtError(f"{out} exists; pass --force to replace it")
    tmp = convert_to_ctranslate2(ckpt, bundle.dict_path, bundle.languages, bundle.lang_tok_style, out, quantization)
    import ctranslate2

    write_json(tmp / "nmt_export.json", {"quantization": quantization, "ctranslate2_version": ctranslate2.__version__,
                                         "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **checkpoint_stamp(ckpt)})
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def export_is_current(bundle: Bundle, export_dir: Path) -> bool:
    info = read_json(export_dir / "nmt_export.json")
    ckpt = bundle.path / "checkpoints" / info.get("checkpoint", "")
    if not ckpt.is_file() or ckpt != bundle.checkpoint_path:
        return False
    return checkpoint_stamp(ckpt) == {k: info.get(k) for k in ("checkpoint", "size", "mtime_ns")}


def average_last(model, last: int, output: str | None = None, make_default: bool = False) -> Path:
    from nmt.fairseq_backend.checkpoints import average

    bundle = Bundle.load(model, need_checkpoint=False)
    ckpt_dir = bundle.path / "checkpoints"
    numbered = sorted(ckpt_dir.glob("checkpoint_[0-9]*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if len(numbered) < last:
        raise NmtError(f"{ckpt_dir} has {len(numbered)} numbered checkpoints, fewer than --last {last}; "
                       "keep more with checkpoint.keep_last")
    chosen = numbered[-last:]
    target = Path(output) if output else ckpt_dir / f"checkpoint_avg{last}.pt"
    average(chosen, target)
    if make_default:
        bundle.checkpoint = str(target.resolve().relative_to(bundle.path.resolve()))
        bundle.save()
    return target
