"""nmt translate: line alignment, bad lines, n-best, language errors, backend agreement, streaming."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import SAMPLE_RAW, run_nmt
from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions
from nmt.translate.translator import Translator

DE = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
EN = (SAMPLE_RAW / "test.ja_XX-en_XX.en_XX").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def exported(exported_bundle):
    """The trained tiny bundle's copy with float32 and int8 CTranslate2 exports (conftest)."""
    return exported_bundle


def test_alignment_with_empty_bad_and_too_long_lines(trained_bundle, tmp_path):
    src = tmp_path / "in.de"
    long_line = " ".join(["Haus"] * 400).encode()  # far beyond the tiny model's 256 positions
    lines = [DE[0].encode(), b"", DE[1].encode(), b"kaputt \xff\xfe", long_line, b"   ", DE[2].encode()]
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.en"
    result = run_nmt("translate", "-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", src, "-o", out,
                     "--backend", "fairseq", "--beam", "2")
    assert result.returncode == 0, result.stderr[-1500:]
    got = out.read_text(encoding="utf-8").split("\n")
    assert got[-1] == "" and len(got) - 1 == len(lines)
    got = got[:-1]
    assert got[1] == "" and got[3] == "" and got[4] == "" and got[5] == ""
    assert all(got[i] for i in (0, 2, 6))
    assert "line 4: not valid UTF-8" in result.stderr
    assert "line 5:" in result.stderr and "limit of" in result.stderr
    # --too-long truncate translates the long line instead
    result = run_nmt("translate", "-m", trained_bundle, "-s", "de_DE", "-t", "en_XX", "-i", src,
                     "--too-long", "truncate", "--beam", "1")
    assert result.stdout.split("\n")[4] != ""


def test_nbest_jsonl_shape(trained_bundle):
    result = run_nmt("translate", "-m", trained_bundle, "-s", "en_XX", "-t", "de_DE", "--beam", "4", "--nbest", "3",
                     "--format", "jsonl", "--backend", "fairseq", input="\n".join(EN[:5]) + "\n")
    assert result.returncode == 0, result.stderr[-1500:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]
    for record in records:
        assert len(record["nbest"]) == 3
        scores = [h["score"] for h in record["nbest"]]
        assert scores == sorted(scores, reverse=True)
        assert record["translation"] == record["nbest"][0]["translation"]
        assert record["tgt_lang"] == "de_DE"


def test_unknown_language_lists_model_languages(trained_bundle):
    result = run_nmt("translate", "-m", trained_bundle, "-s", "en_XX", "-t", "fr_XX", input="Hello\n")
    assert result.returncode == 2
    assert "fr_XX" in result.stderr and "de_DE, en_XX, ja_XX, ko_KR, ru_RU" in result.stderr
    assert result.stderr.count("\n") == 1
    with pytest.raises(NmtError, match="'xx_YY' is not one of this model's languages: de_DE, en_XX"):
        Translator(trained_bundle, backend="fairseq").translate(["x"], "en_XX", "xx_YY")
    with pytest.raises(NmtError, match="nbest"):
        DecodeOptions(beam=2, nbest=3).check()


def test_target_language_token_is_forced(trained_bundle):
    """Every hypothesis starts with the target-language token (stripped from the text)."""
    translator = Translator(trained_bundle, backend="fairseq")
    generator = translator.backend.generator
    import torch

    seen = []
    original = generator._generator

    def spy(*args, **kwargs):
        sequence_generator = original(*args, **kwargs)
        real = sequence_generator.generate

        def generate(models, sample, prefix_tokens=None, **kw):
            seen.append(prefix_tokens)
            return real(models, sample, prefix_tokens=prefix_tokens, **kw)

        sequence_generator.generate = generate
        return sequence_generator

    generator._generator = spy
    translator.translate(EN[:3], "en_XX", "ja_XX", DecodeOptions(beam=2))
    # (a batch holds lines of one output length cap, so the three lines may come in several batches)
    firsts = torch.cat([prefix[:, 0] for prefix in seen]) if seen else torch.tensor([])
    assert torch.equal(firsts, torch.full((3,), generator.lang_ids["ja_XX"]))


