"""Synthetic corpora in nmt prepare: tagged back-translation, distilled data, the real/synthetic ratio,
and a tag that training keeps and translation never outputs."""
import json

import pytest

from conftest import SAMPLE_RAW, TINY_TRAIN, run_nmt, small_raw
from nmt.data import corpus
from nmt.data.prepare import PrepareConfig, prepare
from nmt.errors import NmtError
from nmt.data.indexed import read_indexed
from nmt.vocab import read_dictionary


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def _bt_corpus(tmp_path, n=300):
    """A back-translated-looking de_DE-en_XX corpus from real text: English from the ja_XX pair (the
    'monolingual' side) and German sentences from the de_DE test split as the machine-made side."""
    english = _lines(SAMPLE_RAW / "train.ja_XX-en_XX.en_XX")[:n]
    german = (_lines(SAMPLE_RAW / "train.de_DE-en_XX.de_DE")[-n:])
    (tmp_path / "bt").mkdir()
    (tmp_path / "bt" / "mono.de_DE").write_text("\n".join(german) + "\n", encoding="utf-8")
    (tmp_path / "bt" / "mono.en_XX").write_text("\n".join(english) + "\n", encoding="utf-8")
    return english, german


def _manifest(tmp_path, body: str):
    path = tmp_path / "synthetic.yaml"
    path.write_text(body, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tagged")
    raw = small_raw(tmp_path, langs=("de_DE",), n=400)
    _bt_corpus(tmp_path)
    manifest = _manifest(tmp_path, "synthetic:\n  de_DE-en_XX:\n    - corpus: bt/mono\n"
                                   "      kind: back-translation\n")
    out = tmp_path / "out"
    result = prepare(PrepareConfig(out=str(out), raw=[str(raw)], manifest=manifest, vocab_size=600, valid_size=20,
                                   workers=1))
    return out, result


def test_tagged_back_translation_binaries(tagged):
    out, manifest = tagged
    assert list(manifest.tags) == [corpus.BT_TAG]
    symbols = read_dictionary(out / "bin" / "dict.txt")
    assert symbols[-1] == corpus.BT_TAG and symbols.count(corpus.BT_TAG) == 1
    tag = len(symbols) - 1
    de_en = manifest.directions["de_DE-en_XX"]
    en_de = manifest.directions["en_XX-de_DE"]
    assert de_en.train_real == en_de.train == manifest.raw["pairs"]["de_DE-en_XX"]["train"]["kept"]
    assert de_en.train_synthetic == de_en.synthetic["available"] > 250
    assert de_en.train == de_en.train_real + de_en.train_synthetic
    assert de_en.synthetic["tagged"] is True and de_en.synthetic["kind"] == "back-translation"
    clean = json.loads((out / "clean" / "stage.json").read_text())
    assert clean["synthetic"]["de_DE-en_XX"]["train"]["kept"] == de_en.train_synthetic
    # de->en: the real pairs, then the synthetic ones with the tag in front of the source only
    src = read_indexed(out / "bin" / "train.de_DE-en_XX.de_DE")
    tgt = read_indexed(out / "bin" / "train.de_DE-en_XX.en_XX")
    real, synthetic = de_en.train_real, de_en.train_synthetic
    assert len(src) == len(tgt) == real + synthetic
    assert all(s[0] != tag for s in src[:real]) and all(s[0] == tag for s in src[real:])
    assert sum(int((s == tag).sum()) for s in src) == synthetic
    assert all(tag not in t for t in tgt)
    # en->de reads its own files (fairseq looks for src-tgt names first): real pairs only, untagged
    back = read_indexed(out / "bin" / "train.en_XX-de_DE.en_XX")
    assert len(back) == real and all(tag not in s for s in back)
    assert [x.tolist() for x in back] == [x.tolist() for x in tgt[:real]]
    # the synthetic text went through the same cleaning, and evaluation overlap removal
    assert (out / "clean" / "synthetic" / "train.de_DE-en_XX.de_DE").is_file()


def test_synthetic_ratio_takes_a_fixed_uniform_sample(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",), n=400)
    _bt_corpus(tmp_path)
    manifest = _manifest(tmp_path, "synthetic_ratio: 0.25\nsynthetic:\n  de_DE-en_XX:\n    - corpus: bt/mono\n")
    runs = []
    for name in ("a", "b"):
        result = prepare(PrepareConfig(out=str(tmp_path / name), raw=[str(raw)], manifest=manifest, vocab_size=600,
                                       valid_size=20, workers=1))
        info = result.directions["de_DE-en_XX"]
        assert info.train_synthetic == int(0.25 * info.train_real) < info.synthetic["available"]
        assert info.synthetic["ratio"] == 0.25
        runs.append([x.tolist() for x in read_indexed(tmp_path / name / "bin" / "train.de_DE-en_XX.en_XX")])
    assert runs[0] == runs[1]
    # --synthetic-ratio overrides the manifest's
    result = prepare(PrepareConfig(out=str(tmp_path / "c"), raw=[str(raw)], manifest=manifest, vocab_size=600,
                                   valid_size=20, workers=1, synthetic_ratio=10.0))
    info = result.directions["de_DE-en_XX"]
    assert info.train_synthetic == info.synthetic["available"]


def test_forward_translation_is_untagged_and_direction_only(tmp_path):
    raw = small_raw(tmp_path, langs=("de_DE",), n=400)
    _bt_corpus(tmp_path)
    manifest = _manifest(tmp_path, "synthetic:\n  en_XX-de_DE:\n    - corpus: {tsv: ft.tsv}\n"
                                   "      kind: forward-translation\n")
    en, de = _lines(tmp_path / "bt" / "mono.en_XX"), _lines(tmp_path / "bt" / "mono.de_DE")
    (tmp_path / "ft.tsv").write_text("".join(f"{x}\t{y}\n" for x, y in zip(en, de)), encoding="utf-8")
    result = prepare(PrepareConfig(out=str(tmp_path / "out"), raw=[str(raw)], manifest=manifest, vocab_size=600,
                                   valid_size=20, workers=1, pairs="en_XX-de_DE"))
    assert list(result.tags) == []
    assert corpus.BT_TAG not in read_dictionary(tmp_path / "out" / "bin" / "dict.txt")
    info = result.directions["en_XX-de_DE"]
    assert info.synthetic["tagged"] is False and info.train_synthetic > 250
    assert len(read_indexed(tmp_path / "out" / "bin" / "train.en_XX-de_DE.en_XX")) == info.train
    assert not (tmp_path / "out" / "bin" / "train.de_DE-en_XX.de_DE.bin").exists()  # de->en not prepared


@pytest.mark.parametrize("body, message", [
    ("synthetic:\n  de_DE-en_XX:\n    - corpus: bt/mono\n      kind: paraphrase\n", "kind 'paraphrase'"),
    ("synthetic:\n  de_DE-en_XX:\n    - bt/mono\n", "must be a mapping with 'corpus:'"),
    ("synthetic:\n  de_DE-en_XX:\n    - corpus: bt/mono\n      tag: maybe\n", "tag must be true or false"),
    ("synthetic_ratio: -1\nsynthetic:\n  de_DE-en_XX:\n    - corpus: bt/mono\n", "positive number"),
    ("synthetic:\n  de_DE-en_XX:\n    - corpus: bt/missing\n", "missing file"),
    ("synthetic:\n  ja_XX-en_XX:\n    - corpus: bt/mono\n", "ja_XX-en_XX"),
    ("synthetic:\n  de_DE-en_XX:\n    - corpus: bt/mono\n    - corpus: bt/mono\n      tag: false\n", "mixes"),
    ("synthetic: {}\nextra: 1\n", "unknown top-level key"),
])
def test_bad_synthetic_manifests(tmp_path, body, message):
    raw = small_raw(tmp_path, langs=("de_DE",), n=400)
    _bt_corpus(tmp_path)
    (tmp_path / "bt" / "mono.ja_XX").write_text("x\n")
    with pytest.raises(NmtError) as info:
        prepare(PrepareConfig(out=str(tmp_path / "out"), raw=[str(raw)], manifest=_manifest(tmp_path, body),
                              vocab_size=600, valid_size=20, workers=1))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_given_dictionary_gets_the_tag_appended(tagged, tmp_path):
    out, _ = tagged
    raw = small_raw(tmp_path, langs=("de_DE",), n=400)
    _bt_corpus(tmp_path)
    given = read_dictionary(out / "spm" / "dict.txt")
    result = prepare(PrepareConfig(out=str(tmp_path / "out"), raw=[str(raw)], workers=1, valid_size=20,
                                   manifest=_manifest(tmp_path, "synthetic:\n  de_DE-en_XX: [{corpus: bt/mono}]\n"),
                                   spm_model=str(out / "spm" / "spm.model"), dictionary=str(out / "spm" / "dict.txt")))
    assert list(result.tags) == [corpus.BT_TAG]
    assert read_dictionary(tmp_path / "out" / "bin" / "dict.txt") == given + [corpus.BT_TAG]


def test_codec_never_outputs_the_tag(tagged):
    from nmt.vocab import SubwordCodec

    out, _ = tagged
    codec = SubwordCodec(out / "spm" / "spm.model", out / "bin" / "dict.txt", tags=[corpus.BT_TAG])
    plain = SubwordCodec(out / "spm" / "spm.model", out / "bin" / "dict.txt")
    ids = codec.encode(["Das ist ein kleiner Test."])[0]
    tag = codec.symbols.index(corpus.BT_TAG)
    with_tag = [tag] + ids[:2] + [tag] + ids[2:]
    assert codec.decode(with_tag) == codec.decode(ids) == "Das ist ein kleiner Test."
    assert "⁇" in plain.decode(with_tag)  # what the tag would print as without the bundle's list
    assert corpus.BT_TAG not in codec.ids_to_pieces(codec.output_ids(with_tag))


@pytest.mark.slow  # trains and exports its own model; CI runs it with -m slow
def test_trained_bundle_keeps_the_tag_and_translation_suppresses_it(tagged, tmp_path):
    """Train a few updates on the tagged data: the bundle lists the tag, CTranslate2 is told never to
    generate it, and translations come out without it (both backends)."""
    out, _ = tagged
    run = tmp_path / "run"
    sets = TINY_TRAIN + ["training.max_updates=30", "validation.every_updates=30", "checkpoint.every_updates=30"]
    result = run_nmt("train", "--data", out, "-o", run, *[x for s in sets for x in ("--set", s)])
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = json.loads((run / "bundle.json").read_text())
    assert bundle["tags"] == [corpus.BT_TAG]
    assert read_dictionary(run / "dict.txt")[-1] == corpus.BT_TAG
    result = run_nmt("export", "-m", run, "--quantization", "int8")
    assert result.returncode == 0, result.stderr[-2000:]
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator

    sources = _lines(SAMPLE_RAW / "test.de_DE-en_XX.de_DE")[:20]
    for backend in ("fairseq", "ctranslate2"):
        translator = Translator(run, backend=backend, threads=1)
        if backend == "ctranslate2":
            _, kwargs = translator.backend._request([translator.codec.encode(sources[:1])[0]], "de_DE", "en_XX",
                                                     DecodeOptions())
            # the tag, besides the symbols no translation may hold (padding, start: see README "Unknown words")
            assert [corpus.BT_TAG] in kwargs["suppress_sequences"]
        outputs = translator.translate_text(sources, "de_DE", "en_XX", options=DecodeOptions(beam=2, nbest=2))
        assert len(outputs) == len(sources)
        assert not any(corpus.BT_TAG in line or "⁇" in line for line in outputs)
    # an old bundle.json without "tags" still loads (no tags)
    meta = json.loads((run / "bundle.json").read_text())
    del meta["tags"]
    (run / "bundle.json").write_text(json.dumps(meta))
    from nmt.bundle import Bundle

    assert Bundle.load(run).tags == []


# ---------------------------------------------------------------- filtering a teacher's output

def _translations(tmp_path, n=200):
    src = _lines(SAMPLE_RAW / "train.de_DE-en_XX.de_DE")[:n]
    hyp = _lines(SAMPLE_RAW / "train.de_DE-en_XX.en_XX")[:n]
    hyp[3] = ""  # a line the translator skipped
    hyp[5] = " ".join([hyp[5]] * 6)  # a runaway output
    scores = [-0.1 - (i % 17) / 10 for i in range(n)]
    (tmp_path / "src.de").write_text("\n".join(src) + "\n", encoding="utf-8")
    (tmp_path / "hyp.en").write_text("\n".join(hyp) + "\n", encoding="utf-8")
    (tmp_path / "hyp.en.scores").write_text("".join(f"{s:.4f}\n" for s in scores), encoding="utf-8")
    return src, hyp, scores


def test_filter_translations_drops_worst_scores_empty_and_runaway(tmp_path):
    src, hyp, scores = _translations(tmp_path)
    result = run_nmt("data", "filter-translations", "--src", tmp_path / "src.de", "--hyp", tmp_path / "hyp.en",
                     "--src-lang", "de_DE", "--tgt-lang", "en_XX", "--scores", tmp_path / "hyp.en.scores",
                     "--drop-worst", "0.1", "--max-ratio", "3", "-o", tmp_path / "kept")
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "kept.filter.json").read_text())
    worst = sorted(range(len(scores)), key=lambda i: (scores[i], i))[:20]
    assert info["dropped"]["score"] == 20 and info["score_threshold"] == pytest.approx(scores[worst[-1]], abs=1e-4)
    assert 3 not in worst and 5 not in worst  # the empty and the runaway line go for their own reasons

    def words(text):
        return len(text.split())

    expected = [i for i in range(len(src)) if i not in worst and hyp[i]
                and max(words(src[i]), words(hyp[i])) <= 3 * max(1, min(words(src[i]), words(hyp[i])))]
    assert 5 not in expected
    assert _lines(tmp_path / "kept.de_DE") == [src[i] for i in expected]
    assert _lines(tmp_path / "kept.en_XX") == [hyp[i] for i in expected]
    assert info["kept"] == len(expected) and info["dropped"]["empty"] == 1
    assert info["dropped"]["ratio"] == len(src) - 20 - 1 - len(expected)


