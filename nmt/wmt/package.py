"""``nmt package``: translate WMT test sets (or take existing hypotheses) and pack a submission.

The archive (``.tar.gz``, written atomically) holds one folder ``TEAM.SYSTEM/``::

    metadata.json             team, system, primary/contrastive, constrained, language pairs,
                              the files, the model bundle's SHA-256 hashes, decoding settings
    MODEL_CARD.md             a short human-readable description of the system
    <test set>.<SYSTEM>.<ext> one submission file per test set (xml, txt or jsonl)

Each test set is translated at its own unit (segment or paragraph, one per line;
a paragraph sentence by sentence unless ``--split-sentences never``), canary units are copied unchanged (see ``nmt.wmt.formats``), and every
submission file is validated and read back before the archive is written.

A hypothesis holding an unknown token (``<unk>``, or ``⁇``, U+2047, which
sentencepiece decodes it to) where its source does not is packaged, but warned
about: on stderr and in ``metadata.json`` (``files[].unk_hypotheses`` and
``unk_first``), with the count and the first few segments.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nmt import __version__, langs
from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fileio import atomic_path, sha256_file
from nmt.translate.backends import DecodeOptions
from nmt.translate.options import QualityOptions
from nmt.translate.quality import QualityTranslator
from nmt.translate.translator import Translator
from nmt.vocab import SPECIALS, UNK
from nmt.wmt import formats
from nmt.wmt.formats import TestSet

log = logging.getLogger("nmt.wmt")

SUBMISSION_FORMAT = "nmt-wmt-submission"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_EXTENSIONS = {"xml": "xml", "txt": "txt", "jsonl": "jsonl"}
# region/script variants that must not fall back to the ISO code's ML50 language
_NOT_THE_SAME = {"zh_TW", "zh_HK", "zh_Hant", "zh-TW", "zh-HK", "zh-Hant"}
UNK_MARKERS = (SPECIALS[UNK], "\u2047")  # fairseq's unknown symbol, and sentencepiece's surface form of it ("⁇")
_UNK_LISTED = 3  # segments named in the warning


def model_language(code: str, languages: list[str]) -> str:
    """Map a WMT code (``de``, ``ja``, WMT25's ``ja_JP``, or an ML50 code) to one of the model's languages."""
    normalized = code.replace("-", "_")
    if normalized in langs.LANGUAGES:
        candidates = [normalized]
    elif code in _NOT_THE_SAME or normalized in _NOT_THE_SAME:
        candidates = []
    else:
        iso = normalized.split("_")[0].lower()
        candidates = [lang.code for lang in langs.LANGUAGES.values() if lang.iso == iso]
    if not candidates:
        raise NmtError(f"language {code!r} maps to no language nmt knows; this model's languages are: "
                       f"{', '.join(languages)}")
    if candidates[0] not in languages:
        raise NmtError(f"language {code!r} ({candidates[0]}) is not one of this model's languages: "
                       f"{', '.join(languages)}")
    return candidates[0]


@dataclass
class PackageConfig:
    test_sets: list
    output: str
    team: str
    system: str
    constrained: bool | None = None
    primary: bool = True
    model: str | None = None
    hyps: list = field(default_factory=list)
    docs: str | None = None
    src_lang: str | None = None
    tgt_lang: str | None = None
    fmt: str = "same"
    hyp_system: str | None = None  # which <hyp system=...> to take from an XML hypothesis file
    options: object = None  # DecodeOptions
    batch_tokens: int = 4000
    too_long: str = "truncate"
    backend: str = "auto"
    device: str = "cpu"
    threads: int = 0
    allow_empty: bool = False
    description: str | None = None
    force: bool = False
    quality: QualityOptions = field(default_factory=QualityOptions)  # MBR, reranking, pivoting


def check_config(cfg: PackageConfig) -> None:
    for what, name in (("--team", cfg.team), ("--system", cfg.system)):
        if not name or not _NAME.fullmatch(name):
            raise NmtError(f"{what} {name!r}: use 1-64 letters, digits, '.', '_', '+' or '-' (it names files)")
    if cfg.constrained is None:
        raise NmtError("say whether the system is --constrained or --unconstrained (WMT asks every submission)")
    if not cfg.test_sets:
        raise NmtError("give at least one test set")
    if bool(cfg.model) == bool(cfg.hyps):
        raise NmtError("give either --model (translate the test sets) or --hyps (existing hypotheses), not both"
                       if cfg.model else "give --model BUNDLE to translate, or --hyps FILE with existing hypotheses")
    if cfg.hyps and len(cfg.hyps) != len(cfg.test_sets):
        raise NmtError(f"{len(cfg.hyps)} --hyps files for {len(cfg.test_sets)} test sets; give one per test set, "
                       "in the same order")
    if len(cfg.test_sets) > 1 and (cfg.docs or cfg.src_lang or cfg.tgt_lang):
        raise NmtError("--docs, --src-lang and --tgt-lang apply to a single test set; package one at a time")
    cfg.quality.check()
    if cfg.hyps and cfg.quality.active:
        raise NmtError("--mbr, --rerank and --pivot decode with --model; --hyps were translated elsewhere")
    if cfg.fmt not in ("same",) + formats.FORMATS:
        raise NmtError(f"unknown --format {cfg.fmt!r}")
    check_output_path(cfg.output, cfg.force)


def check_output_path(output, force: bool) -> None:
    output = Path(output)
    if output.is_dir():
        raise NmtError(f"{output} is a directory; give the archive's file name, e.g. {output}/submission.tar.gz")
    if output.exists() and not force:
        raise NmtError(f"{output} already exists; pass --force to overwrite it")


def translate_test_set(translator, testset: TestSet, options, batch_tokens=4000, too_long="truncate"):
    """Hypotheses for every unit of ``testset`` (canary units copied), and the translator's warnings
    by unit position (e.g. why a line came back empty)."""
    hyps: list = [None] * len(testset.units)
    notes: dict[int, str] = {}
    groups: dict = {}
    for unit in testset.units:
        if unit.canary:
            hyps[unit.position] = unit.text
        else:
            groups.setdefault((unit.doc.src_lang, unit.doc.tgt_lang), []).append(unit)
    for (src, tgt), units in groups.items():
        if not src or not tgt:
            raise NmtError(f"{testset.path.name}: {units[0].label} has no {'source' if not src else 'target'} "
                           f"language; pass --{'src' if not src else 'tgt'}-lang")
        model_src = model_language(src, translator.languages)
        model_tgt = model_language(tgt, translator.languages)
        log.info("%s: translating %d units %s -> %s", testset.path.name, len(units), model_src, model_tgt)
        results = translator.translate([u.text for u in units], src=model_src, tgt=model_tgt, options=options,
                                       batch_tokens=batch_tokens, too_long=too_long)
        for unit, result in zip(units, results):
            hyps[unit.position] = result.text
            if result.warning:
                notes[unit.position] = re.sub(r"^line [0-9]+: ", "", result.warning)
    return hyps, notes


def unknown_tokens(testset: TestSet, hyps: list) -> list:
    """The units whose hypothesis holds ``<unk>`` or ``⁇`` that its source does not (a model's unknown token)."""
    return [unit for unit, hyp in zip(testset.units, hyps)
            if any(marker in hyp and marker not in unit.text for marker in UNK_MARKERS)]


def unk_warning(testset: TestSet, units: list) -> str:
    first = "; ".join(unit.label for unit in units[:_UNK_LISTED])
    more = ", ..." if len(units) > _UNK_LISTED else ""
    return (f"{testset.path.name}: {len(units)} of {len(testset.units)} hypotheses contain an unknown token "
            f"(<unk> or \u2047) the source does not have: {first}{more}")


def _bundle_info(translator, options, cfg) -> dict:
    bundle = translator.bundle
    checkpoint = bundle.checkpoint_path
    info = {
        "bundle": bundle.path.resolve().name, "kind": bundle.kind, "languages": list(bundle.languages),
        "directions": list(bundle.directions), "checkpoint": bundle.checkpoint, "backend": translator.backend_name,
        "sha256": {"checkpoint": sha256_file(checkpoint) if checkpoint.is_file() else None,
                   "bundle.json": sha256_file(bundle.path / "bundle.json"), **bundle.hashes},
        "decoding": {**asdict(options), "batch_tokens": cfg.batch_tokens, "too_long": cfg.too_long},
        # languages the model reads romanized: uroman ran on their source text before translation
        **({"romanization": translator.romanization.record()} if translator.romanization else {}),
        # decoding for quality: what chose the hypotheses (MBR / reranking, the utility's signature), pivoting
        "quality": translator.describe(options) if cfg.quality.active else None,
    }
    training = bundle.path / "training.json"
    if training.is_file():
        try:
            summary = json.loads(training.read_text(encoding="utf-8"))
            info["training"] = {k: summary[k] for k in ("updates", "best", "stop_reason", "data") if k in summary}
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    return info


def build_package(cfg: PackageConfig) -> dict:
    """Read, translate (or load), validate and archive; returns the metadata written."""
    check_config(cfg)
    options = cfg.options or DecodeOptions()
    testsets = [formats.read_test_set(path, cfg.docs, cfg.src_lang, cfg.tgt_lang) for path in cfg.test_sets]
    names = {}
    for testset in testsets:
        fmt = testset.format if cfg.fmt == "same" else cfg.fmt
        name = f"{testset.path.stem}.{cfg.system}.{_EXTENSIONS[fmt]}"
        if name in names:
            raise NmtError(f"two test sets would both be written as {name}; rename one of them")
        names[name] = (testset, fmt)

    model_info, translator = None, None
    if cfg.model:
        bundle = Bundle.load(cfg.model)
        for testset in testsets:  # fail on an unsupported language before loading the model
            for src, tgt in testset.pairs():
                for code in (src, tgt):
                    if code:
                        model_language(code, bundle.languages)
        if cfg.quality.pivot:
            bundle.check_language(cfg.quality.pivot, "--pivot language")
        translator = QualityTranslator(Translator(bundle, backend=cfg.backend, device=cfg.device, threads=cfg.threads),
                                       cfg.quality)
        model_info = _bundle_info(translator, options, cfg)

    members, files, warnings, pairs = {}, [], [], {}
    for index, (name, (testset, fmt)) in enumerate(names.items()):
        notes = {}
        if translator is not None:
            hyps, notes = translate_test_set(translator, testset, options, cfg.batch_tokens, cfg.too_long)
        else:
            hyps = formats.read_hypotheses(cfg.hyps[index], testset, cfg.hyp_system)
        empty = formats.check_hypotheses(testset, hyps, cfg.allow_empty, reasons=notes)
        unk = unknown_tokens(testset, hyps)
        warnings += ([unk_warning(testset, unk)] if unk else []) + empty + \
            [f"{testset.units[i].label}: {note}" for i, note in notes.items() if hyps[i].strip()]
        data = formats.render(fmt, testset, hyps, cfg.system)
        formats.check_output(data, fmt, testset, hyps, cfg.system)
        members[name] = data
        file_pairs = [f"{s}-{t}" for s, t in testset.pairs()]
        for pair in file_pairs:
            pairs.setdefault(pair, None)
        files.append({
            "path": name, "format": fmt, "test_set": testset.path.name,
            "test_set_sha256": sha256_file(testset.path), "language_pairs": file_pairs,
            "documents": len(testset.docs), "segments": len(hyps),
            "canary_segments": sum(unit.canary for unit in testset.units), "empty_hypotheses": len(empty),
            "unk_hypotheses": len(unk), "unk_first": [unit.label for unit in unk[:_UNK_LISTED]],
            "sha256": _sha256(data),
            **({"hypotheses_from": str(cfg.hyps[index])} if cfg.hyps else {}),
        })

    metadata = {
        "format": SUBMISSION_FORMAT, "format_version": 1, "nmt_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "team": cfg.team, "system": cfg.system,
        "submission": "primary" if cfg.primary else "contrastive", "constrained": cfg.constrained,
        "language_pairs": list(pairs), "files": files, "model": model_info,
        "description": cfg.description, "n_warnings": len(warnings), "warnings": warnings[:200],
    }
    members["metadata.json"] = (json.dumps(metadata, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    members["MODEL_CARD.md"] = model_card(metadata).encode("utf-8")
    check_output_path(cfg.output, cfg.force)  # again: it may have appeared while we translated
    write_archive(cfg.output, f"{cfg.team}.{cfg.system}", members)
    for warning in warnings[:20]:
        log.warning("%s", warning)
    if len(warnings) > 20:
        log.warning("... and %d more warnings (all in metadata.json)", len(warnings) - 20)
    return metadata


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_archive(output, top: str, members: dict) -> None:
    """A gzip tar of in-memory files under ``top/``, written to a temporary file and renamed into place."""
    now = time.time()
    with atomic_path(output) as tmp:
        with tarfile.open(tmp, "w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size, info.mtime, info.mode = len(data), now, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))


def model_card(meta: dict) -> str:
    model = meta.get("model")
    lines = [
        f"# {meta['team']} / {meta['system']}",
        "",
        f"- Submission: {meta['submission']}, {'constrained' if meta['constrained'] else 'unconstrained'}",
        f"- Language pairs: {', '.join(meta['language_pairs'])}",
        f"- Files: {', '.join(f['path'] for f in meta['files'])}",
        f"- Packaged with nmt {meta['nmt_version']} on {meta['created']}",
    ]
    if meta.get("description"):
        lines += ["", meta["description"]]
    lines += ["", "## Model", ""]
    if model:
        training = model.get("training", {})
        best = training.get("best") or {}
        lines += [
            f"- Multilingual {model['kind']} model (fairseq transformer) trained with nmt; bundle "
            f"`{model['bundle']}`, checkpoint `{model['checkpoint']}`",
            f"- Languages: {', '.join(model['languages'])}",
            f"- Trained directions: {', '.join(model['directions']) or 'unknown'}",
            f"- Checkpoint SHA-256: `{model['sha256']['checkpoint']}`",
            f"- bundle.json SHA-256: `{model['sha256']['bundle.json']}`",
        ]
        if training:
            lines.append(f"- Training: {training.get('updates', '?')} updates, best validation "
                         f"{best.get('metric', '?')} {best.get('score', '?')}")
        if model.get("romanization"):
            lines.append(f"- Reads {', '.join(model['romanization']['languages'])} romanized: their source text "
                         f"was romanized with {model['romanization']['romanizer']} before translation")
        decoding = model["decoding"]
        lines.append(f"- Decoding: {model['backend']} backend, beam {decoding['beam']}, length penalty "
                     f"{decoding['len_penalty']}, lines over the model's length limit: {decoding['too_long']}, "
                     f"sentence splitting: {decoding.get('split_sentences', 'never')}")
        quality = model.get("quality") or {}
        if quality.get("mbr") or quality.get("rerank"):
            lines.append(f"- Chosen among {quality['candidates']} candidates ({quality['candidates_from']}) by "
                         + (f"MBR with {quality['utility']}" if quality.get("mbr") else f"{quality['rerank']} reranking")
                         + f" (`{quality['signature']}`)")
        if quality.get("pivot"):
            lines.append(f"- Pivoted through {quality['pivot']}: source -> {quality['pivot']} -> target")
    else:
        lines.append("- Hypotheses were supplied as files; nmt did not translate them and knows nothing of the model.")
    lines += [
        "",
        "## Notes",
        "",
        "- Translated one segment (XML) or paragraph line (txt, JSONL) at a time, without document context"
        + ("" if not model or model["decoding"].get("split_sentences", "never") == "never" else
           "; a unit holding several sentences was translated sentence by sentence and joined back") + ".",
        "- Canary lines are copied unchanged, as the organisers require.",
        f"- Warnings while packaging: {meta['n_warnings']} (listed in metadata.json).",
        "",
    ]
    return "\n".join(lines)
