"""Vocabulary surgery on a model bundle: add languages (and subword pieces for their script), or trim
the dictionary to what some text uses.

Both write a new bundle (``output``) and leave the input bundle as it was; both
edit the embedding and output-projection rows of the checkpoint
(``nmt.fairseq_backend.surgery``) and check afterwards that dictionary and
language tokens still match them.

A language the model reads romanized (``nmt prepare --romanize``, or marked with
``extend_languages(romanize=...)``) is romanized wherever text in it is read here,
so its pieces are the ones the model really uses. Text files say their language by
``LANG=PATH`` or by their name (``train.bn_IN-en_XX.bn_IN``, ``ben_Beng.devtest``).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from nmt import langs
from nmt.bundle import Bundle
from nmt.data import clean, spm as spm_lib
from nmt.errors import NmtError
from nmt.fairseq_backend import binarize
from nmt.fairseq_backend.surgery import parameter_count, remap_vocabulary, save_state
from nmt.fileio import atomic_open, read_lines, write_lines
from nmt.pretrained import check_vocabulary_fits, expected_rows
from nmt.romanize import Romanization, romanize_lines
from nmt.vocab import SPECIALS, UNK, NewPieces, SubwordCodec


# ----------------------------------------------------------------------------- language extension

def extend_languages(model, new_languages, output, init_from: dict | None = None, romanize=(),
                     pieces: NewPieces | None = None) -> dict:
    """Add language tokens to a bundle: new rows go after the existing language tokens (before <mask>).

    A new row starts as a copy of the row of ``init_from[lang]`` (e.g. gl_ES from es_XX) when given,
    else as the mean of the existing language-token rows: a "generic language" start that fine-tuning
    then specialises, the same idea as mBART-50's extension of mBART-25. ``romanize`` marks languages
    (added or not) as read romanized: data prepared for fine-tuning must then romanize them.
    ``pieces`` adds subword pieces learnt from the new languages' text (``NewPieces``).
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
    romanization = _marked(bundle, romanize, bundle.languages + new)
    pieces = pieces or NewPieces()
    pieces.check()
    added_pieces = _learn_pieces(bundle, pieces, romanization) if pieces.texts else []
    state = check_vocabulary_fits(bundle)
    n_dict, _ = expected_rows(bundle.dict_path, len(bundle.languages), bundle.add_mask)
    first_lang = 4 + n_dict
    old_lang_rows = list(range(first_lang, first_lang + len(bundle.languages)))
    piece_init = _piece_rows(bundle, [piece for piece, _ in added_pieces]) if added_pieces else []
    rows = list(range(first_lang)) + [None] * len(added_pieces) + old_lang_rows + [None] * len(new)
    if bundle.add_mask:
        rows.append(first_lang + len(bundle.languages))
    first_new = first_lang + len(added_pieces)
    sources = {first_new + len(bundle.languages) + i: (
        first_lang + bundle.languages.index(init_from[lang]) if lang in init_from else None)
        for i, lang in enumerate(new)}

    def init(old, i):
        if i < first_new:  # a new piece: the mean of the rows of its old segmentation
            return old[piece_init[i - first_lang]].mean(dim=0)
        src = sources[i]
        return old[src].clone() if src is not None else old[old_lang_rows].mean(dim=0)

    before = parameter_count(state)
    extended = remap_vocabulary(state, rows, init)
    out = Path(output)
    _copy_bundle_files(bundle, out)
    save_state(extended, out / bundle.checkpoint)
    if added_pieces:
        _write_pieces(bundle, out, added_pieces)
    languages = bundle.languages + new
    if (out / "ML50_langs.txt").exists() or bundle.lang_tok_style == "mbart":
        write_lines(out / "ML50_langs.txt", languages)
    bundle.path, bundle.languages = out, languages
    bundle.extended_with = {x: init_from.get(x, "mean of language tokens") for x in new}
    if added_pieces:
        bundle.extended_with["new_pieces"] = {"pieces": len(added_pieces), "vocab_size": pieces.vocab_size,
                                              "from": [str(t) for t in pieces.texts]}
    if romanization:
        bundle.romanization = romanization.record()
    bundle.save()
    check_vocabulary_fits(bundle, extended)
    return {"added": new, "languages": len(languages), "new_pieces": len(added_pieces),
            "romanized": list(romanization.languages), "parameters_before": before,
            "parameters_after": parameter_count(extended)}


def _marked(bundle: Bundle, romanize, languages) -> Romanization:
    """The bundle's romanized languages plus ``romanize`` (each one of ``languages``)."""
    marked = bundle.romanized
    codes = tuple(dict.fromkeys([*marked.languages, *romanize]))
    for code in romanize:
        if code not in languages:
            raise NmtError(f"--romanize {code}: not one of the model's languages (nor one being added)")
    if codes == marked.languages:
        return marked
    made = Romanization(codes, marked.target)
    made.check()
    return made