@pytest.mark.parametrize("args, message", [
    (["--drop-worst", "0.1"], "needs --scores"),
    (["--drop-worst", "1.5", "--scores", "hyp.en.scores"], "share in [0, 1)"),
    (["--max-ratio", "0.5"], "must be >= 1"),
    (["--scores", "src.de", "--drop-worst", "0.1"], "is not a score"),
])
def test_filter_translations_errors(tmp_path, args, message):
    _translations(tmp_path)
    args = [str(tmp_path / a) if a.endswith((".scores", ".de")) else a for a in args]
    result = run_nmt("data", "filter-translations", "--src", tmp_path / "src.de", "--hyp", tmp_path / "hyp.en",
                     "--src-lang", "de_DE", "--tgt-lang", "en_XX", *args, "-o", tmp_path / "kept")
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "kept.de_DE").exists()


def test_filter_translations_refuses_misaligned_files(tmp_path):
    _translations(tmp_path)
    (tmp_path / "hyp.en").write_text("only one line\n", encoding="utf-8")
    result = run_nmt("data", "filter-translations", "--src", tmp_path / "src.de", "--hyp", tmp_path / "hyp.en",
                     "--src-lang", "de_DE", "--tgt-lang", "en_XX", "-o", tmp_path / "kept")
    assert result.returncode != 0 and "line-aligned" in result.stderr
