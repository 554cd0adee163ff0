"""The checkpoint files of a training run, written so that a kill at any moment loses nothing.

``checkpoint_{update}.pt`` is written to a temporary file, fsynced and renamed;
``checkpoint_best.pt`` and ``checkpoint_last.pt`` are hard links to it renamed
into place (fairseq copies them in place). So every checkpoint file is either
old or new, never truncated, and a full disk is a one-line error with the
previous checkpoints intact.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from nmt.errors import NmtError

LAST = "checkpoint_last.pt"
BEST = "checkpoint_best.pt"


def checkpoint_to_resume(ckpt_cfg) -> Path | None:
    """The file fairseq's ``load_checkpoint`` will read for this run, if any (its own rule:
    ``checkpoint_last.pt`` in the save directory, else ``--finetune-from-model`` on a first launch)."""
    restore = ckpt_cfg.restore_file
    if restore == LAST:
        last = Path(ckpt_cfg.save_dir) / LAST
        if last.is_file():
            return last
        if getattr(ckpt_cfg, "finetune_from_model", None):
            return Path(ckpt_cfg.finetune_from_model)
        return None
    path = Path(restore)
    return path if path.is_file() else None


def store(state: dict, save_dir: Path, update: int, best: bool, keep_last: int) -> Path:
    """Write the checkpoint of ``update``; make it best (when it is, or none exists yet) and last;
    keep the ``keep_last`` newest numbered ones. Returns the path of ``checkpoint_last.pt``."""
    # the new checkpoint first gets its numbered name, then becomes best (if it is), and only
    # then last: a kill in between leaves last at the previous checkpoint, never ahead of best
    numbered = save_dir / f"checkpoint_{update}.pt"
    write_checkpoint(state, numbered)
    if best or not (save_dir / BEST).exists():
        link_replace(numbered, save_dir / BEST)
    link_replace(numbered, save_dir / LAST)
    kept = sorted(save_dir.glob("checkpoint_[0-9]*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for old in kept[:-keep_last]:
        old.unlink(missing_ok=True)
    return save_dir / LAST


def link_replace(src: Path, dst: Path) -> None:
    """Make ``dst`` hold ``src``'s bytes, atomically (hard link when possible, else copy), then rename."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def write_checkpoint(state: dict, path: Path) -> None:
    """Atomic checkpoint write: a temporary file, fsync, rename. A failure (disk full, ...) leaves the
    previous file untouched, removes the partial one and says so in one line."""
    import torch

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        free = shutil.disk_usage(path.parent).free / 2**20
        full = free < 64 or "No space" in str(exc) or getattr(exc, "errno", None) == errno.ENOSPC
        cause = "no space left on device" if full else str(exc).splitlines()[0]
        error = NmtError(f"could not write checkpoint {path} ({cause}; {free:.0f} MiB free); the previous "
                         "checkpoints are intact: free some space and rerun the same command to resume")
        if full:
            error.exit_code = 3
        raise error from None
