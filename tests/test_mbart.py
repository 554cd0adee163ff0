"""mBART path on real sample text: pretrain -> download (file://) -> extend -> fine-tune -> trim,
plus the mismatch errors, safe extraction and checksum checks."""
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from conftest import SAMPLE_RAW, TINY_TRAIN, small_raw
from nmt.bundle import Bundle
from nmt.config import load_train_config
from nmt.data.manifest import PreparedData
from nmt.data.prepare import PrepareConfig, prepare
from nmt.errors import NmtError
from nmt.fairseq_backend import load_state
from nmt.pretrained import finetune_checkpoint

FAST = ["training.max_updates=30", "validation.every_updates=15", "checkpoint.every_updates=15",
        "training.warmup_updates=10"]


@pytest.fixture(scope="module")
def mono_data(tmp_path_factory):
    """Prepared sample without Russian: the pretrained model will not know ru_RU (added later)."""
    out = tmp_path_factory.mktemp("mono") / "data"
    prepare(PrepareConfig(out=str(out), raw=[str(SAMPLE_RAW)], vocab_size=4000, valid_size=100,
                          pairs="de_DE-en_XX,en_XX-de_DE,ja_XX-en_XX,en_XX-ja_XX,ko_KR-en_XX,en_XX-ko_KR"))
    return out


@pytest.fixture(scope="module")
def pretrained(mono_data, tmp_path_factory):
    from nmt.training.denoising import pretrain

    out = tmp_path_factory.mktemp("pre") / "mbart"
    cfg = load_train_config(None, TINY_TRAIN + FAST + [f"data={mono_data}"])
    pretrain(cfg, out)
    return out


def test_pretrain_writes_the_official_layout(pretrained):
    for name in ("model.pt", "dict.txt", "sentence.bpe.model", "ML50_langs.txt", "bundle.json"):
        assert (pretrained / name).is_file(), name
    bundle = Bundle.load(pretrained)
    assert bundle.kind == "denoising" and bundle.lang_tok_style == "mbart" and bundle.add_mask
    assert bundle.languages == ["de_DE", "en_XX", "ja_XX", "ko_KR"]
    state = load_state(pretrained / "model.pt")
    assert state["last_optimizer_state"] is None  # like the published model.pt: weights only
    rows = state["model"]["encoder.embed_tokens.weight"].shape[0]
    n_dict = len((pretrained / "dict.txt").read_text().splitlines())
    assert rows == 4 + n_dict + 4 + 1  # specials + pieces + [lang] x4 + <mask>
    history = json.loads((pretrained / "training.json").read_text())["validations"]
    assert history[-1]["valid_loss"] < history[0]["valid_loss"]


