"""Data: corpus discovery and reading, cleaning, sentencepiece, binarization (``nmt prepare``), ``nmt data get``."""