def test_a_non_empty_source_never_gets_an_empty_translation(trained_bundle, exported):
    """A weak model may answer a source like "@user2" with </s> at once (6 of 997 WMT24 en-de paragraphs
    with the 30-CPU-minute model); </s> is barred from the first step after the language token."""
    translator = Translator(trained_bundle, backend="fairseq")
    generator = translator.backend.generator
    eos = generator.dictionary.eos()

    def prefer_eos(module, inputs, output):  # a model whose first choice is always </s>
        output[..., eos] += 1e4
        return output

    hook = generator.model.decoder.output_projection.register_forward_hook(prefer_eos)
    try:
        for options in (DecodeOptions(beam=1), DecodeOptions(beam=3, nbest=2)):
            results = translator.translate(["@user2", EN[0], "42"], "en_XX", "de_DE", options)
            for result in results:
                assert all(h.tokens and h.text.strip() for h in result.hypotheses), result
    finally:
        hook.remove()
    # nor a run of language tokens after the forced one (they are stripped from the text: the quickstart's
    # 6-minute model answered a WMT24 line with nothing else, and nmt package refused the empty line)
    lang_ids = list(generator.lang_ids.values())

    def prefer_language_tokens(module, inputs, output):
        output[..., lang_ids] += 1e4
        return output

    hook = generator.model.decoder.output_projection.register_forward_hook(prefer_language_tokens)
    try:
        for options in (DecodeOptions(beam=1), DecodeOptions(beam=3, nbest=2)):
            for result in translator.translate(["@user2", EN[0]], "en_XX", "de_DE", options):
                assert all(h.text.strip() for h in result.hypotheses), result
    finally:
        hook.remove()
    # CTranslate2 counts the forced language token in its minimum length too, and suppresses every
    # language token at the free steps (the forced prefix is still decoded)
    ct2 = Translator(exported, backend="ctranslate2")
    _, kwargs = ct2.backend._request(ct2.codec.encode(["@user2"]), "en_XX", "de_DE", DecodeOptions())
    assert kwargs["min_decoding_length"] == 1 + len(kwargs["target_prefix"][0])
    suppressed = {tuple(seq) for seq in kwargs["suppress_sequences"]}
    assert {(token,) for token in ct2.backend.lang_tokens.values()} <= suppressed
    raw = ct2.backend._load(None).translate_batch(
        [["__en_XX__", "▁@"]], target_prefix=kwargs["target_prefix"][:1],
        suppress_sequences=kwargs["suppress_sequences"], max_decoding_length=8)
    assert raw[0].hypotheses[0][0] == "__de_DE__"


def test_backends_agree_at_float32_greedy(exported):
    options = DecodeOptions(beam=1)
    fairseq = Translator(exported, backend="fairseq")
    ct2 = Translator(exported, backend="ctranslate2", quantization="float32")
    n = ct2.backend.batch_sentences(options)
    for src, tgt, lines in (("de_DE", "en_XX", DE[:60]), ("en_XX", "ja_XX", EN[:60])):
        # the output length cap is per batch (fairseq's rule): same batches, same output
        a = fairseq.translate_text(lines, src, tgt, options=options, max_batch_sentences=n)
        b = ct2.translate_text(lines, src, tgt, options=options)
        assert a == b
    assert Translator(exported).backend_name == "ctranslate2"  # auto prefers the (fresh) export


def test_ctranslate2_batch_size_follows_model_width_and_beam(exported, tmp_path):
    """On CPU the default batch holds 2,621,440 // (beam x model width^2) sentences; the
    width comes from the export's record, or from the bundle's preset for older exports."""
    from nmt.fileio import read_json, write_json

    export = exported / "ctranslate2-float32"
    width = read_json(export / "nmt_export.json")["decoder_embed_dim"]
    assert width == 64  # the checkpoint's own width (conftest's TINY_TRAIN), not the tiny preset's 128
    backend = Translator(exported, backend="ctranslate2", quantization="float32").backend
    assert backend.model_dim == width
    # width 64: 640 // beam, at most 64
    assert [backend.batch_sentences(DecodeOptions(beam=beam)) for beam in (1, 5, 20, 80, 700)] == [64, 64, 32, 8, 1]
    assert backend.batch_sentences(DecodeOptions(beam=20, sampling=True)) == 64
    # an export made before the width was recorded: the preset's width
    old = tmp_path / "old"
    shutil.copytree(exported, old)
    info = read_json(old / "ctranslate2-float32" / "nmt_export.json")
    del info["decoder_embed_dim"]
    write_json(old / "ctranslate2-float32" / "nmt_export.json", info)
    bundle = read_json(old / "bundle.json")
    bundle["extra"]["preset"] = "base"
    write_json(old / "bundle.json", bundle)
    old_backend = Translator(old, backend="ctranslate2", quantization="float32").backend
    assert old_backend.model_dim == 512 and old_backend.batch_sentences(DecodeOptions(beam=5)) == 2
    assert old_backend.batch_sentences(DecodeOptions(beam=10)) == 1


