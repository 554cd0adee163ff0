"""Model bundles: a trained model as one self-describing directory.

::

    bundle.json       what the model is: languages (in token order), language-token
                      style and placement, trained directions, the checkpoint to use,
                      SHA-256 of the vocabulary files, nmt version
    spm.model         the shared sentencepiece model
    dict.txt          the fairseq dictionary (language tokens are appended in
                      ``languages`` order when the model is built); reserved tags
                      (``tags``, e.g. the back-translation tag) are its last symbols
    config.yaml       the resolved training config (training runs)
    training.json     data counts, updates, validation history, best scores
    checkpoints/      fairseq checkpoints (checkpoint_best.pt, checkpoint_last.pt, ...)
    ctranslate2-Q/    CTranslate2 models written by ``nmt export`` (optional), one per
                      quantization Q, each with ``nmt_export.json``: the checkpoint it was
                      made from (path inside the bundle, size, mtime and SHA-256)

``bundle.json`` is the one source of truth for languages, dictionary and
language tokens: every command that takes ``--model`` reads it and nothing
else decides them. The bundle also answers which CTranslate2 exports it has and
whether each is current: made from the checkpoint the bundle uses now (the same
file: same size and, when the modification time differs, e.g. after a copy, the
same SHA-256). ``nmt translate`` uses an export only while it is current.

What a model needs beyond its files (the normalization its training text had,
the languages it reads romanized, its longest source, its preset) and where it came from are typed fields of
``Bundle``; ``bundle.json`` keeps them in its ``extra`` block, as every nmt
version wrote and reads them, and keys a newer nmt added there are kept as
they are (``other_extra``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from nmt import __version__, langs
from nmt.data import DEFAULT_NORMALIZATION, NORMALIZATION_FORMS
from nmt.errors import NmtError
from nmt.fileio import read_json, sha256_file, write_json
from nmt.presets import PRESETS
from nmt.romanize import Romanization

BUNDLE_FORMAT = "nmt-bundle"
BUNDLE_VERSION = 1
# CTranslate2 quantizations, in the order nmt prefers them when a bundle has several exports
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32")
EXPORT_RECORD = "nmt_export.json"  # in every export directory: what it was made from


@dataclass
class Bundle:
    path: Path
    languages: list
    lang_tok_style: str = "multilingual"
    encoder_langtok: str | None = "src"
    decoder_langtok: bool = True
    directions: list = field(default_factory=list)  # "src-tgt" strings the model was trained on
    checkpoint: str = "checkpoints/checkpoint_best.pt"
    spm: str = "spm.model"
    dictionary: str = "dict.txt"
    kind: str = "translation"  # translation | denoising (a pretrained mBART-style model)
    add_mask: bool = False  # dictionary ends with <mask> (mBART)
    tags: list = field(default_factory=list)  # reserved source-side tags in the dictionary (tagged BT): never output
    hashes: dict = field(default_factory=dict)
    # bundle.json's "extra" block
    normalization: str = DEFAULT_NORMALIZATION  # of the training text; inputs are normalized the same way
    max_source_positions: int | None = None  # the longest source in subword tokens (None: not recorded)
    preset: str | None = None  # the model preset of a model trained from scratch
    pretrained: str | None = None  # the bundle a fine-tuned model started from
    source: dict | None = None  # where an imported model came from (URL, SHA-256)
    pretrained_on: dict | None = None  # denoising pretraining: sentences per language and split
    extended_with: dict | None = None  # nmt extend-langs: added language -> how its token started
    trimmed: dict | None = None  # nmt trim-vocab: pieces kept and dropped
    romanization: dict | None = None  # languages the model reads romanized (nmt.romanize.Romanization's record)
    other_extra: dict = field(default_factory=dict)  # keys this nmt does not know, kept as they are
    nmt_version: str = __version__

    # -- paths ---------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.path / self.checkpoint

    @property
    def spm_path(self) -> Path:
        return self.path / self.spm

    @property
    def dict_path(self) -> Path:
        return self.path / self.dictionary

    def direction_pairs(self) -> list[tuple[str, str]]:
        return [tuple(d.split("-")) for d in self.directions]

    @property
    def extra(self) -> dict:
        """The ``extra`` block of bundle.json: the fields above that are set, and the unknown keys."""
        typed = {name: getattr(self, name) for name in EXTRA_FIELDS}
        return {**{k: v for k, v in typed.items() if v is not None}, **self.other_extra}

    @property
    def romanized(self) -> Romanization:
        """The languages this model reads in Latin letters (``nmt prepare --romanize``)."""
        return Romanization.from_record(self.romanization, f"{self.path}/bundle.json")

    def check_language(self, code: str, role: str = "language") -> str:
        if code not in self.languages:
            raise NmtError(f"{role} {code!r} is not one of this model's languages: {', '.join(self.languages)}")
        return code

    # -- CTranslate2 exports (nmt export) -------------------------------------
    def export_dir(self, quantization: str) -> Path:
        return self.path / f"ctranslate2-{quantization}"

    def ctranslate2_exports(self) -> dict[str, Path]:
        """Converted CTranslate2 models in the bundle, by quantization, preferred first."""
        found = {}
        for child in self.path.glob("ctranslate2-*"):
            if (child / "model.bin").is_file() and (child / EXPORT_RECORD).is_file():
                found[child.name.split("-", 1)[1]] = child
        rank = {q: i for i, q in enumerate(QUANTIZATIONS)}
        return dict(sorted(found.items(), key=lambda item: rank.get(item[0], len(rank))))

    def checkpoint_stamp(self) -> dict:
        """What identifies the bundle's checkpoint file now (recorded by an export)."""
        st = os.stat(self.checkpoint_path)
        return {"checkpoint": self.checkpoint, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def export_record(self, export_dir) -> dict:
        return read_json(Path(export_dir) / EXPORT_RECORD)

    def export_is_current(self, export_dir) -> bool:
        """Whether the export was made from the checkpoint the bundle uses now."""
        info = self.export_record(export_dir)
        if info.get("checkpoint") != self.checkpoint or not self.checkpoint_path.is_file():
            return False
        now = self.checkpoint_stamp()
        if now["size"] != info.get("size"):
            return False
        return now["mtime_ns"] == info.get("mtime_ns") or sha256_file(self.checkpoint_path) == info.get("sha256")

    def export_model_dim(self, export_dir) -> int:
        """The decoder's width of an export: recorded by ``nmt export``; for older exports, the preset's."""
        dim = self.export_record(export_dir).get("decoder_embed_dim")
        if not dim:
            dim = PRESETS.get(self.preset, {}).get("embed_dim", 512)
        return int(dim)

    # -- I/O -----------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "nmt_version": self.nmt_version,
            "kind": self.kind, "languages": self.languages, "lang_tok_style": self.lang_tok_style,
            "encoder_langtok": self.encoder_langtok, "decoder_langtok": self.decoder_langtok,
            "add_mask": self.add_mask, "directions": self.directions, "checkpoint": self.checkpoint,
            "spm": self.spm, "dictionary": self.dictionary, "sha256": self.hashes,
            **({"tags": self.tags} if self.tags else {}),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **({"extra": self.extra} if self.extra else {}),
        }

    def save(self) -> None:
        self.hashes = {name: sha256_file(self.path / name) for name in (self.spm, self.dictionary)
                       if (self.path / name).is_file()}
        write_json(self.path / "bundle.json", self.to_json())

    @classmethod
    def load(cls, path, need_checkpoint: bool = True, verify: bool = True) -> "Bundle":
        path = Path(path)
        if not path.is_dir():
            raise NmtError(f"model bundle {path} does not exist (expected a directory written by nmt train)")
        meta_path = path / "bundle.json"
        if not meta_path.is_file():
            raise NmtError(f"{path} is not a model bundle: bundle.json is missing (an unfinished or "
                           "foreign directory? train with nmt train or import with nmt download)")
        meta = read_json(meta_path)
        if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
            raise NmtError(f"{meta_path} is not an nmt bundle description")
        if meta.get("format_version") != BUNDLE_VERSION:
            raise NmtError(f"{path} is a bundle of format version {meta.get('format_version')} (from nmt "
                           f"{meta.get('nmt_version')}); this nmt {__version__} reads version {BUNDLE_VERSION}")
        try:
            bundle = cls(
                path=path, languages=list(meta["languages"]), lang_tok_style=meta["lang_tok_style"],
                encoder_langtok=meta.get("encoder_langtok"), decoder_langtok=bool(meta.get("decoder_langtok", True)),
                directions=list(meta.get("directions", [])), checkpoint=meta["checkpoint"], spm=meta["spm"],
                dictionary=meta["dictionary"], kind=meta.get("kind", "translation"),
                add_mask=bool(meta.get("add_mask", False)), hashes=dict(meta.get("sha256", {})),
                tags=list(meta.get("tags", [])),
                nmt_version=meta.get("nmt_version", "?"), **_extra_fields(meta.get("extra") or {}, meta_path),
            )
        except (KeyError, TypeError) as exc:
            raise NmtError(f"{meta_path} lacks required field {exc}; the bundle is incomplete or corrupted") from None
        for key in ("checkpoint", "spm", "dictionary"):
            value = getattr(bundle, key)
            if not isinstance(value, str) or not value or Path(value).is_absolute() or ".." in Path(value).parts:
                raise NmtError(f"{meta_path}: field {key!r} is {value!r}, but it must be a relative path inside the "
                               "bundle (a bundle is one movable directory); copy the file into the bundle and "
                               "name it relative to it")
        langs.check_codes(bundle.languages)
        for name in (bundle.spm, bundle.dictionary):
            file = path / name
            if not file.is_file():
                raise NmtError(f"bundle {path} is incomplete: missing {name}")
            if verify and name in bundle.hashes and sha256_file(file) != bundle.hashes[name]:
                raise NmtError(f"bundle {path}: {name} does not match its SHA-256 in bundle.json "
                               "(corrupted or replaced); restore it from the original bundle")
        if need_checkpoint and not bundle.checkpoint_path.is_file():
            raise NmtError(f"bundle {path} has no checkpoint at {bundle.checkpoint} "
                           "(training not started or still before its first checkpoint?)")
        return bundle


