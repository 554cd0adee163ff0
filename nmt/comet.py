"""COMET scores with unbabel-comet: offline-first, cached per segment, honest when absent.

Used by ``nmt evaluate`` (a metric) and by quality decoding (``nmt.translate.quality``:
COMET as the MBR utility, a reference-free model such as COMET-Kiwi for QE
reranking), with the same loading rules for both.

Model resolution (``resolve_model``):

- a local path: a COMET model directory (``hparams.yaml`` +
  ``checkpoints/model.ckpt``, the hub layout) or the ``.ckpt`` file itself.
  COMET's encoder also needs a tokenizer and config (``xlm-roberta-large`` for
  the Unbabel models): taken from ``--comet-encoder DIR``, else from an
  ``encoder/`` folder next to ``hparams.yaml``, else from the local Hugging
  Face cache under the name in ``hparams.yaml``.
- a hub name (``Unbabel/wmt22-comet-da``): looked up in the local Hugging
  Face cache only. Nothing is downloaded unless ``allow_download`` is set
  (``--comet-download``): offline, hub calls otherwise hang for minutes.

When no model can be had, ``CometUnavailable`` carries the reason; the report
then shows ``n/a`` and that reason, never a number from anything else.

Scores are cached on disk per (model identity, source, hypothesis, reference)
in one SQLite file, so a rerun (or another system sharing segments) does not
recompute them; when every segment is cached, the model is not even loaded.
The model identity is the hub revision for hub models and the SHA-256 of the
checkpoint for local ones (memoized by path, size and mtime), plus the encoder
tokenizer when it was overridden.

The system score is the mean of the segment scores, as ``comet-score`` prints it.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from nmt.errors import NmtError
from nmt.fileio import read_yaml, sha256_file

log = logging.getLogger("nmt.evaluate")

DEFAULT_MODEL = "Unbabel/wmt22-comet-da"
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_QUIET = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric",
          "comet", "transformers")


@dataclass(frozen=True)
class Flags:
    """The command-line options a message may point to (``None``: the command has no such option)."""

    model: str = "--comet-model"
    encoder: str = "--comet-encoder"
    download: str | None = "--comet-download"
    skip: str | None = "--no-comet"


EVALUATE_FLAGS = Flags()


class CometUnavailable(Exception):
    """No COMET model can be used; the message says why (shown in the report)."""


def default_cache_dir() -> Path:
    base = os.environ.get("NMT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nmt")
    return Path(base) / "comet"


def comet_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unbabel-comet")
    except PackageNotFoundError:
        return "not-installed"


@dataclass
class CometModel:
    """A resolved (not yet loaded) COMET model."""

    name: str  # what the user asked for: hub name or absolute path
    checkpoint: Path
    hparams: dict
    encoder_dir: Path | None  # local tokenizer/config override, or None (HF cache by name)
    identity: str  # what scores are cached under
    revision: str  # hub revision or checkpoint sha256 prefix
    source: str = "local"  # "hub" | "local"

    @property
    def reference_free(self) -> bool:
        """A quality-estimation model: it scores (source, translation) pairs without a reference
        (``ReferencelessRegression``, or a unified model such as COMET-Kiwi whose inputs lack ``ref``)."""
        kind = self.hparams.get("class_identifier")
        if kind == "referenceless_regression_metric":
            return True
        segments = self.hparams.get("input_segments")
        return kind in ("unified_metric", "xcomet_metric") and isinstance(segments, list) and "ref" not in segments

    @property
    def needs_reference(self) -> bool:
        return not self.reference_free

    def signature(self) -> str:
        where = "rev" if self.source == "hub" else "sha256"
        parts = [f"model:{self.name}", f"{where}:{self.revision}", f"comet:{comet_version()}",
                 f"ref:{'yes' if self.needs_reference else 'no'}", "sys:mean"]
        if self.encoder_dir is not None:
            parts.insert(2, f"encoder:{self.encoder_dir}")
        return "COMET|" + "|".join(parts)


def _read_hparams(path: Path) -> dict:
    hparams = read_yaml(path, "COMET hparams") or {}
    if "class_identifier" not in hparams:
        raise NmtError(f"{path} has no class_identifier: not a COMET model's hparams.yaml")
    return hparams


def resolve_model(spec: str, encoder: str | None = None, allow_download: bool = False,
                  cache: "ScoreCache | None" = None, flags: Flags = EVALUATE_FLAGS) -> CometModel:
    """Find a COMET model without loading it (raises ``CometUnavailable`` or ``NmtError``).

    ``flags`` are the command's options that the messages name."""
    path = Path(spec).expanduser()
    if path.exists():
        return _resolve_local(path, encoder, allow_download, cache, flags)
    if not HUB_NAME.fullmatch(spec) or spec.startswith((".", "/", "~")):
        raise NmtError(f"COMET model {spec!r} is neither an existing path nor a hub name like {DEFAULT_MODEL}")
    return _resolve_hub(spec, encoder, allow_download, flags)