def test_cli_batch_sentences_reaches_the_translator(exported, monkeypatch, tmp_path):
    # the output never depends on the batching (the length cap is per sentence), so the batches are watched
    from click.testing import CliRunner

    from nmt.cli import main

    lines = DE[:9] + [""] + DE[9:14]
    translator = Translator(exported, backend="ctranslate2", quantization="float32")
    want = translator.translate_text(lines, "de_DE", "en_XX", options=DecodeOptions(beam=1))
    planned = []
    real_plan = Translator.plan

    def plan(self, work, options, batch_tokens=4000, max_batch_sentences=None):
        batches = real_plan(self, work, options, batch_tokens, max_batch_sentences)
        planned.append((max_batch_sentences, [len(batch) for batch in batches]))
        return batches

    monkeypatch.setattr(Translator, "plan", plan)
    source, out = tmp_path / "in.de", tmp_path / "out.en"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["translate", "-m", str(exported), "-s", "de_DE", "-t", "en_XX", "--backend",
                                       "ctranslate2", "--quantization", "float32", "--beam", "1", "-i", str(source),
                                       "-o", str(out), "--batch-sentences", "3", "--split-sentences", "never"])
    assert result.exit_code == 0, result.output[-1500:]
    assert planned and all(limit == 3 and max(sizes) <= 3 for limit, sizes in planned)
    assert sum(sum(sizes) for _, sizes in planned) == 14  # every non-empty line, once
    assert out.read_text(encoding="utf-8").split("\n")[:-1] == want and want[9] == ""
    bad = run_nmt("translate", "-m", exported, "-s", "de_DE", "-t", "en_XX", "--batch-sentences", "-1", input="x\n")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_ctranslate2_parallel_batches_keep_order(exported):
    """Batches decoded two at a time come back in input order, identical to one at a time."""
    from nmt.translate.backends import ctranslate2_threads

    assert ctranslate2_threads(1) == (1, 1) and ctranslate2_threads(2) == (2, 1) and ctranslate2_threads(16) == (4, 4)
    lines = DE[:45] + [""] + DE[45:60]
    serial = Translator(exported, backend="ctranslate2", quantization="float32", threads=1)
    parallel = Translator(exported, backend="ctranslate2", quantization="float32", threads=2)
    assert serial.backend.parallel == 1 and parallel.backend.parallel == 2
    for beam in (1, 3):
        options = DecodeOptions(beam=beam)
        want = serial.translate_text(lines, "de_DE", "en_XX", options=options, max_batch_sentences=4)
        got = parallel.translate_text(lines, "de_DE", "en_XX", options=options, max_batch_sentences=4)
        assert got == want and len(got) == 61 and got[45] == "" and sum(bool(x) for x in got) == 60


def test_int8_export_translates_every_line(exported):
    out = Translator(exported, backend="ctranslate2", quantization="int8").translate_text(DE[:30], "de_DE", "en_XX")
    assert len(out) == 30 and sum(bool(x) for x in out) == 30


def test_stale_export_is_not_used(exported, tmp_path):
    import shutil

    from nmt.bundle import Bundle

    copy = tmp_path / "bundle"
    shutil.copytree(exported, copy)
    bundle = Bundle.load(copy)
    bundle.checkpoint = "checkpoints/checkpoint_150.pt"  # another checkpoint became the default
    bundle.save()
    assert Translator(copy).backend_name == "fairseq"
    with pytest.raises(NmtError, match="re-run nmt export"):
        Translator(copy, backend="ctranslate2", quantization="int8")


def test_streaming_through_a_pipe_line_by_line(trained_bundle):
    proc = subprocess.Popen([sys.executable, "-m", "nmt.cli", "translate", "-m", trained_bundle, "-s", "de_DE",
                             "-t", "en_XX", "--backend", "fairseq", "--beam", "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in DE[:3]:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()  # arrives before the next line is even sent
            assert answer.endswith("\n") and answer.strip()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "\n"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_tsv_mixed_directions_and_multiple_targets(trained_bundle, tmp_path):
    tsv = "de_DE\ten_XX\t{}\nen_XX\tja_XX\t{}\nen_XX\tfr_XX\tBonjour\nbroken line\nen_XX\tru_RU\t{}\n".format(
        DE[0], EN[0], EN[1])
    result = run_nmt("translate", "-m", trained_bundle, "--tsv", "--backend", "fairseq", input=tsv)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 5 and lines[2] == "" and lines[3] == ""
    assert "line 3: target language 'fr_XX'" in result.stderr and "line 4: expected" in result.stderr
    src = tmp_path / "in.en"
    src.write_text("\n".join(EN[:4]) + "\n")
    result = run_nmt("translate", "-m", trained_bundle, "-s", "en_XX", "-t", "de_DE,ko_KR", "-i", src,
                     "-o", tmp_path / "out.{tgt}.txt", "--backend", "fairseq", "--beam", "1")
    assert result.returncode == 0, result.stderr
    for tgt in ("de_DE", "ko_KR"):
        assert len((tmp_path / f"out.{tgt}.txt").read_text().splitlines()) == 4
    result = run_nmt("translate", "-m", trained_bundle, "-s", "en_XX", "-t", "de_DE,ko_KR", input="Hi\n")
    assert result.returncode == 2 and "--format jsonl" in result.stderr


def test_python_api(trained_bundle):
    import nmt

    translator = nmt.Translator(trained_bundle, backend="fairseq")
    out = translator.translate(["", DE[0], None], "de_DE", "en_XX")
    assert len(out) == 3 and out[0].text == "" and out[1].text and out[2].warning
