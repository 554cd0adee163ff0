"""``QualityOptions``: how to decode for quality (candidates, MBR, reranking, pivoting).

Declared once here, with their defaults; ``nmt.cli_util.options_from`` builds the
command-line options of every translating command from the fields. What they do is
in ``nmt.translate.quality``.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from nmt.comet import DEFAULT_MODEL
from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions

MBR_UTILITIES = ("chrf", "bleu", "comet")
RERANKERS = ("qe", "builtin")
DEFAULT_CANDIDATES = 8
DEFAULT_QE_MODEL = "Unbabel/wmt22-cometkiwi-da"


def _cli(help_text: str, **extra) -> dict:
    """Field metadata from which ``nmt.cli_util.options_from`` builds the click option."""
    return {"help": help_text, **extra}


@dataclass
class QualityOptions:
    """How to decode for quality; every field is also a command-line option (``--mbr``, ...)."""

    mbr: str | None = field(default=None, metadata=_cli(
        "Minimum Bayes risk decoding: of --candidates per line, keep the one with the highest expected utility "
        "against the others (sentence chrF or BLEU, or COMET with --comet-model).", choices=MBR_UTILITIES))
    rerank: str | None = field(default=None, metadata=_cli(
        "Rerank --candidates: 'qe' with a reference-free COMET model (--qe-model, COMET-Kiwi style); 'builtin' "
        "needs no extra model (the translation model's forward + reverse scores, candidates that are empty, in "
        "another language or of implausible length last).", choices=RERANKERS))
    candidates: int | None = field(default=None, metadata=_cli(
        f"Candidates per line for --mbr/--rerank [default: {DEFAULT_CANDIDATES}]: samples with --sampling, else "
        "beam search's n-best (beam widened to N).", min=1))
    pseudo_refs: int | None = field(default=None, metadata=_cli(
        "MBR: compare each candidate with the first M candidates [default: all].", min=2))
    comet_model: str | None = field(default=None, metadata=_cli(
        f"--mbr comet: COMET model directory (or a hub name in the local Hugging Face cache) [default: "
        f"{DEFAULT_MODEL}]; nothing is downloaded.", metavar="PATH"))
    comet_encoder: str | None = field(default=None, metadata=_cli(
        "Directory with the COMET model's encoder tokenizer and config.json, when it is not next to the model "
        "or in the Hugging Face cache.", metavar="DIR"))
    qe_model: str | None = field(default=None, metadata=_cli(
        f"--rerank qe: reference-free COMET model directory (or hub name in the local cache) [default: "
        f"{DEFAULT_QE_MODEL}].", metavar="PATH"))
    qe_encoder: str | None = field(default=None, metadata=_cli(
        "Directory with the QE model's encoder tokenizer and config.json (as --comet-encoder).", metavar="DIR"))
    comet_batch_size: int = field(default=16, metadata=_cli("Segments per COMET / QE model batch.", min=1))
    comet_gpus: int = field(default=0, metadata=_cli("COMET / QE model on CPU (0) or one GPU (1).", min=0, max=1))
    pivot: str | None = field(default=None, metadata=_cli(
        "Translate through this language (e.g. en_XX): source -> pivot -> target in one call, for pairs the "
        "model never saw; directions from or into it stay direct.", metavar="LANG"))

    @property
    def selecting(self) -> bool:
        return bool(self.mbr or self.rerank)

    @property
    def active(self) -> bool:
        return self.selecting or bool(self.pivot)

    @property
    def n_candidates(self) -> int:
        return (self.candidates or DEFAULT_CANDIDATES) if self.selecting else 1

    def check(self) -> None:
        if self.mbr and self.mbr not in MBR_UTILITIES:
            raise NmtError(f"--mbr {self.mbr!r}: choose one of {', '.join(MBR_UTILITIES)}")
        if self.rerank and self.rerank not in RERANKERS:
            raise NmtError(f"--rerank {self.rerank!r}: choose one of {', '.join(RERANKERS)}")
        if self.mbr and self.rerank:
            raise NmtError("--mbr and --rerank each choose the candidate: give one of them")
        if self.candidates is not None and not self.selecting:
            raise NmtError("--candidates is how many candidates --mbr or --rerank choose from: add one of them")
        if self.candidates is not None and self.candidates < 1:
            raise NmtError(f"--candidates must be >= 1, got {self.candidates}")
        if self.pseudo_refs is not None:
            if not self.mbr:
                raise NmtError("--pseudo-refs is for --mbr")
            if not 2 <= self.pseudo_refs <= self.n_candidates:
                raise NmtError(f"--pseudo-refs must be between 2 and --candidates ({self.n_candidates}), got "
                               f"{self.pseudo_refs}")
        for name, value, needs, wanted in (("--comet-model", self.comet_model, "--mbr comet", self.mbr == "comet"),
                                           ("--comet-encoder", self.comet_encoder, "--mbr comet", self.mbr == "comet"),
                                           ("--qe-model", self.qe_model, "--rerank qe", self.rerank == "qe"),
                                           ("--qe-encoder", self.qe_encoder, "--rerank qe", self.rerank == "qe")):
            if value and not wanted:
                raise NmtError(f"{name} is for {needs}")
        if self.comet_batch_size < 1 or self.comet_gpus not in (0, 1):
            raise NmtError("--comet-batch-size must be >= 1 and --comet-gpus 0 or 1")

    def candidate_options(self, options: DecodeOptions) -> DecodeOptions:
        """The decoding options that give the candidates."""
        n = self.n_candidates
        if options.sampling:
            return dataclasses.replace(options, nbest=n)
        return dataclasses.replace(options, nbest=n, beam=max(options.beam, n))

    def with_values(self, values: dict[str, str]) -> "QualityOptions":
        """A copy with some fields set from text (``{"mbr": "chrf", "candidates": "16"}``)."""
        copy = with_values(self, values)
        copy.check()
        return copy


# the decoding options that one system of nmt evaluate --compare may set for itself (--system-option)
SYSTEM_DECODE_KEYS = ("beam", "len_penalty", "sampling", "sampling_topk", "sampling_topp", "epsilon", "temperature",
                      "seed")


def with_values(obj, values: dict[str, str], keys: tuple | None = None):
    """A copy of the dataclass ``obj`` with the fields named in ``values`` (``pseudo-refs`` or
    ``pseudo_refs``) set from their text, converted to the field's type; ``keys`` limits the fields."""
    hints = typing.get_type_hints(type(obj))
    known = [f.name for f in dataclasses.fields(obj) if keys is None or f.name in keys]
    changes: dict = {}
    for key, text in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise NmtError(f"unknown decoding option {key!r}; known: {', '.join(k.replace('_', '-') for k in known)}")
        kinds = [t for t in typing.get_args(hints[name]) if t is not type(None)] or [hints[name]]
        optional = type(None) in typing.get_args(hints[name])
        if optional and text.lower() in ("", "none"):
            changes[name] = None
        elif kinds[0] is bool:
            if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise NmtError(f"decoding option {key}: {text!r} is not true or false")
            changes[name] = text.lower() in ("true", "yes", "1")
        elif kinds[0] in (int, float):
            try:
                changes[name] = kinds[0](text)
            except ValueError:
                raise NmtError(f"decoding option {key}: {text!r} is not a "
                               f"{'whole number' if kinds[0] is int else 'number'}") from None
        else:
            changes[name] = text
    return dataclasses.replace(obj, **changes)
