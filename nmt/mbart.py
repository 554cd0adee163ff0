"""mBART: official checkpoints, denoising pretraining, fine-tuning checks, language
extension and vocabulary trimming.

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
import errno
import http.client
import json
import logging
import lzma
import os
import shutil
import tarfile
import time
import urllib.request
import zlib
from pathlib import Path


from nmt import langs
from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fileio import OutputLock, read_json, replace_dir, read_lines, read_yaml, sha256_file, write_json, write_lines

log = logging.getLogger("nmt.mbart")

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


def fetch(url: str, dest: Path, expected_sha256: str | None = None, chunk: int = 1 << 20) -> str:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part``; verify SHA-256. Returns the hash."""
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url)
    if offset and not url.startswith("file:"):
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except (OSError, ValueError) as exc:
        raise NmtError(f"cannot download {url}: {exc}") from None
    with response:
        status = getattr(response, "status", None)
        if url.startswith("file:"):  # local files: skip what we already have, block by block
            remaining = offset
            while remaining > 0:
                skipped = len(response.read(min(chunk, remaining)))
                if not skipped:
                    break
                remaining -= skipped
        elif offset and status != 206:
            offset = 0  # the server ignored the range: start over
        mode = "ab" if offset else "wb"
        with open(part, mode) as out:
            try:
                while True:
                    block = response.read(chunk)
                    if not block:
                        break
                    out.write(block)
            except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                raise NmtError(f"the download of {url} was interrupted ({type(exc).__name__}: {exc}); "
                               "rerun the same command to resume it") from None
    digest = sha256_file(part)
    if expected_sha256 and digest != expected_sha256.lower():
        part.unlink(missing_ok=True)
        raise NmtError(f"checksum mismatch for {url}: expected SHA-256 {expected_sha256}, got {digest}; "
                       "the download was deleted (corrupted, or the file changed upstream)")
    os.replace(part, dest)
    return digest


# An official mBART-50 tarball holds one ~2.4 GB model.pt; no member of a model
# archive is larger than this, so a bigger (or sparse, "zip bomb") member is refused.
MAX_MEMBER_BYTES = int(os.environ.get("NMT_MAX_ARCHIVE_MEMBER_BYTES", 16 << 30))


def safe_extract(archive: Path, dest: Path) -> list[str]:
    """Extract a tarball, refusing absolute paths, ``..`` components, links, special files,
    members over ``MAX_MEMBER_BYTES`` and archives larger than the free disk space."""
    dest = dest.resolve()
    try:
        tar = tarfile.open(archive)
        with tar:
            members = tar.getmembers()
            _check_members(archive, dest, members)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise NmtError(f"{archive} is not a complete, readable tar archive ({detail}); delete it and "
                       "download it again") from None
    return [m.name for m in members]


def _check_members(archive: Path, dest: Path, members) -> None:
    total = 0
    for member in members:
        name = member.name
        if name.startswith("/") or Path(name).is_absolute():
            raise NmtError(f"refusing {archive}: member {name!r} has an absolute path")
        if ".." in Path(name).parts:
            raise NmtError(f"refusing {archive}: member {name!r} points outside the target directory")
        if member.issym() or member.islnk():
            raise NmtError(f"refusing {archive}: member {name!r} is a link ({member.linkname!r})")
        if not (member.isfile() or member.isdir()):
            raise NmtError(f"refusing {archive}: member {name!r} is not a regular file or directory")
        if not (dest / name).resolve().is_relative_to(dest):
            raise NmtError(f"refusing {archive}: member {name!r} points outside the target directory")
        if member.size > MAX_MEMBER_BYTES:
            raise NmtError(f"refusing {archive}: member {name!r} would extract to {member.size:,} bytes, over the "
                           f"{MAX_MEMBER_BYTES:,}-byte limit for one file (NMT_MAX_ARCHIVE_MEMBER_BYTES)")
        total += member.size
    free = shutil.disk_usage(dest.parent if not dest.exists() else dest).free
    if total > free:
        raise NmtError(f"refusing {archive}: it would extract to {total:,} bytes but only {free:,} are free "
                       f"on the disk of {dest}")


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
    log.info("downloading %s", url)
    try:
        digest = fetch(url, archive, expected)  # keeps a partial .part for resuming on a network failure
    except BaseException:
        with contextlib.suppress(OSError):
            cache.rmdir()  # removed when empty: nothing to resume
        raise
    staging = dest.with_name(f".{dest.name}.extract")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        safe_extract(archive, staging)
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
                    extra={"normalization": "NFC", "source": source or {"imported": time.strftime("%Y-%m-%d")}})
    if kind == "translation":
        bundle.directions = [f"{a}-{b}" for a in languages for b in languages if a != b]
    check_vocabulary_fits(bundle)
    bundle.save()
    return bundle