def _resolve_local(path: Path, encoder, allow_download, cache, flags) -> CometModel:
    path = path.resolve()
    if path.is_dir():
        ckpt = path / "checkpoints" / "model.ckpt"
        if not ckpt.is_file():
            raise NmtError(f"COMET model directory {path} has no checkpoints/model.ckpt")
    else:
        ckpt = path
    root = ckpt.parents[1]
    if not (root / "hparams.yaml").is_file():
        raise NmtError(f"COMET checkpoint {ckpt} has no hparams.yaml two levels up ({root}/hparams.yaml)")
    hparams = _read_hparams(root / "hparams.yaml")
    encoder_dir = _local_encoder(root, hparams, encoder, allow_download, flags)
    digest = cache.checkpoint_sha256(ckpt) if cache else sha256_file(ckpt)
    identity = f"local:{digest}" + (f"+tok:{_tokenizer_digest(encoder_dir)}" if encoder_dir else "")
    return CometModel(str(root), ckpt, hparams, encoder_dir, identity, digest[:12])


def _local_encoder(root: Path, hparams: dict, encoder, allow_download, flags) -> Path | None:
    if encoder:
        enc = Path(encoder).expanduser().resolve()
        if not (enc / "config.json").is_file():
            raise NmtError(f"{flags.encoder} {enc} must be a directory with the encoder's config.json and tokenizer")
        return enc
    if (root / "encoder" / "config.json").is_file():
        return root / "encoder"
    _check_encoder_cached(str(hparams.get("pretrained_model", "")), allow_download, flags)
    return None


def _check_encoder_cached(name: str, allow_download: bool, flags: Flags) -> None:
    if allow_download or not name or Path(name).is_dir():
        return
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(name, "config.json")
    if not isinstance(found, str):
        raise CometUnavailable(f"COMET's encoder {name} (tokenizer and config) is not in the local Hugging Face "
                               f"cache and downloading is off: pass {flags.encoder} DIR"
                               + (f" or run once with {flags.download}" if flags.download else ""))


def _resolve_hub(name: str, encoder, allow_download, flags) -> CometModel:
    try:
        from huggingface_hub import snapshot_download

        snapshot = Path(snapshot_download(repo_id=name, local_files_only=not allow_download))
    except Exception as exc:  # noqa: BLE001 - any hub failure means "not available"
        how = ("downloading failed" if allow_download else "it is not in the local Hugging Face cache and "
               "downloading is off" + (f" ({flags.download})" if flags.download else ""))
        hint = f"pass {flags.model} PATH to a local COMET checkpoint" + (f", or {flags.skip}" if flags.skip else "")
        raise CometUnavailable(f"COMET model {name}: {how} ({type(exc).__name__}); {hint}") from None
    ckpt = snapshot / "checkpoints" / "model.ckpt"
    if not ckpt.is_file() or not (snapshot / "hparams.yaml").is_file():
        raise CometUnavailable(f"COMET model {name} in the Hugging Face cache ({snapshot}) is incomplete: "
                               "checkpoints/model.ckpt or hparams.yaml is missing")
    hparams = _read_hparams(snapshot / "hparams.yaml")
    encoder_dir = Path(encoder).resolve() if encoder else None
    if encoder_dir is None:
        _check_encoder_cached(str(hparams.get("pretrained_model", "")), allow_download, flags)
    identity = f"hub:{name}@{snapshot.name}" + (f"+tok:{_tokenizer_digest(encoder_dir)}" if encoder_dir else "")
    return CometModel(name, ckpt, hparams, encoder_dir, identity, snapshot.name[:12], "hub")


def _tokenizer_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.is_file() and file.suffix in (".json", ".model", ".txt"):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


# -- the on-disk score cache ---------------------------------------------------
class ScoreCache:
    """Segment scores by (model identity, src, mt, ref) in one SQLite file.

    SQLite gives atomic, concurrent-safe writes: an interrupted run keeps what
    it committed and never leaves a half-written cache.
    """

    def __init__(self, folder: Path | None):
        """``folder=None``: a cache in memory, gone with the process (quality decoding: nothing on disk)."""
        if folder is None:
            self.path = ":memory:"
        else:
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / "comet-scores.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60)
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, model TEXT, score REAL)")
            self.db.execute("CREATE TABLE IF NOT EXISTS checkpoints "
                            "(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT)")

    @staticmethod
    def key(identity: str, src: str, mt: str, ref: str) -> str:
        return hashlib.sha256("\x00".join((identity, src, mt, ref)).encode("utf-8")).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self.db.execute(f"SELECT key, score FROM scores WHERE key IN ({','.join('?' * len(chunk))})",
                                   chunk).fetchall()
            found.update(rows)
        return found

    def put_many(self, identity: str, items: dict[str, float]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)",
                                [(k, identity, float(v)) for k, v in items.items()])

    def checkpoint_sha256(self, path: Path) -> str:
        stat = path.stat()
        row = self.db.execute("SELECT size, mtime_ns, sha256 FROM checkpoints WHERE path = ?", (str(path),)).fetchone()
        if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return row[2]
        digest = sha256_file(path)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)",
                            (str(path), stat.st_size, stat.st_mtime_ns, digest))
        return digest

    def close(self) -> None:
        self.db.close()


