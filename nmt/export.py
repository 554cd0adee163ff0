"""``nmt export`` (CTranslate2 conversion into the bundle) and ``nmt average``.

A CTranslate2 export lives in ``BUNDLE/ctranslate2-{quantization}/`` with an
``nmt_export.json`` that records which checkpoint it was made from; the bundle
(``nmt.bundle.Bundle``) answers which exports it has and whether they are current.
"""
from __future__ import annotations

import time
from pathlib import Path

from nmt.bundle import EXPORT_RECORD, QUANTIZATIONS, Bundle
from nmt.errors import NmtError
from nmt.fairseq_backend.checkpoints import average, convert_to_ctranslate2
from nmt.fileio import replace_dir, sha256_file, write_json
from nmt.translate.shortlist import SHORTLIST_DIR, build_shortlists, write_shortlists


def export_ctranslate2(model, quantization: str = "int8", force: bool = False, shortlist=None,
                       shortlist_options=None) -> Path:
    """Convert the bundle's checkpoint into ``BUNDLE/ctranslate2-{quantization}``; with
    ``shortlist`` (a data directory of ``nmt prepare``), also build vocabulary shortlists
    from its training bitext (``nmt.translate.shortlist``)."""
    if quantization not in QUANTIZATIONS:
        raise NmtError(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    bundle = Bundle.load(model)
    out = bundle.export_dir(quantization)
    if out.exists() and not force:
        raise NmtError(f"{out} exists; pass --force to replace it")
    maps = None
    if shortlist is not None:  # before the conversion: bad data fails fast
        maps, summary = build_shortlists(bundle, shortlist, shortlist_options)
    tmp, info = convert_to_ctranslate2(bundle.checkpoint_path, bundle.dict_path, bundle.languages,
                                       bundle.lang_tok_style, out, quantization)
    import ctranslate2

    if maps is not None:
        write_shortlists(maps, tmp / SHORTLIST_DIR)
        info["shortlist"] = summary
    write_json(tmp / EXPORT_RECORD, {"quantization": quantization, "ctranslate2_version": ctranslate2.__version__,
                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **bundle.checkpoint_stamp(),
                                     "sha256": sha256_file(bundle.checkpoint_path), **info})
    replace_dir(tmp, out)
    return out


def average_last(model, last: int = 5, output: str | None = None, make_default: bool = False) -> Path:
    """Average the weights of the last ``last`` numbered checkpoints into ``output`` (default
    checkpoints/checkpoint_avgN.pt); ``make_default``: the bundle translates with it from now on."""
    if last < 2:
        raise NmtError(f"--last must be at least 2 (checkpoints to average), got {last}")
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