# ----------------------------------------------------------------------------- checks

def expected_rows(bundle_or_dict: Path, n_languages: int, add_mask: bool) -> tuple[int, int]:
    from nmt.fairseq_backend.binarize import SPECIALS, read_dictionary

    n_dict = len(read_dictionary(bundle_or_dict)) - len(SPECIALS)
    return n_dict, len(SPECIALS) + n_dict + n_languages + (1 if add_mask else 0)


def check_vocabulary_fits(bundle: Bundle, state: dict | None = None) -> dict:
    """One-line explanation when dictionary + language tokens do not match the embedding rows."""
    from nmt.fairseq_backend import load_state
    from nmt.fairseq_backend.surgery import embedding_rows

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


def finetune_checkpoint(cfg, manifest: dict, data_dir: Path) -> tuple[str, list, int]:
    """Check that prepared data fits the pretrained bundle; return (checkpoint, arch args, max positions)."""
    from nmt.fairseq_backend.surgery import architecture, arch_args

    bundle = Bundle.load(cfg.init.pretrained)
    prep_langs = list(manifest["languages"])
    fix = (f"nmt prepare ... --spm-model {bundle.spm_path} --dict {bundle.dict_path} "
           f"--lang-list {bundle.path / 'ML50_langs.txt'} --lang-tok-style {bundle.lang_tok_style}")
    if prep_langs != bundle.languages:
        only_data = [x for x in prep_langs if x not in bundle.languages]
        raise NmtError(
            f"the prepared data's language list ({len(prep_langs)}: {', '.join(prep_langs[:6])}...) differs from "
            f"the pretrained model's ({len(bundle.languages)}: {', '.join(bundle.languages[:6])}...)"
            + (f"; the model lacks {', '.join(only_data)} (see nmt extend-langs)" if only_data else "")
            + f"; prepare with: {fix}")
    if manifest["lang_tok_style"] != bundle.lang_tok_style:
        raise NmtError(f"the data uses {manifest['lang_tok_style']} language tokens, the model "
                       f"{bundle.lang_tok_style}; prepare with: {fix}")
    from nmt.fairseq_backend.binarize import read_dictionary

    data_symbols, model_symbols = read_dictionary(data_dir / "bin" / "dict.txt"), read_dictionary(bundle.dict_path)
    extra_tags = [s for s in manifest.get("tags", []) if s in data_symbols and s not in model_symbols]
    if extra_tags and [s for s in data_symbols if s not in extra_tags] == model_symbols:
        raise NmtError(f"the data's dictionary has the synthetic-data tag {extra_tags[0]}, which the pretrained "
                       f"model {bundle.path} lacks; set 'tag: false' for the synthetic corpora in the manifest")
    if data_symbols != model_symbols:
        raise NmtError(f"the data was binarized with another dictionary than {bundle.dict_path}; prepare with: {fix}")
    if sha256_file(data_dir / "spm" / "spm.model") != sha256_file(bundle.spm_path):
        raise NmtError(f"the data was encoded with another sentencepiece model than {bundle.spm_path}; "
                       f"prepare with: {fix}")
    state = check_vocabulary_fits(bundle)
    info = architecture(state)
    preset_changes = [f for f in ("embed_dim", "ffn_dim", "heads", "encoder_layers", "decoder_layers")
                      if getattr(cfg.model, f) is not None]
    if preset_changes:
        raise NmtError(f"model.{preset_changes[0]} cannot change a pretrained architecture ({info['arch']}, "
                       f"{info.get('encoder_layers')}+{info.get('decoder_layers')} layers, "
                       f"{info.get('encoder_embed_dim')} dims); remove the model.* shape settings")
    return str(bundle.checkpoint_path), arch_args(state), int(info.get("max_source_positions", 1024))


# ----------------------------------------------------------------------------- pretrain

