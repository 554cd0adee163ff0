"""Data: corpus discovery and reading, cleaning, sentencepiece, binarization (``nmt prepare``), ``nmt data get``."""

# The Unicode normalizations nmt prepare offers, and the default: what nmt prepare applies unless told
# otherwise, and what a prepared-data manifest or a bundle that does not record one is taken to use.
NORMALIZATION_FORMS = ("NFC", "NFKC", "none")
DEFAULT_NORMALIZATION = "NFC"