EXTRA_FIELDS = ("normalization", "max_source_positions", "preset", "pretrained", "source", "pretrained_on",
                "extended_with", "trimmed", "romanization")


def _extra_fields(extra: dict, meta_path: Path) -> dict:
    """Bundle fields from bundle.json's ``extra`` block, checked."""
    if not isinstance(extra, dict):
        raise NmtError(f"{meta_path}: 'extra' must be an object; the bundle is corrupted")
    fields = {"other_extra": {k: v for k, v in extra.items() if k not in EXTRA_FIELDS}}
    fields.update({k: extra[k] for k in EXTRA_FIELDS if extra.get(k) is not None})
    if fields.get("normalization", DEFAULT_NORMALIZATION) not in NORMALIZATION_FORMS:
        raise NmtError(f"{meta_path}: extra.normalization is {fields['normalization']!r}, not one of "
                       f"{', '.join(NORMALIZATION_FORMS)}; the bundle is corrupted")
    if "max_source_positions" in fields:
        try:
            fields["max_source_positions"] = int(fields["max_source_positions"])
        except (TypeError, ValueError):
            raise NmtError(f"{meta_path}: extra.max_source_positions is {fields['max_source_positions']!r}, not a "
                           "whole number; the bundle is corrupted") from None
    for key in ("source", "pretrained_on", "extended_with", "trimmed", "romanization"):
        if key in fields and not isinstance(fields[key], dict):
            raise NmtError(f"{meta_path}: extra.{key} must be an object; the bundle is corrupted")
    if "romanization" in fields:
        Romanization.from_record(fields["romanization"], f"{meta_path}: extra")
    for key in ("preset", "pretrained"):
        if key in fields:
            fields[key] = str(fields[key])
    return fields
