"""The body of ``nmt translate``: open inputs and outputs, stream chunks through the Translator."""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fileio import atomic_open, check_input_file, refuse_same_file
from nmt.translate import stream
from nmt.translate.backends import DecodeOptions, EngineOptions
from nmt.translate.options import QualityOptions
from nmt.translate.quality import QualityTranslator
from nmt.translate.translator import Translation, Translator, check_threads


@dataclass
class TranslateRun:
    """One ``nmt translate``: the model, the languages, input and output, and how to decode."""

    model: str
    src: str | None = None
    tgt: str | None = None  # one or more target languages, comma-separated
    input_path: str = "-"  # - for stdin
    output_path: str = "-"  # - for stdout; with several targets, {tgt} in the name or a .TGT suffix
    tsv: bool = False  # lines are src<TAB>tgt<TAB>text
    fmt: str = "text"  # text | jsonl | html (each line an HTML fragment or document)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)
    too_long: str = "skip"  # skip (empty output + warning) | truncate
    quality: QualityOptions = field(default_factory=QualityOptions)  # MBR, reranking, pivoting


def _output_paths(output_path: str, targets: list[str]) -> dict[str, str]:
    if output_path == "-":
        return {t: "-" for t in targets}
    if len(targets) == 1:
        return {targets[0]: output_path}
    if "{tgt}" in output_path:
        return {t: output_path.replace("{tgt}", t) for t in targets}
    return {t: f"{output_path}.{t}" for t in targets}


def run_translate(run: TranslateRun) -> None:
    src, tgt, output_path, options, engine = run.src, run.tgt, run.output_path, run.decode, run.engine
    bundle = Bundle.load(run.model, need_checkpoint=False)
    if run.tsv and run.fmt == "html":
        raise NmtError("--format html takes the languages from --src/--tgt; it cannot be combined with --tsv")
    if run.tsv:
        if src or tgt:
            raise NmtError("--tsv takes the languages from each line; drop --src/--tgt")
        targets = ["*"]
    else:
        if not src or not tgt:
            raise NmtError("give --src and --tgt (or --tsv for lines with their own languages)")
        bundle.check_language(src, "source language")
        targets = [t.strip() for t in tgt.split(",") if t.strip()]
        if not targets:
            raise NmtError(f"--tgt {tgt!r} names no language; give one or more codes, e.g. --tgt de_DE,ja_XX")
        for target in targets:
            bundle.check_language(target, "target language")
        if len(targets) > 1 and output_path == "-" and run.fmt == "text":
            raise NmtError("several targets to stdout need --format jsonl, or -o FILE (one file per target)")
    options.check()
    run.quality.check()
    if engine.batch_tokens < 1:
        raise NmtError(f"--batch-tokens must be >= 1, got {engine.batch_tokens}")
    check_threads(engine.threads)
    if run.quality.pivot:
        bundle.check_language(run.quality.pivot, "--pivot language")
    outputs = _output_paths(output_path, targets)
    if run.input_path != "-":
        check_input_file(run.input_path, regular=False)
        for path in outputs.values():
            if path != "-":
                refuse_same_file(run.input_path, path)
    translator = QualityTranslator(Translator(bundle, **engine.translator_kwargs()), run.quality)
    to_file = output_path != "-"
    with contextlib.ExitStack() as stack:
        handles = {}
        for target, path in outputs.items():
            handles[target] = sys.stdout if path == "-" else stack.enter_context(atomic_open(path))
        if run.input_path == "-":
            chunks = stream.stream_chunks(stream.stdin_binary())
            total = None
        elif not Path(run.input_path).is_file():  # a FIFO or device: read once, as a stream
            chunks = stream.stream_chunks(stack.enter_context(open(run.input_path, "rb")))
            total = None
        else:
            handle = stack.enter_context(open(run.input_path, "rb"))
            chunks = stream.file_chunks(handle)
            total = sum(1 for _ in open(run.input_path, "rb")) * len(targets)
        progress = None
        if to_file:
            progress = stack.enter_context(tqdm(total=total, desc="translate", unit="line", file=sys.stderr,
                                                disable=None, leave=False))
        number = 1
        for chunk in chunks:
            for target, out in handles.items():
                if run.tsv:
                    lines_out = _translate_tsv(translator, chunk, number, run, progress)
                elif run.fmt == "html":
                    lines_out = _translate_html(translator, chunk, number, src, target, run, progress)
                else:
                    results = translator.translate(chunk, src, target, options, too_long=run.too_long,
                                                   first_line_number=number, progress=progress,
                                                   **engine.batching_kwargs())
                    lines_out = []
                    for offset, (line, result) in enumerate(zip(chunk, results)):
                        if result.warning:
                            print(f"nmt: warning: {result.warning}", file=sys.stderr)
                        lines_out.append(stream.format_jsonl(number + offset, src, target, line, result,
                                                             options.nbest) if run.fmt == "jsonl" else result.text)
                out.write("".join(line + "\n" for line in lines_out))
                out.flush()
            number += len(chunk)


