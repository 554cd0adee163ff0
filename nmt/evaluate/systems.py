"""Systems under evaluation: a model bundle to translate with, or hypothesis files.

A system is given as ``PATH`` or ``NAME=PATH`` where PATH is

- a model bundle directory (it has ``bundle.json``): the test sets are
  translated with its default checkpoint;
- a checkpoint inside a bundle (``run/checkpoints/checkpoint_150.pt``): the same,
  with that checkpoint (fairseq backend), so checkpoints can be compared;
- a hypothesis directory: one file per direction named ``SRC-TGT.hyp`` (or
  ``SRC-TGT.txt``), or a report directory of an earlier ``nmt evaluate`` (its
  ``hyps/`` folder);
- a hypothesis file (one direction only).

A hypothesis file has one line per selected test line (what ``nmt evaluate``
writes), or one line per line of the whole test file, in which case the same
``--lines`` are selected from it. Anything else is a line-count error.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from nmt import langs
from nmt.bundle import Bundle
from nmt.comet import Flags
from nmt.errors import NmtError
from nmt.fileio import read_lines
from nmt.translate.options import QualityOptions

log = logging.getLogger("nmt.evaluate")

HYP_SUFFIXES = (".hyp", ".txt")


@dataclass
class System:
    name: str
    kind: str  # "bundle" | "hyps"
    path: Path  # bundle directory, hypothesis directory or hypothesis file
    checkpoint: Path | None = None  # a specific checkpoint of a bundle
    quality: QualityOptions = field(default_factory=QualityOptions)  # a bundle's MBR / reranking / pivoting
    decode: object = None  # DecodeOptions of this system (None: the evaluation's)

    @property
    def translates(self) -> bool:
        return self.kind == "bundle"

    def describe(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "path": str(self.path)}
        if self.quality.active:
            out["quality_options"] = {k: v for k, v in vars(self.quality).items() if v is not None}
        if self.checkpoint:
            out["checkpoint"] = str(self.checkpoint)
        return out

    # -- hypothesis files ----------------------------------------------------
    def hyp_file(self, src: str, tgt: str) -> Path | None:
        if self.path.is_file():
            return self.path
        for folder in (self.path, self.path / "hyps"):
            for suffix in HYP_SUFFIXES:
                candidate = folder / f"{src}-{tgt}{suffix}"
                if candidate.is_file():
                    return candidate
        return None

    def hyp_directions(self) -> list[tuple[str, str]]:
        """Directions this hypothesis directory has files for (sorted)."""
        if self.path.is_file():
            return []
        found = set()
        for folder in (self.path, self.path / "hyps"):
            for file in folder.glob("*") if folder.is_dir() else []:
                match = re.fullmatch(r"([a-z]{2}_[A-Z]{2})-([a-z]{2}_[A-Z]{2})(\.hyp|\.txt)", file.name)
                if match and match.group(1) in langs.LANGUAGES and match.group(2) in langs.LANGUAGES:
                    found.add((match.group(1), match.group(2)))
        return sorted(found)


def parse_system(spec: str) -> System:
    """``PATH`` or ``NAME=PATH`` -> a ``System`` (the path must exist)."""
    name, sep, rest = spec.partition("=")
    if sep and name and "/" not in name and not Path(spec).exists():
        path = Path(rest)
    else:
        name, path = "", Path(spec)
    if not path.exists():
        raise NmtError(f"system {spec!r}: {path} does not exist (a model bundle, a checkpoint, a hypothesis "
                       "directory or a hypothesis file)")
    if path.is_file() and path.suffix == ".pt":
        bundle = path.parent.parent
        if path.parent.name != "checkpoints" or not (bundle / "bundle.json").is_file():
            raise NmtError(f"checkpoint {path} is not inside a model bundle (expected BUNDLE/checkpoints/*.pt)")
        return System(name or f"{bundle.name}:{path.stem}", "bundle", bundle, checkpoint=path)
    if path.is_dir() and (path / "bundle.json").is_file():
        return System(name or path.name, "bundle", path)
    if path.is_dir():
        return System(name or path.name, "hyps", path)
    return System(name or path.stem, "hyps", path)


def unique_names(systems: list[System]) -> list[System]:
    """Make system names unique and safe as folder names (they name hypothesis folders)."""
    seen: dict[str, int] = {}
    for system in systems:
        base = re.sub(r"[^\w.+:-]+", "_", system.name).replace(":", "-") or "system"
        seen[base] = seen.get(base, 0) + 1
        system.name = base if seen[base] == 1 else f"{base}-{seen[base]}"
    return systems


def read_hypotheses(path: Path, testset) -> tuple[list[str], str]:
    """Read hypotheses aligned to ``testset``; returns ``(lines, how)``.

    ``how`` is ``"selected"`` when the file has one line per selected test line,
    ``"full"`` when it covered the whole test file and ``--lines`` were applied to it.
    """
    lines, _ = read_lines(path)
    n_selected, n_total = len(testset.indices), testset.total_lines
    if len(lines) == n_selected:
        return lines, "selected"  # type: ignore[return-value]
    if len(lines) == n_total:
        return [lines[i] for i in testset.indices], "full"  # type: ignore[misc]
    scope = (f"{n_selected} selected lines (--lines {testset.lines_text} of {n_total})" if n_selected != n_total
             else f"{n_total} lines")
    raise NmtError(f"{path} has {len(lines)} lines but test set {testset.name} {testset.direction} has {scope}; "
                   "hypotheses must be line-aligned with the references")


# nmt evaluate's own --comet-model is the metric; the MBR utility model has options of its own
MBR_FLAGS = Flags("--mbr-comet-model", "--mbr-comet-encoder", download=None, skip=None)


class BundleTranslator:
    """Translate test sets with a bundle (one ``Translator``, loaded on first use)."""

    def __init__(self, system: System, options, backend: str = "auto", device: str = "cpu", threads: int = 0,
                 batch_tokens: int = 4000):
        self.system, self.options, self.backend, self.device = system, system.decode or options, backend, device
        self.threads, self.batch_tokens = threads, batch_tokens
        self._translator = None
        # translation speed over everything this system translated (model loading excluded)
        self.seconds, self.sentences, self.tokens = 0.0, 0, 0

    @property
    def translator(self):
        if self._translator is None:
            from nmt.translate.quality import QualityTranslator
            from nmt.translate.translator import Translator

            translator = Translator(self.system.path, backend=self.backend, device=self.device, threads=self.threads,
                                    checkpoint=str(self.system.checkpoint) if self.system.checkpoint else None)
            self._translator = QualityTranslator(translator, self.system.quality, mbr_flags=MBR_FLAGS)
        return self._translator

    def bundle_languages(self) -> list[str]:
        return list(Bundle.load(self.system.path, need_checkpoint=False).languages)

    def translate(self, testset) -> tuple[list[str], list[str]]:
        """Hypotheses for ``testset`` and the translator's warnings (e.g. lines too long)."""
        translator = self.translator  # loaded before the clock starts
        t0 = time.perf_counter()
        results = translator.translate(testset.src, testset.src_lang, testset.tgt_lang, options=self.options,
                                       batch_tokens=self.batch_tokens)
        self.seconds += time.perf_counter() - t0
        self.sentences += len(results)
        self.tokens += sum(len(r.hypotheses[0].tokens) for r in results if r.hypotheses)
        warnings = []
        for index, result in zip(testset.indices, results):
            if result.warning:
                warnings.append(f"{self.system.name} {testset.direction} test line {index + 1}: "
                                f"{result.warning.split(': ', 1)[-1]}")
        return [r.text for r in results], warnings

    def describe(self) -> dict:
        t = self.translator
        opts = self.options
        quality = t.describe(self.options) if self.system.quality.active else {}
        return {"backend": t.backend_name, "device": t.device,
                **({"quality": quality, "quality_text": quality_text(quality)} if quality else {}),
                "checkpoint": str(self.system.checkpoint or t.bundle.checkpoint_path),
                # languages the model reads (and, for analysis, writes) romanized: uroman ran on that input
                **({"romanization": t.romanization.record()} if t.romanization else {}),
                # target languages decoded with a vocabulary shortlist (nmt export --shortlist)
                "vocabulary_shortlists": sorted(getattr(t.backend, "shortlists", {})),
                "decode": {"beam": opts.beam, "len_penalty": opts.len_penalty, "max_len_a": opts.max_len_a,
                           "max_len_b": opts.max_len_b, "split_sentences": opts.split_sentences,
                           "batch_tokens": self.batch_tokens,
                           **({"sampling": {k: getattr(opts, k) for k in ("sampling_topk", "sampling_topp", "epsilon",
                                                                           "temperature", "seed")}}
                              if opts.sampling else {})},
                "model": self._model_size(), "speed": self._speed()}

    def _speed(self) -> dict:
        rate = (lambda n: round(n / self.seconds, 2) if self.seconds > 0 else None)
        return {"sentences": self.sentences, "output_tokens": self.tokens, "seconds": round(self.seconds, 3),
                "sentences_per_s": rate(self.sentences), "tokens_per_s": rate(self.tokens),
                "threads": self.threads, "device": self.device}

    def _model_size(self) -> dict:
        """Parameters (from training.json) and the bytes the backend loads: the CTranslate2 export's
        files, or the fairseq checkpoint (which may also hold optimizer state)."""
        t = self.translator
        model_dir = getattr(t.backend, "model_dir", None)
        if model_dir is not None:
            files = [f for f in Path(model_dir).iterdir() if f.is_file()]
            loaded = {"what": f"CTranslate2 export {Path(model_dir).name}", "bytes": sum(f.stat().st_size for f in files)}
        else:
            checkpoint = Path(self.system.checkpoint or t.bundle.checkpoint_path)
            loaded = {"what": "fairseq checkpoint", "bytes": checkpoint.stat().st_size}
        training = self.system.path / "training.json"
        try:
            parameters = json.loads(training.read_text(encoding="utf-8")).get("parameters")
        except (OSError, ValueError):
            parameters = None
        return {"parameters": parameters, **loaded}


def quality_text(quality: dict) -> str:
    """A system's quality decoding in a few words (the report's notes)."""
    parts = []
    if quality.get("mbr"):
        parts.append(f"MBR {quality['utility']} over {quality['candidates']} candidates from "
                     f"{quality['candidates_from']}, {quality['pseudo_refs']} pseudo-references")
    elif quality.get("rerank"):
        parts.append(f"{quality['rerank']} reranking of {quality['candidates']} candidates from "
                     f"{quality['candidates_from']}")
    if quality.get("pivot"):
        parts.append(f"through {quality['pivot']} (pivot)")
    return ", ".join(parts)
