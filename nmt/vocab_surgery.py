"""Vocabulary surgery on a model bundle: add languages, or trim the dictionary to what some text uses.

Both write a new bundle (``output``) and leave the input bundle as it was; both
edit the embedding and output-projection rows of the checkpoint
(``nmt.fairseq_backend.surgery``) and check afterwards that dictionary and
language tokens still match them.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from nmt import langs
from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.fairseq_backend.surgery import parameter_count, remap_vocabulary, save_state
from nmt.fileio import read_lines, write_lines
from nmt.pretrained import check_vocabulary_fits, expected_rows
from nmt.vocab import SPECIALS, SubwordCodec, write_dictionary


@dataclass(frozen=True)
class ExtendResult:
    added: list  # the new language codes, in token order
    languages: int  # languages of the new bundle
    parameters_before: int
    parameters_after: int


@dataclass(frozen=True)
class TrimResult:
    dictionary_before: int  # dictionary pieces (specials excluded)
    dictionary_after: int
    parameters_before: int
    parameters_after: int
    spm_pieces_marked_unused: int


# ----------------------------------------------------------------------------- language extension

def extend_languages(model, new_languages, output, init_from: dict | None = None) -> ExtendResult:
    """Add language tokens to a bundle: new rows go after the existing language tokens (before <mask>).

    A new row starts as a copy of the row of ``init_from[lang]`` (e.g. gl_ES from es_XX) when given,
    else as the mean of the existing language-token rows: a "generic language" start that fine-tuning
    then specialises, the same idea as mBART-50's extension of mBART-25.
    """
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
    bundle.extended_with = {x: init_from.get(x, "mean of language tokens") for x in new}
    bundle.save()
    check_vocabulary_fits(bundle, extended)
    return ExtendResult(added=new, languages=len(languages), parameters_before=before,
                        parameters_after=parameter_count(extended))


def _copy_bundle_files(bundle: Bundle, out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise NmtError(f"{out} exists and is not empty; choose a new output directory")
    out.mkdir(parents=True, exist_ok=True)
    for name in (bundle.spm, bundle.dictionary, "ML50_langs.txt", "config.yaml", "training.json"):
        if (bundle.path / name).is_file():
            shutil.copyfile(bundle.path / name, out / name)
    (out / bundle.checkpoint).parent.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------- vocabulary trimming

def trim_vocabulary(model, corpora, output, min_count: int = 1) -> TrimResult:
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
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    bundle = Bundle.load(model)
    state = check_vocabulary_fits(bundle)
    codec = SubwordCodec(bundle.spm_path, bundle.dict_path, bundle.normalization)
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
    n_special = len(SPECIALS)
    kept = [i for i in range(n_special, len(symbols)) if counts[i] >= min_count]
    n_lang = len(bundle.languages) + (1 if bundle.add_mask else 0)
    rows = list(range(n_special)) + kept + list(range(len(symbols), len(symbols) + n_lang))
    before = parameter_count(state)
    trimmed = remap_vocabulary(state, rows)
    out = Path(output)
    _copy_bundle_files(bundle, out)
    save_state(trimmed, out / bundle.checkpoint)
    write_dictionary(out / bundle.dictionary, [symbols[i] for i in kept], [counts[i] for i in kept])
    # sentencepiece: mark dropped pieces unused so encoding never produces them
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
    bundle.trimmed = {"kept_pieces": len(kept), "dropped_pieces": len(symbols) - n_special - len(kept),
                      "from_lines": n_lines, "min_count": min_count}
    bundle.save()
    check_vocabulary_fits(bundle, trimmed)
    return TrimResult(dictionary_before=len(symbols) - n_special, dictionary_after=len(kept),
                      parameters_before=before, parameters_after=parameter_count(trimmed),
                      spm_pieces_marked_unused=dropped)
