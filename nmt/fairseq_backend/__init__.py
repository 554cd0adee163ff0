"""The only part of nmt that talks to fairseq.

Everything fairseq-specific lives in this package: building fairseq's
arguments from nmt's typed configs (``training``), the training loop around
fairseq's ``Trainer`` (``loop``; what it takes and returns is typed in
``settings``), generation with fairseq's ``SequenceGenerator`` (``inference``),
checkpoint surgery and conversion, and safe checkpoint loading (here). The rest of nmt never sees an argparse
Namespace or an OmegaConf object.

Checkpoints are always loaded with ``torch.load(weights_only=True)``: only
tensors, plain containers and the classes on the explicit allow-list below
can be unpickled, so a checkpoint cannot run code. fairseq checkpoints pickle
``argparse.Namespace`` inside their config, hence its place on the list.
"""
from __future__ import annotations

import argparse
import os
import pickle

from nmt.errors import NmtError

SAFE_GLOBALS = [argparse.Namespace]
_installed = False


def install_safe_globals() -> None:
    """Allow-list the classes fairseq checkpoints contain (idempotent)."""
    global _installed
    if _installed:
        return
    import torch

    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    _installed = True


def load_state(path: str | os.PathLike) -> dict:
    """Load a checkpoint safely; refuse (one-line error) anything that is not plain data."""
    import torch

    install_safe_globals()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NmtError(f"missing checkpoint {path}") from None
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first if "GLOBAL" in line or "Unsupported" in line), "")
        raise NmtError(
            f"refusing to load {path}: it contains pickled objects outside the allow-list, which "
            f"could run code when loaded ({detail or 'unsafe pickle'}); only load checkpoints you trust "
            "and that hold plain tensors"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise NmtError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                       " (truncated or corrupted?)") from None
    if not isinstance(state, dict) or "model" not in state:
        raise NmtError(f"{path} is not a fairseq checkpoint (no 'model' entry)")
    return state
