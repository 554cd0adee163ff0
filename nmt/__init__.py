"""nmt: multilingual neural machine translation, from raw bitext to WMT submission."""

__version__ = "0.1.0"

from nmt.errors import NmtError  # noqa: E402,F401


def __getattr__(name):  # lazy: `import nmt` stays cheap, nmt.Translator still works
    if name == "Translator":
        from nmt.translate.translator import Translator

        return Translator
    if name in ("QualityTranslator", "QualityOptions"):  # MBR, reranking, pivoting
        from nmt.translate import quality

        return getattr(quality, name)
    raise AttributeError(name)
