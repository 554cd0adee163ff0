"""Pretrained mBART models: the official checkpoints, imported as bundles, and the checks
that a fine-tuning run fits its pretrained model.

Bundle layout of an mBART-style model (what ``nmt download`` and ``nmt pretrain``
write): the files of the official fairseq tarballs -- ``model.pt``,
``sentence.bpe.model``, ``dict.txt`` and ``ML50_langs.txt`` -- plus nmt's
``bundle.json`` (language-token style ``mbart``: ``[de_DE]``, followed by
``<mask>``). The official tarballs ship one ``dict.{lang}.txt`` per language,
all identical; ``dict.txt`` is a copy of one of them.

Fine-tuning reads the pretrained checkpoint's own architecture flags and
rebuilds exactly that model, and checks dictionary size, language list and
language-token style before any training starts: these mismatches are the
most reported fine-tuning failures in fairseq's tracker, and each gets one
line saying what differs and what to run instead.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from nmt import archives, downloads, langs
from nmt.bundle import Bundle
from nmt.data.manifest import PreparedData
from nmt.errors import NmtError
from nmt.fairseq_backend import load_state
from nmt.fairseq_backend.surgery import arch_args, architecture, embedding_rows
from nmt.fileio import read_json, replace_dir, sha256_file, write_json, write_lines
from nmt.vocab import SPECIALS, read_dictionary

log = logging.getLogger("nmt.pretrained")

_BASE = "https://dl.fbaipublicfiles.com/fairseq/models/mbart50"
# The published mBART-50 tarballs (Tang et al., 2020). Their publishers give no
# checksums; the ones below are filled in when known. Without one, nmt records
# the SHA-256 of the first download in ~/.cache/nmt/known_hashes.json and
# verifies every later download against it (pass --sha256 to pin your own).
MODELS = {
    "mbart50": {"url": f"{_BASE}/mbart50.pretrained.tar.gz", "kind": "denoising", "sha256": None,
                "directions": "none (pretrained denoising model: fine-tune it)"},
    "mbart50-m2m": {"url": f"{_BASE}/mbart50.ft.nn.tar.gz", "kind": "translation", "sha256": None,
                    "directions": "many-to-many"},
    "mbart50-o2m": {"url": f"{_BASE}/mbart50.ft.1n.tar.gz", "kind": "translation", "sha256": None,
                    "directions": "en_XX to the others"},
    "mbart50-m2o": {"url": f"{_BASE}/mbart50.ft.n1.tar.gz", "kind": "translation", "sha256": None,
                    "directions": "the others to en_XX"},
}


# ----------------------------------------------------------------------------- download

def _known_hashes_path() -> Path:
    return Path(os.environ.get("NMT_CACHE_DIR") or Path.home() / ".cache" / "nmt") / "known_hashes.json"


def _check_download_dest(dest: Path, force: bool) -> Path:
    """Where a downloaded bundle may go: a new path, an empty directory, or (with --force) a bundle.

    Anything else (a file, a directory with other content, the working directory or one of
    its parents) is refused, so that a mistyped --dest never deletes a user's files."""
    resolved = dest.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or cwd.is_relative_to(resolved):
        raise NmtError(f"--dest {dest} is the working directory or one of its parents; give a new directory "
                       "name for the bundle, e.g. --dest models/mbart50")
    if resolved.exists() and not resolved.is_dir():
        raise NmtError(f"--dest {dest} is a file; give a new directory name for the bundle")
    if resolved.is_dir() and any(resolved.iterdir()):
        if not (resolved / "bundle.json").is_file():
            raise NmtError(f"--dest {dest} is a directory with other files in it and not a model bundle; "
                           "nothing was changed: give a new or empty directory")
        if not force:
            raise NmtError(f"{dest} already holds a bundle; pass --force to replace it")
    parent = resolved.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NmtError(f"cannot create {parent} for --dest: {exc.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NmtError(f"cannot write to {parent} (permission denied); choose another --dest")
    return resolved


def download(name: str, dest, url: str | None = None, sha256: str | None = None, force: bool = False) -> Bundle:
    """Fetch an official mBART-50 tarball (or ``url``), extract it safely and make it a bundle.

    The download goes to ``.DEST.download/`` beside ``dest`` and is kept there only while it is
    incomplete (a rerun resumes it); extraction happens in ``.DEST.extract/``, which is always
    removed. A URL's hash is recorded as known only after its archive extracted and imported,
    so one bad first download does not poison later ones."""
    if name not in MODELS and not url:
        raise NmtError(f"unknown model {name!r}; known: {', '.join(MODELS)} (or give --url)")
    spec = MODELS.get(name, {"kind": "translation", "sha256": None})
    url = url or spec["url"]
    dest = _check_download_dest(Path(dest), force)
    cache = dest.parent / f".{dest.name}.download"
    cache.mkdir(exist_ok=True)
    archive = cache / Path(url.split("?")[0]).name
    known_file = _known_hashes_path()
    known = read_json(known_file) if known_file.is_file() else {}
    expected = sha256 or spec.get("sha256") or known.get(url)
    label = name if name in MODELS else archive.name
    log.info("downloading %s", url)
    try:  # keeps a partial .part for resuming on a network failure
        digest = downloads.fetch(url, archive, label, expected_sha256=expected, timeout=60.0)
    except BaseException:
        with contextlib.suppress(OSError):
            cache.rmdir()  # removed when empty: nothing to resume
        raise
    staging = dest.with_name(f".{dest.name}.extract")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        archives.safe_extract(archive, staging)
        roots = [p for p in staging.iterdir()]
        root = roots[0] if len(roots) == 1 and roots[0].is_dir() else staging
        import_official(root, kind=spec["kind"], source={"url": url, "sha256": digest})
        replace_dir(root, dest)
    except BaseException:
        shutil.rmtree(cache, ignore_errors=True)  # a complete archive that failed is not kept for a rerun
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    if not expected:
        known[url] = digest
        known_file.parent.mkdir(parents=True, exist_ok=True)
        write_json(known_file, known)
        log.warning("no published checksum for %s: recorded SHA-256 %s (later downloads are checked against it)",
                    url, digest)
    return Bundle.load(dest)


def import_official(directory: Path, kind: str = "translation", source: dict | None = None) -> Bundle:
    """Describe a directory in the official mBART layout with a bundle.json."""
    directory = Path(directory)
    for needed in ("model.pt", "sentence.bpe.model"):
        if not (directory / needed).is_file():
            raise NmtError(f"{directory} lacks {needed}: not an mBART checkpoint directory")
    if not (directory / "dict.txt").is_file():
        per_lang = sorted(directory.glob("dict.*.txt"))
        if not per_lang:
            raise NmtError(f"{directory} has no dict.txt (nor dict.{{lang}}.txt)")
        shutil.copyfile(per_lang[0], directory / "dict.txt")
    lang_file = directory / "ML50_langs.txt"
    if lang_file.is_file():
        languages = [x.strip() for x in lang_file.read_text(encoding="utf-8").split() if x.strip()]
    else:
        languages = list(langs.MBART50_LANGS)
        write_lines(lang_file, languages)
    langs.check_codes(languages)
    bundle = Bundle(path=directory, languages=languages, lang_tok_style="mbart", encoder_langtok="src",
                    decoder_langtok=True, directions=[], checkpoint="model.pt", spm="sentence.bpe.model",
                    dictionary="dict.txt", kind=kind, add_mask=True,
                    source=source or {"imported": time.strftime("%Y-%m-%d")})
    if kind == "translation":
        bundle.directions = [f"{a}-{b}" for a in languages for b in languages if a != b]
    check_vocabulary_fits(bundle)
    bundle.save()
    return bundle


# ----------------------------------------------------------------------------- checks

def expected_rows(bundle_or_dict: Path, n_languages: int, add_mask: bool) -> tuple[int, int]:
    """(dictionary symbols, embedding rows) of a model with this dictionary and number of languages."""
    n_dict = len(read_dictionary(bundle_or_dict)) - len(SPECIALS)
    return n_dict, len(SPECIALS) + n_dict + n_languages + (1 if add_mask else 0)


def check_vocabulary_fits(bundle: Bundle, state: dict | None = None) -> dict:
    """One-line explanation when dictionary + language tokens do not match the embedding rows."""
    state = state if state is not None else load_state(bundle.checkpoint_path)
    rows = embedding_rows(state)
    n_dict, expected = expected_rows(bundle.dict_path, len(bundle.languages), bundle.add_mask)
    if rows != expected:
        diff = rows - expected
        hint = ""
        if diff == 1:
            hint = " (one row more: the model has a <mask> token or one more language)"
        elif diff == -1:
            hint = " (one row less: drop <mask> or one language)"
        elif abs(diff) < 60:
            hint = f" ({abs(diff)} {'more' if diff > 0 else 'fewer'} rows: probably a different language list)"
        raise NmtError(
            f"{bundle.checkpoint_path} has {rows} embedding rows but 4 specials + {n_dict} dictionary symbols + "
            f"{len(bundle.languages)} language tokens{' + <mask>' if bundle.add_mask else ''} = {expected}{hint}; "
            "use the dict.txt and language list that came with the checkpoint")
    return state


# model.* shape settings and the checkpoint's own names for them: a run that starts from a model may
# repeat its shape (a finished run's config.yaml does) but not change it
_SHAPE_FIELDS = {"embed_dim": "encoder_embed_dim", "ffn_dim": "encoder_ffn_embed_dim",
                 "heads": "encoder_attention_heads", "encoder_layers": "encoder_layers",
                 "decoder_layers": "decoder_layers"}


@dataclass(frozen=True)
class FinetuneStart:
    """Where a fine-tuning run starts: the pretrained checkpoint and the architecture that loads it."""

    checkpoint: str
    arch_args: list  # fairseq-train arguments rebuilding exactly the checkpoint's architecture
    max_positions: int


def finetune_checkpoint(cfg, data: PreparedData) -> FinetuneStart:
    """Check that prepared data fits the pretrained bundle ``cfg.init.pretrained``; where to start from."""
    bundle = Bundle.load(cfg.init.pretrained)
    prep_langs = list(data.languages)
    fix = (f"nmt prepare ... --spm-model {bundle.spm_path} --dict {bundle.dict_path} "
           f"--lang-list {bundle.path / 'ML50_langs.txt'} --lang-tok-style {bundle.lang_tok_style}")
    if prep_langs != bundle.languages:
        only_data = [x for x in prep_langs if x not in bundle.languages]
        raise NmtError(
            f"the prepared data's language list ({len(prep_langs)}: {', '.join(prep_langs[:6])}...) differs from "
            f"the pretrained model's ({len(bundle.languages)}: {', '.join(bundle.languages[:6])}...)"
            + (f"; the model lacks {', '.join(only_data)} (see nmt extend-langs)" if only_data else "")
            + f"; prepare with: {fix}")
    if data.lang_tok_style != bundle.lang_tok_style:
        raise NmtError(f"the data uses {data.lang_tok_style} language tokens, the model "
                       f"{bundle.lang_tok_style}; prepare with: {fix}")
    data_symbols, model_symbols = read_dictionary(data.dictionary), read_dictionary(bundle.dict_path)
    extra_tags = [s for s in data.tags if s in data_symbols and s not in model_symbols]
    if extra_tags and [s for s in data_symbols if s not in extra_tags] == model_symbols:
        raise NmtError(f"the data's dictionary has the synthetic-data tag {extra_tags[0]}, which the pretrained "
                       f"model {bundle.path} lacks; set 'tag: false' for the synthetic corpora in the manifest")
    if data_symbols != model_symbols:
        raise NmtError(f"the data was binarized with another dictionary than {bundle.dict_path}; prepare with: {fix}")
    if sha256_file(data.spm_model) != sha256_file(bundle.spm_path):
        raise NmtError(f"the data was encoded with another sentencepiece model than {bundle.spm_path}; "
                       f"prepare with: {fix}")
    used = {lang for name in data.directions for lang in name.split("-")}
    unromanized = [x for x in bundle.romanized.languages if x in used and not data.romanization.source(x)]
    if unromanized:
        raise NmtError(f"the pretrained model {bundle.path} reads {', '.join(unromanized)} romanized (nmt "
                       f"extend-langs --romanize), the data does not; prepare with --romanize "
                       f"{','.join(unromanized)}")
    state = check_vocabulary_fits(bundle)
    info = architecture(state)
    preset_changes = [f for f, key in _SHAPE_FIELDS.items()
                      if getattr(cfg.model, f) is not None and getattr(cfg.model, f) != info.get(key)]
    if preset_changes:
        field = preset_changes[0]
        raise NmtError(f"model.{field}={getattr(cfg.model, field)} cannot change a pretrained architecture "
                       f"({info['arch']}, {info.get('encoder_layers')}+{info.get('decoder_layers')} layers, "
                       f"{info.get('encoder_embed_dim')} dims); remove the model.* shape settings")
    return FinetuneStart(str(bundle.checkpoint_path), arch_args(state), int(info.get("max_source_positions", 1024)))