def _learn_pieces(bundle: Bundle, pieces: NewPieces, romanization: Romanization) -> list[tuple[str, float]]:
    """Pieces (with scores) of a sentencepiece model learnt on ``pieces.texts`` that the bundle's lacks."""
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    lines = [x for x in _read_texts(pieces.texts, bundle, romanization, "--new-pieces-from") if x]
    lines = lines[:pieces.max_lines]
    if not lines:
        raise NmtError("--new-pieces-from: the files hold no text to learn pieces from")
    old = model_pb2.ModelProto()
    old.ParseFromString(bundle.spm_path.read_bytes())
    model_type = {1: "unigram", 2: "bpe"}.get(old.trainer_spec.model_type)
    if model_type is None:
        raise NmtError(f"{bundle.spm_path}: pieces can be added to a unigram or BPE sentencepiece model only")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            learnt = spm_lib.train(lines, Path(tmp) / "new", pieces.vocab_size, model_type,
                                   old.trainer_spec.character_coverage or 0.9995, byte_fallback=False)
        except NmtError as exc:  # in extend-langs' terms: its size option, the old model's coverage
            message = str(exc).replace("raise --vocab-size or lower --character-coverage", "raise --new-pieces")
            raise NmtError(f"--new-pieces-from: {message.replace('--vocab-size', '--new-pieces')}") from None
        proto = model_pb2.ModelProto()
        proto.ParseFromString(learnt.read_bytes())
    have = {p.piece for p in old.pieces}
    normal = model_pb2.ModelProto.SentencePiece.NORMAL
    return [(p.piece, p.score) for p in proto.pieces if p.type == normal and p.piece not in have]


def _piece_rows(bundle: Bundle, pieces: list[str]) -> list[list[int]]:
    """For each new piece, the old dictionary rows of its segmentation by the old model (all dictionary
    rows when that is only <unk>)."""
    codec = SubwordCodec(bundle.spm_path, bundle.dict_path, bundle.normalization)
    everything = list(range(len(SPECIALS), len(codec.symbols)))
    out = []
    for ids in codec.encode([piece.replace("\u2581", " ") for piece in pieces]):
        known = [i for i in ids if i != UNK]
        out.append(known or everything)
    return out


def _write_pieces(bundle: Bundle, out: Path, added: list[tuple[str, float]]) -> None:
    """Append the new pieces to the output bundle's sentencepiece model and dict.txt (before the language
    tokens, which the model appends); BPE merge scores go below every existing one."""
    from sentencepiece import sentencepiece_model_pb2 as model_pb2
    import sentencepiece as spm

    proto = model_pb2.ModelProto()
    proto.ParseFromString(bundle.spm_path.read_bytes())
    offset = min(p.score for p in proto.pieces) - 1 if proto.trainer_spec.model_type == 2 else 0.0
    for piece, score in added:
        entry = proto.pieces.add()
        entry.piece, entry.score, entry.type = piece, score + offset, model_pb2.ModelProto.SentencePiece.NORMAL
    (out / bundle.spm).write_bytes(proto.SerializeToString())
    spm.SentencePieceProcessor(model_file=str(out / bundle.spm))  # the edited model must still load
    kept = (out / bundle.dictionary).read_text(encoding="utf-8")  # the copy of the old one, counts and all
    with atomic_open(out / bundle.dictionary) as handle:
        handle.write(kept + ("" if kept.endswith("\n") or not kept else "\n")
                     + "".join(f"{piece} 1\n" for piece, _ in added))


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
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    bundle = Bundle.load(model)
    state = check_vocabulary_fits(bundle)
    codec = SubwordCodec(bundle.spm_path, bundle.dict_path, bundle.normalization)
    symbols = codec.symbols
    counts = [0] * len(symbols)
    clean_lines = [x for x in _read_texts(corpora, bundle, bundle.romanized, "--text") if x]
    n_lines = len(clean_lines)
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
    return {"dictionary_before": len(symbols) - n_special, "dictionary_after": len(kept),
            "parameters_before": before, "parameters_after": parameter_count(trimmed),
            "spm_pieces_marked_unused": dropped}


# ----------------------------------------------------------------------------- text in a language

def text_language(spec) -> tuple[str | None, Path]:
    """``LANG=PATH`` or a path -> (language, path); the language from the file name when it says one
    (``train.bn_IN-en_XX.bn_IN``, ``ben_Beng.devtest``), else None."""
    text = str(spec)
    lang, sep, path = text.partition("=")
    if sep and lang in langs.LANGUAGES:
        return lang, Path(path)
    name = Path(text).name
    suffix = name.rsplit(".", 1)[-1]
    if suffix in langs.LANGUAGES:
        return suffix, Path(text)
    flores = {x.flores: x.code for x in langs.LANGUAGES.values()}
    return flores.get(name.split(".", 1)[0]), Path(text)


def _read_texts(specs, bundle: Bundle, romanization: Romanization, option: str) -> list[str]:
    """The normalised lines of text files, romanized where their language is read romanized."""
    out = []
    for spec in specs:
        lang, path = text_language(spec)
        if lang is None and romanization:
            raise NmtError(f"{option} {spec}: which language is it? The model reads "
                           f"{', '.join(romanization.languages)} romanized, so text in them must be romanized "
                           "first; write LANG=PATH (e.g. en_XX=news.txt)")
        lines, _ = read_lines(path, on_bad_utf8="skip")
        lines = [clean.normalize(x, bundle.normalization) for x in lines if x]
        out.extend(romanize_lines(lines, lang) if lang and romanization.source(lang) else lines)
    return out