def _translate_tsv(translator, chunk, number, run: TranslateRun, progress) -> list[str]:
    parsed = [stream.parse_tsv(line, number + i) for i, line in enumerate(chunk)]
    out: list = [None] * len(chunk)
    groups: dict = {}
    for i, (src, tgt, text, error) in enumerate(parsed):
        if error is None:
            for role, code in (("source language", src), ("target language", tgt)):
                if code not in translator.bundle.languages:
                    error = f"line {number + i}: {role} {code!r} is not one of the model's languages " \
                            f"({', '.join(translator.bundle.languages)}); output left empty"
                    break
        if error is not None:
            print(f"nmt: warning: {error}", file=sys.stderr)
            out[i] = (src or "", tgt or "", text, Translation([], error))
            continue
        groups.setdefault((src, tgt), []).append(i)
    for (src, tgt), ids in groups.items():
        results = translator.translate([parsed[i][2] for i in ids], src, tgt, run.decode, too_long=run.too_long,
                                       first_line_number=number, **run.engine.batching_kwargs())
        for i, result in zip(ids, results):
            if result.warning:
                # the translator numbers lines within its group; report the real line
                result.warning = f"line {number + i}: " + result.warning.split(": ", 1)[1]
                print(f"nmt: warning: {result.warning}", file=sys.stderr)
            out[i] = (src, tgt, parsed[i][2], result)
    if progress is not None:
        progress.update(len(chunk))
    if run.fmt == "jsonl":
        return [stream.format_jsonl(number + i, s, t, text, r, run.decode.nbest)
                for i, (s, t, text, r) in enumerate(out)]
    return [r.text for _, _, _, r in out]


def _translate_html(translator, chunk, number, src, tgt, run: TranslateRun, progress) -> list[str]:
    from nmt.translate.markup import translate_html

    for offset, line in enumerate(chunk):
        if line is None:
            print(f"nmt: warning: line {number + offset}: not valid UTF-8, output left empty", file=sys.stderr)
    documents, warnings = translate_html(translator, ["" if line is None else line for line in chunk], src, tgt,
                                         run.decode, too_long=run.too_long, **run.engine.batching_kwargs())
    for warning in warnings:
        print(f"nmt: warning: lines {number}-{number + len(chunk) - 1}: {warning}", file=sys.stderr)
    if progress is not None:
        progress.update(len(chunk))
    return documents


def run_translate_file(input_path, output_path, model, src, tgt, decode: DecodeOptions, engine: EngineOptions,
                       too_long: str, max_bytes: int, force: bool, quality: QualityOptions | None = None) -> None:
    """``nmt translate-file``: one document in, the same kind of document out (written atomically);
    ``quality``: MBR, reranking or pivoting of its sentences."""
    import dataclasses

    from nmt.translate.files import file_kind, translate_document

    source, target = Path(input_path), Path(output_path)
    kind = file_kind(source.name)
    if file_kind(target.name) != kind and {kind, file_kind(target.name)} != {".html", ".htm"}:
        raise NmtError(f"OUT must be a {kind} file like IN, got {target.name}")
    if not source.is_file():
        raise NmtError(f"input file {source} does not exist")
    if target.exists() and (target.resolve() == source.resolve() or not force):
        raise NmtError(f"{target} already exists; pass --force to overwrite it" if target.resolve() != source.resolve()
                       else "OUT is IN: write the translation to another file")
    if source.stat().st_size > max_bytes:
        raise NmtError(f"{source.name} is {source.stat().st_size:,} bytes; the limit is {max_bytes:,} (--max-bytes)")
    bundle = Bundle.load(model, need_checkpoint=False)
    bundle.check_language(src, "source language")
    bundle.check_language(tgt, "target language")
    decode.check()
    translator = QualityTranslator(Translator(bundle, **engine.translator_kwargs()), quality)
    whole = dataclasses.replace(decode, split_sentences="never")  # the file's sentences come already split
    notes = []

    def translate(units):
        results = translator.translate(units, src, tgt, whole, too_long=too_long, **engine.batching_kwargs())
        notes.extend(r.warning.split(": ", 1)[-1] for r in results if r.warning)
        return [r.text for r in results]

    data = translate_document(source.read_bytes(), source.name, translate, src, tgt, decode.split_sentences,
                              max_bytes)
    for note in notes:
        print(f"nmt: warning: {source.name}: {note}", file=sys.stderr)
    with atomic_open(target, "wb") as out:
        out.write(data)
    print(f"translate-file: {source} -> {target} ({len(data):,} bytes)", file=sys.stderr)