def _mono_text(data_dir: Path, manifest: dict, extra_dirs) -> dict:
    """Monolingual text per language: both sides of the prepared bitext (+ {lang}.txt files), de-duplicated."""
    texts: dict[str, dict] = {}
    for split in ("train", "valid"):
        for name in manifest["pairs"]:
            for lang in name.split("-"):
                path = data_dir / "clean" / f"{split}.{name}.{lang}"
                if path.is_file():
                    lines, _ = read_lines(path)
                    texts.setdefault(lang, {}).setdefault(split, set()).update(lines)
    for directory in extra_dirs or []:
        for path in sorted(Path(directory).glob("*.txt")):
            lang = path.stem
            langs.get(lang)
            from nmt.data.clean import normalize

            lines, _ = read_lines(path, on_bad_utf8="skip")
            texts.setdefault(lang, {}).setdefault("train", set()).update(
                x for x in (normalize(line) for line in lines if line is not None) if x)
    out = {}
    for lang, splits in texts.items():
        valid = sorted(splits.get("valid", set()))
        train = sorted(splits.get("train", set()) - set(valid))
        out[lang] = {"train": train, "valid": valid or train[:50]}
    return out


def pretrain(cfg, run_dir, mono_dirs=(), reset: bool = False) -> dict:
    """Denoising pretraining on the prepared data's text; writes an official-layout bundle."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise NmtError(f"--output {run_dir} is a file; give a directory for the pretraining run")
    run_dir.mkdir(parents=True, exist_ok=True)
    with OutputLock(run_dir, "nmt pretrain"):
        return _pretrain_locked(cfg, run_dir, mono_dirs, reset)


def _pretrain_locked(cfg, run_dir: Path, mono_dirs, reset: bool) -> dict:
    from nmt.data import spm as spm_lib
    from nmt.data.bin_stage import piece_table
    from nmt.data.prepare import load_prepared
    from nmt.fairseq_backend import binarize
    from nmt.fairseq_backend import training as backend
    from nmt.train import TrainHooks, _log_to_file

    from nmt.config import config_differences, save_config
    from nmt.fileio import atomic_open
    from nmt.data.prepare import _file_stamp, _fingerprint

    data_dir = Path(cfg.data)
    manifest = load_prepared(data_dir)
    run_dir = Path(run_dir)
    device = backend.resolve_device(cfg.training.device)
    if cfg.distributed.world_size > 1 and cfg.distributed.init_method:
        raise NmtError("nmt pretrain runs in one process, or one per GPU spawned by fairseq: set "
                       "distributed.world_size without distributed.init_method")
    if reset:
        for child in run_dir.iterdir():
            if child.name != OutputLock.NAME:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    # what the denoising data is made of: the prepared data (its final stage's fingerprint) + --mono files
    inputs = _fingerprint({"data": json.loads((data_dir / "bin" / "stage.json").read_text())["fingerprint"],
                           "mono": [_file_stamp(p) for d in mono_dirs or [] for p in sorted(Path(d).glob("*.txt"))]})
    resuming = (run_dir / "checkpoints" / "checkpoint_last.pt").is_file()
    denoise = run_dir / "denoise-data"
    if resuming:
        old = read_yaml(run_dir / "config.yaml", "saved config") or {}
        diffs = config_differences(old, cfg.to_dict())
        done = json.loads((denoise / "done.json").read_text()) if (denoise / "done.json").is_file() else {}
        if done.get("inputs") != inputs:
            diffs.append("the pretraining text (prepared data or --mono files) changed")
        if diffs:
            raise NmtError(f"{run_dir} holds a pretraining run with a different configuration ({'; '.join(diffs)}); "
                           "pass --reset to start over, or choose another --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    texts = _mono_text(data_dir, manifest, mono_dirs)
    languages = [x for x in langs.MBART50_LANGS if x in texts]
    if not resuming:  # official layout: sentence.bpe.model, dict.txt, ML50_langs.txt (+ model.pt at the end)
        shutil.copyfile(data_dir / "spm" / "spm.model", run_dir / "sentence.bpe.model")
        shutil.copyfile(data_dir / "bin" / "dict.txt", run_dir / "dict.txt")
        with atomic_open(run_dir / "ML50_langs.txt") as out:
            out.write("".join(f"{x}\n" for x in languages))
    done_file = denoise / "done.json"
    if not done_file.is_file() or json.loads(done_file.read_text()).get("inputs") != inputs:
        shutil.rmtree(denoise, ignore_errors=True)
        processor = spm_lib.load(run_dir / "sentence.bpe.model")
        symbols = binarize.read_dictionary(run_dir / "dict.txt")
        table = piece_table(processor, symbols)
        denoise.mkdir(parents=True)
        shutil.copyfile(run_dir / "dict.txt", denoise / "dict.txt")
        counts = {}
        for lang in languages:
            (denoise / lang).mkdir()
            for split in ("train", "valid"):
                lines = texts[lang][split]
                writer = binarize.IndexedWriter(denoise / lang / split, len(symbols))
                flat, sizes = binarize.ids_with_eos(processor.encode(lines, out_type=int), table)
                writer.add_batch(flat, sizes)
                writer.close()
                counts.setdefault(lang, {})[split] = len(lines)
        write_json(done_file, {"inputs": inputs, "sentences": counts})
    counts = json.loads(done_file.read_text())["sentences"]
    argv = backend.denoising_args(cfg, str(denoise), languages, str(run_dir / "sentence.bpe.model"),
                                  str(run_dir / "checkpoints"), device)
    save_config(cfg, run_dir / "config.yaml")
    _log_to_file(run_dir / "pretrain.log")
    hooks = TrainHooks(run_dir, {}, cfg, {"kind": "denoising", "data": str(data_dir), "sentences": counts})
    hooks.metric = "loss"
    settings = {
        "threads": (cfg.training.threads or os.cpu_count() or 1) if device == "cpu" else 0,
        "validate_every": cfg.validation.every_updates, "save_every": cfg.checkpoint.every_updates,
        "keep_last": cfg.checkpoint.keep_last, "metric": "loss", "patience": cfg.validation.patience,
        "max_time_minutes": cfg.training.max_time_minutes, "translation_validation": False,
    }
    backend.run(argv, hooks, settings)
    from nmt.fairseq_backend import load_state
    from nmt.fairseq_backend.surgery import save_state

    best = load_state(run_dir / "checkpoints" / "checkpoint_best.pt")
    # model.pt is for fine-tuning, like the official one: weights and config, no training state
    # (fairseq would otherwise carry the pretraining clock into the fine-tuning run)
    best["last_optimizer_state"] = None
    best["extra_state"] = {"train_iterator": {"epoch": 1}}
    save_state(best, run_dir / "model.pt")
    bundle = Bundle(path=run_dir, languages=languages, lang_tok_style="mbart", encoder_langtok="src",
                    decoder_langtok=True, directions=[], checkpoint="model.pt", spm="sentence.bpe.model",
                    dictionary="dict.txt", kind="denoising", add_mask=True,
                    extra={"normalization": manifest["settings"]["filters"]["normalization"],
                           "max_source_positions": cfg.model.resolved()["max_positions"], "pretrained_on": counts})
    bundle.save()
    return json.loads((run_dir / "training.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- language extension

def extend_languages(model, new_languages, output, init_from: dict | None = None) -> dict:
    """Add language tokens to a bundle: new rows go after the existing language tokens (before <mask>).

    A new row starts as a copy of the row of ``init_from[lang]`` (e.g. gl_ES from es_XX) when given,
    else as the mean of the existing language-token rows: a "generic language" start that fine-tuning
    then specialises, the same idea as mBART-50's extension of mBART-25.
    """
    from nmt.fairseq_backend import load_state
    from nmt.fairseq_backend.surgery import parameter_count, remap_vocabulary, save_state

    bundle = Bundle.load(model)
    init_from = init_from or {}
    new = [x for x in new_languages if x not in bundle.languages]
    if not new:
        raise NmtError(f"nothing to add: {', '.join(new_languages)} already in the model")
    langs.check_codes(new)
    for lang, src in init_from.items():
        if lang not in new:
            raise NmtError(f"--init-from {lang}={src}: {lang} is not one of the languages being added")
        bundle.check_language(src, "--init-from source language")
    state = check_vocabulary_fits(bundle)
    n_dict, _ = expected_rows(bundle.dict_path, len(bundle.languages), bundle.add_mask)
    first_lang = 4 + n_dict
    old_lang_rows = list(range(first_lang, first_lang + len(bundle.languages)))
    rows = list(range(first_lang)) + old_lang_rows + [None] * len(new)
    if bundle.add_mask:
        rows.append(first_lang + len(bundle.languages))
    sources = {first_lang + len(bundle.languages) + i: (
        first_lang + bundle.languages.index(init_from[lang]) if lang in init_from else None)
        for i, lang in enumerate(new)}

    def init(old, i):
        src = sources[i]
        return old[src].clone() if src is not None else old[old_lang_rows].mean(dim=0)

    before = parameter_count(state)
    extended = remap_vocabulary(state, rows, init)
    out = Path(output)
    _copy_bundle_files(bundle, out)
    save_state(extended, out / bundle.checkpoint)
    languages = bundle.languages + new
    if (out / "ML50_langs.txt").exists() or bundle.lang_tok_style == "mbart":
        write_lines(out / "ML50_langs.txt", languages)
    bundle.path, bundle.languages = out, languages
    bundle.extra = {**bundle.extra, "extended_with": {x: init_from.get(x, "mean of language tokens") for x in new}}
    bundle.save()
    check_vocabulary_fits(bundle, extended)
    return {"added": new, "languages": len(languages), "parameters_before": before,
            "parameters_after": parameter_count(extended)}


def _copy_bundle_files(bundle: Bundle, out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise NmtError(f"{out} exists and is not empty; choose a new output directory")
    out.mkdir(parents=True, exist_ok=True)
    for name in (bundle.spm, bundle.dictionary, "ML50_langs.txt", "config.yaml", "training.json"):
        if (bundle.path / name).is_file():
            shutil.copyfile(bundle.path / name, out / name)
    (out / bundle.checkpoint).parent.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------- vocabulary trimming

def trim_vocabulary(model, corpora, output, min_count: int = 1) -> dict:
    """Keep only the pieces the given text uses (plus specials and all language tokens).

    The embedding and output-projection rows of dropped pieces are removed and
    ``dict.txt`` rewritten. The sentencepiece model is kept but its dropped pieces
    are marked unused, so sentencepiece re-segments words that needed them into
    kept pieces (characters outside the kept set become ``<unk>``). Text whose
    segmentation only uses kept pieces is encoded exactly as before, and greedy
    decoding of it gives the same translation (dropped rows are never argmax for
    it); beam scores shift slightly because the softmax normalises over fewer rows.
    """
    import sentencepiece as spm

    from nmt.fairseq_backend import binarize, load_state
    from nmt.fairseq_backend.surgery import parameter_count, remap_vocabulary, save_state
    from nmt.translate.codec import SubwordCodec

    bundle = Bundle.load(model)
    state = check_vocabulary_fits(bundle)
    codec = SubwordCodec(bundle.spm_path, bundle.dict_path, bundle.extra.get("normalization", "NFC"))
    symbols = codec.symbols
    counts = [0] * len(symbols)
    n_lines = 0
    for path in corpora:
        lines, _ = read_lines(path, on_bad_utf8="skip")
        clean_lines = [codec.normalize(x) for x in lines if x]
        n_lines += len(clean_lines)
        for ids in codec.encode(clean_lines):
            for i in ids:
                counts[i] += 1
    if not n_lines:
        raise NmtError("no text to trim with: give files in the languages the trimmed model will translate")
    n_special = len(binarize.SPECIALS)
    kept = [i for i in range(n_special, len(symbols)) if counts[i] >= min_count]
    n_lang = len(bundle.languages) + (1 if bundle.add_mask else 0)
    rows = list(range(n_special)) + kept + list(range(len(symbols), len(symbols) + n_lang))
    before = parameter_count(state)
    trimmed = remap_vocabulary(state, rows)
    out = Path(output)
    _copy_bundle_files(bundle, out)
    save_state(trimmed, out / bundle.checkpoint)
    binarize.write_dictionary(out / bundle.dictionary, [symbols[i] for i in kept], [counts[i] for i in kept])
    # sentencepiece: mark dropped pieces unused so encoding never produces them
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    proto = model_pb2.ModelProto()
    proto.ParseFromString((bundle.spm_path).read_bytes())
    keep_pieces = {symbols[i] for i in kept}
    dropped = 0
    for piece in proto.pieces:
        if piece.type == model_pb2.ModelProto.SentencePiece.NORMAL and piece.piece not in keep_pieces:
            piece.type = model_pb2.ModelProto.SentencePiece.UNUSED
            dropped += 1
    (out / bundle.spm).write_bytes(proto.SerializeToString())
    spm.SentencePieceProcessor(model_file=str(out / bundle.spm))  # the edited model must still load
    bundle.path = out
    bundle.extra = {**bundle.extra, "trimmed": {"kept_pieces": len(kept), "dropped_pieces": len(symbols) - n_special -
                                                len(kept), "from_lines": n_lines, "min_count": min_count}}
    bundle.save()
    check_vocabulary_fits(bundle, trimmed)
    return {"dictionary_before": len(symbols) - n_special, "dictionary_after": len(kept),
            "parameters_before": before, "parameters_after": parameter_count(trimmed),
            "spm_pieces_marked_unused": dropped}
