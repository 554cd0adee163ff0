"""``nmt export`` (CTranslate2 conversion into the bundle) and ``nmt average``.

A CTranslate2 export lives in ``BUNDLE/ctranslate2-{quantization}/`` with an
``nmt_export.json`` that records which checkpoint it was made from (path inside
the bundle, size, mtime and SHA-256). ``nmt translate`` uses an export only while
it is current: the bundle's checkpoint is the same file (same size and, when the
modification time differs, e.g. after a copy, the same SHA-256).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fileio import read_json, replace_dir, sha256_file, write_json

# CTranslate2 quantizations, in the order nmt prefers them when a bundle has several exports
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32")


def ctranslate2_dirs(bundle: Bundle) -> dict[str, Path]:
    """Converted CTranslate2 models in a bundle, by quantization, preferred first."""
    found = {}
    for child in bundle.path.glob("ctranslate2-*"):
        if (child / "model.bin").is_file() and (child / "nmt_export.json").is_file():
            found[child.name.split("-", 1)[1]] = child
    rank = {q: i for i, q in enumerate(QUANTIZATIONS)}
    return dict(sorted(found.items(), key=lambda item: rank.get(item[0], len(rank))))


def _stamp(bundle: Bundle) -> dict:
    st = os.stat(bundle.checkpoint_path)
    return {"checkpoint": bundle.checkpoint, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def export_is_current(bundle: Bundle, export_dir: Path) -> bool:
    info = read_json(export_dir / "nmt_export.json")
    if info.get("checkpoint") != bundle.checkpoint or not bundle.checkpoint_path.is_file():
        return False
    now = _stamp(bundle)
    if now["size"] != info.get("size"):
        return False
    return now["mtime_ns"] == info.get("mtime_ns") or sha256_file(bundle.checkpoint_path) == info.get("sha256")


def export_ctranslate2(model, quantization: str = "int8", force: bool = False, shortlist=None,
                       shortlist_options=None) -> Path:
    """Convert the bundle's checkpoint into ``BUNDLE/ctranslate2-{quantization}``; with
    ``shortlist`` (a data directory of ``nmt prepare``), also build vocabulary shortlists
    from its training bitext (``nmt.translate.shortlist``)."""
    from nmt.fairseq_backend.checkpoints import convert_to_ctranslate2

    if quantization not in QUANTIZATIONS:
        raise NmtError(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    bundle = Bundle.load(model)
    out = bundle.path / f"ctranslate2-{quantization}"
    if out.exists() and not force:
        raise NmtError(f"{out} exists; pass --force to replace it")
    maps = None
    if shortlist is not None:  # before the conversion: bad data fails fast
        from nmt.translate.shortlist import build_shortlists

        maps, summary = build_shortlists(bundle, shortlist, shortlist_options)
    tmp, info = convert_to_ctranslate2(bundle.checkpoint_path, bundle.dict_path, bundle.languages,
                                       bundle.lang_tok_style, out, quantization)
    import ctranslate2

    if maps is not None:
        from nmt.translate.shortlist import SHORTLIST_DIR, write_shortlists

        write_shortlists(maps, tmp / SHORTLIST_DIR)
        info["shortlist"] = summary
    write_json(tmp / "nmt_export.json", {"quantization": quantization, "ctranslate2_version": ctranslate2.__version__,
                                         "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **_stamp(bundle),
                                         "sha256": sha256_file(bundle.checkpoint_path), **info})
    replace_dir(tmp, out)
    return out


def average_last(model, last: int, output: str | None = None, make_default: bool = False) -> Path:
    from nmt.fairseq_backend.checkpoints import average

    bundle = Bundle.load(model, need_checkpoint=False)
    ckpt_dir = bundle.path / "checkpoints"
    numbered = sorted(ckpt_dir.glob("checkpoint_[0-9]*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if len(numbered) < last:
        raise NmtError(f"{ckpt_dir} has {len(numbered)} numbered checkpoints, fewer than --last {last}; "
                       "keep more with checkpoint.keep_last")
    target = Path(output) if output else ckpt_dir / f"checkpoint_avg{last}.pt"
    if make_default and not target.resolve().is_relative_to(bundle.path.resolve()):
        raise NmtError(f"--make-default needs the averaged checkpoint inside the bundle, not {target}")
    average(numbered[-last:], target)
    if make_default:
        bundle.checkpoint = str(target.resolve().relative_to(bundle.path.resolve()))
        bundle.save()
    return target
