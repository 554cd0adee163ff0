"""Moved to ``nmt.vocab``; this name stays for the callers not moved yet."""
from nmt.vocab import SubwordCodec

__all__ = ["SubwordCodec"]
