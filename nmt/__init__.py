"""nmt: multilingual neural machine translation, from raw bitext to WMT submission."""

__version__ = "0.1.0"

from nmt.errors import NmtError  # noqa: E402,F401