# -- scoring ------------------------------------------------------------------
class CometScorer:
    """Scores (src, mt, ref) triples with one COMET model, through the cache.

    ``calls`` counts model invocations, ``computed`` the segments the model
    actually scored (duplicates within a call are scored once) and ``cached``
    the segments read from the cache (tests use them to check that reruns hit it).
    """

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 16, gpus: int = 0,
                 cache_dir: str | os.PathLike | None = None, encoder: str | None = None,
                 allow_download: bool = False, persistent: bool = True,
                 flags: Flags = EVALUATE_FLAGS):
        """``persistent=False`` keeps the segment scores in memory only (``cache_dir`` unused)."""
        if batch_size < 1:
            raise NmtError("--comet-batch-size must be >= 1")
        if gpus not in (0, 1):
            raise NmtError("--comet-gpus must be 0 (CPU) or 1 (one GPU; choose it with CUDA_VISIBLE_DEVICES): "
                           "COMET's multi-GPU mode runs separate processes; use comet-score for that")
        if gpus:
            import torch

            if not torch.cuda.is_available():
                raise NmtError("--comet-gpus 1: no CUDA GPU is visible; use --comet-gpus 0")
        self.batch_size, self.gpus, self.allow_download = batch_size, gpus, allow_download
        self.cache = ScoreCache((Path(cache_dir) if cache_dir else default_cache_dir()) if persistent else None)
        self.model = resolve_model(model, encoder, allow_download, self.cache, flags)
        self._loaded = None
        self.calls = 0
        self.computed = 0
        self.cached = 0

    def signature(self) -> str:
        return self.model.signature()

    def describe(self) -> dict:
        return {"model": self.model.name, "revision": self.model.revision, "checkpoint": str(self.model.checkpoint),
                "encoder": str(self.model.encoder_dir) if self.model.encoder_dir else
                self.model.hparams.get("pretrained_model"), "comet_version": comet_version(),
                "batch_size": self.batch_size, "gpus": self.gpus, "cache": str(self.cache.path),
                "signature": self.signature()}

    def load(self):
        """The loaded unbabel-comet model (loaded once; raises ``CometUnavailable``)."""
        if self._loaded is not None:
            return self._loaded
        try:
            from comet.models import str2model
        except Exception as exc:  # noqa: BLE001
            raise CometUnavailable(f"unbabel-comet cannot be imported here ({type(exc).__name__}: {exc})") from None
        hp = self.model.hparams
        cls = str2model.get(hp["class_identifier"])
        if cls is None:
            raise CometUnavailable(f"COMET model class {hp['class_identifier']!r} is unknown to comet {comet_version()}")
        kwargs = dict(checkpoint_path=self.model.checkpoint, map_location="cpu", strict=False,
                      load_pretrained_weights=False, local_files_only=not self.allow_download)
        if self.model.encoder_dir is not None:
            kwargs["pretrained_model"] = str(self.model.encoder_dir)
        if hp.get("layer_transformation") == "sparsemax_patch":  # what comet.load_from_checkpoint does (issue #244)
            kwargs["layer_transformation"] = "softmax"
        try:
            with quiet():
                self._loaded = cls.load_from_checkpoint(**kwargs)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise CometUnavailable(f"COMET model {self.model.name} could not be loaded offline "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
        return self._loaded

    def score(self, src: Sequence[str], mt: Sequence[str], ref: Sequence[str]) -> list[float]:
        """Segment scores for aligned lists (raises ``CometUnavailable``)."""
        if not (len(src) == len(mt) == len(ref)):
            raise NmtError(f"COMET input is not line-aligned: {len(src)} sources, {len(mt)} hypotheses, "
                           f"{len(ref)} references")
        use_ref = self.model.needs_reference
        identity = self.model.identity
        keys = [ScoreCache.key(identity, s, m, r if use_ref else "") for s, m, r in zip(src, mt, ref)]
        known = self.cache.get_many(keys)
        todo: dict[str, dict] = {}
        for key, s, m, r in zip(keys, src, mt, ref):
            if key not in known and key not in todo:
                todo[key] = {"src": s, "mt": m, **({"ref": r} if use_ref else {})}
        self.cached += sum(1 for k in keys if k in known)
        if todo:
            model = self.load()
            with quiet():
                output = model.predict(list(todo.values()), batch_size=self.batch_size, gpus=self.gpus,
                                       progress_bar=False)
            self.calls += 1
            self.computed += len(todo)
            fresh = dict(zip(todo, (float(s) for s in output.scores)))
            self.cache.put_many(identity, fresh)
            known.update(fresh)
        return [known[k] for k in keys]

    def close(self) -> None:
        self.cache.close()


@contextlib.contextmanager
def quiet():
    """Silence Lightning's banners ("GPU available ...", tips) and warnings while COMET runs."""
    import warnings

    loggers = [logging.getLogger(name) for name in _QUIET]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