def _official_tarball(pretrained: Path, path: Path, extra=None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name in ("model.pt", "sentence.bpe.model", "ML50_langs.txt"):
            tar.add(pretrained / name, arcname=f"mbart50.tiny/{name}")
        for lang in Bundle.load(pretrained).languages:  # the official tarballs ship dict.{lang}.txt
            tar.add(pretrained / "dict.txt", arcname=f"mbart50.tiny/dict.{lang}.txt")
        for info, data in extra or []:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_download_from_file_url_with_checksum_and_resume(pretrained, tmp_path, monkeypatch):
    from nmt import pretrained as mbart
    from nmt.fileio import sha256_file

    monkeypatch.setenv("NMT_CACHE_DIR", str(tmp_path / "cache"))
    tarball = _official_tarball(pretrained, tmp_path / "mbart50.tiny.tar.gz")
    digest = sha256_file(tarball)
    with pytest.raises(NmtError, match="checksum mismatch"):
        mbart.download("url", tmp_path / "bad", url=tarball.as_uri(), sha256="0" * 64)
    # a half-finished earlier download is resumed, then verified
    cache = tmp_path / ".model.download"
    cache.mkdir()
    data = tarball.read_bytes()
    (cache / "mbart50.tiny.tar.gz.part").write_bytes(data[: len(data) // 2])
    bundle = mbart.download("url", tmp_path / "model", url=tarball.as_uri(), sha256=digest)
    assert bundle.languages == Bundle.load(pretrained).languages and bundle.checkpoint == "model.pt"
    assert (tmp_path / "model" / "dict.txt").read_text() == (pretrained / "dict.txt").read_text()
    assert not cache.exists()
    with pytest.raises(NmtError, match="--force"):
        mbart.download("url", tmp_path / "model", url=tarball.as_uri())
    # without a known checksum the first download's hash is recorded and enforced later
    bundle = mbart.download("url", tmp_path / "model2", url=tarball.as_uri())
    known = json.loads((tmp_path / "cache" / "known_hashes.json").read_text())
    assert known[tarball.as_uri()] == digest


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_hostile_tarballs_are_refused(pretrained, tmp_path, kind):
    from nmt import pretrained as mbart

    info = tarfile.TarInfo({"dotdot": "mbart50.tiny/../../escaped.txt", "absolute": "/tmp/nmt-escaped.txt",
                            "symlink": "mbart50.tiny/link", "hardlink": "mbart50.tiny/hard"}[kind])
    payload = b"gotcha"
    if kind == "symlink":
        info.type, info.linkname, payload = tarfile.SYMTYPE, "/etc/passwd", None
    elif kind == "hardlink":
        info.type, info.linkname, payload = tarfile.LNKTYPE, "../../etc/passwd", None
    else:
        info.size = len(payload)
    tarball = _official_tarball(pretrained, tmp_path / "evil.tar.gz", extra=[(info, payload)])
    with pytest.raises(NmtError, match="refusing"):
        mbart.download("url", tmp_path / "x" / "model", url=tarball.as_uri(), sha256=None)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/nmt-escaped.txt").exists()
    assert not (tmp_path / "x" / "model").exists()


def _prepare_for(bundle_dir: Path, out: Path, pairs: str, raw=SAMPLE_RAW) -> Path:
    prepare(PrepareConfig(out=str(out), raw=[str(raw)], pairs=pairs, valid_size=50,
                          spm_model=str(bundle_dir / "sentence.bpe.model"), dictionary=str(bundle_dir / "dict.txt"),
                          lang_list=str(bundle_dir / "ML50_langs.txt"), lang_tok_style="mbart"))
    return out


def _finetune_cfg(data, pretrained, *extra):
    training = [x for x in TINY_TRAIN if not x.startswith("model.")]  # the shape comes from the checkpoint
    return load_train_config(None, training + FAST + [f"data={data}", f"init.pretrained={pretrained}", *extra])


def test_extend_then_finetune_on_the_new_language(pretrained, tmp_path):
    from nmt.training.translation import train
    from nmt.vocab_surgery import extend_languages
    from nmt.translate.translator import Translator

    info = extend_languages(pretrained, ["ru_RU"], tmp_path / "ext", {"ru_RU": "de_DE"})
    assert info.added == ["ru_RU"] and info.parameters_after > info.parameters_before
    extended = Bundle.load(tmp_path / "ext")
    assert extended.languages[-1] == "ru_RU"
    old = load_state(pretrained / "model.pt")["model"]["encoder.embed_tokens.weight"]
    new = load_state(tmp_path / "ext" / "model.pt")["model"]["encoder.embed_tokens.weight"]
    n = old.shape[0]
    assert new.shape[0] == n + 1
    assert (new[: n - 1] == old[: n - 1]).all() and (new[-1] == old[-1]).all()  # <mask> stays last
    assert (new[n - 1] == old[n - 1 - 4]).all()  # ru_RU starts as a copy of de_DE's token
    data = _prepare_for(tmp_path / "ext", tmp_path / "data", "ru_RU-en_XX,en_XX-ru_RU")
    cfg = _finetune_cfg(data, tmp_path / "ext")
    manifest = train(cfg, tmp_path / "ft")
    assert manifest.updates == 30
    bundle = Bundle.load(tmp_path / "ft")
    assert bundle.lang_tok_style == "mbart" and "en_XX-ru_RU" in bundle.directions
    out = Translator(bundle, backend="fairseq").translate_text(["Tom is reading a book."], "en_XX", "ru_RU")
    assert len(out) == 1


def test_finetune_refuses_mismatched_data(pretrained, mono_data, tmp_path):
    from nmt.training.translation import train

    # data prepared with its own sentencepiece/dictionary and multilingual tokens
    with pytest.raises(NmtError, match="language tokens|dictionary|sentencepiece|language list") as info:
        train(_finetune_cfg(mono_data, pretrained), tmp_path / "a")
    assert "--spm-model" in str(info.value) and "--lang-list" in str(info.value)
    # data whose language list has a language the model lacks
    data = _prepare_for(pretrained, tmp_path / "d1", "de_DE-en_XX", raw=SAMPLE_RAW)
    raw = small_raw(tmp_path, langs=("ru_RU",))
    lang_list = tmp_path / "langs.txt"
    lang_list.write_text("de_DE\nen_XX\nja_XX\nko_KR\nru_RU\n")
    prepare(PrepareConfig(out=str(tmp_path / "d2"), raw=[str(raw)], valid_size=20,
                          spm_model=str(pretrained / "sentence.bpe.model"), dictionary=str(pretrained / "dict.txt"),
                          lang_list=str(lang_list), lang_tok_style="mbart"))
    with pytest.raises(NmtError, match="the model lacks ru_RU"):
        train(_finetune_cfg(tmp_path / "d2", pretrained), tmp_path / "b")
    # an architecture change is refused
    with pytest.raises(NmtError, match="cannot change a pretrained architecture"):
        train(_finetune_cfg(data, pretrained, "model.embed_dim=256"), tmp_path / "c")
    # repeating the checkpoint's own shape (a finished run's config.yaml does) changes nothing
    same = _finetune_cfg(data, pretrained, "model.embed_dim=64", "model.encoder_layers=1", "model.heads=2")
    assert finetune_checkpoint(same, PreparedData.load(data)).checkpoint == str(pretrained / "model.pt")


def test_dictionary_size_mismatch_is_explained(pretrained, tmp_path):
    from nmt.pretrained import check_vocabulary_fits

    shutil.copytree(pretrained, tmp_path / "m")
    lines = (tmp_path / "m" / "dict.txt").read_text().splitlines()
    (tmp_path / "m" / "dict.txt").write_text("\n".join(lines[:-1]) + "\n")
    bundle = Bundle.load(tmp_path / "m", verify=False)
    with pytest.raises(NmtError, match=r"embedding rows but 4 specials \+ \d+ dictionary symbols"):
        check_vocabulary_fits(bundle)


def test_trim_keeps_translations_identical(trained_bundle, tmp_path):
    from nmt.vocab_surgery import trim_vocabulary
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator

    texts = [SAMPLE_RAW / f"train.de_DE-en_XX.{x}" for x in ("de_DE", "en_XX")]
    info = trim_vocabulary(trained_bundle, texts, tmp_path / "trim")
    assert info.dictionary_after < info.dictionary_before
    assert info.parameters_after < info.parameters_before
    lines = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text().splitlines()[:80]
    before = Translator(trained_bundle, backend="fairseq")
    after = Translator(tmp_path / "trim", backend="fairseq")
    # text covered by the kept vocabulary: segmentation and greedy translations are unchanged
    covered = [x for x in lines if 3 not in after.codec.encode([x])[0]
               and before.codec.ids_to_pieces(before.codec.encode([x])[0])
               == after.codec.ids_to_pieces(after.codec.encode([x])[0])]
    assert len(covered) >= 40
    greedy = DecodeOptions(beam=1, split_sentences="never")
    # a greedy output is the argmax at every step: where every piece the full model chose was kept, the
    # trimmed model (the same scores, fewer rows) chooses the same pieces (a weak model may choose a
    # piece of another language, which the trimmed vocabulary no longer has)
    kept = {line.split(" ", 1)[0] for line in (tmp_path / "trim" / "dict.txt").read_text().splitlines()}
    full = before.translate(covered, "de_DE", "en_XX", options=greedy)
    same = [i for i, t in enumerate(full) if set(t.hypotheses[0].tokens) <= kept]
    assert len(same) >= 30
    trimmed = after.translate([covered[i] for i in same], "de_DE", "en_XX", options=greedy)
    assert [t.text for t in trimmed] == [full[i].text for i in same]


def test_ctranslate2_export_of_a_model_pt_bundle_survives_a_copy(pretrained, tmp_path):
    from nmt.export import export_ctranslate2
    from nmt.translate.translator import Translator

    bundle_dir = tmp_path / "mbart"
    shutil.copytree(pretrained, bundle_dir)
    out = export_ctranslate2(bundle_dir, "int8")
    assert Bundle.load(bundle_dir).export_is_current(out)  # checkpoint at the bundle root (model.pt)
    copy = tmp_path / "copied"  # copied without keeping modification times (as cp -r or scp do)
    shutil.copytree(bundle_dir, copy, copy_function=shutil.copyfile)
    assert Translator(copy).backend_name == "ctranslate2"
    state = load_state(copy / "model.pt")
    state["model"]["encoder.embed_tokens.weight"][5] += 1  # a different checkpoint of the same size
    from nmt.fairseq_backend.surgery import save_state

    save_state(state, copy / "model.pt")
    assert Translator(copy).backend_name == "fairseq"
