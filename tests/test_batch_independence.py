"""A line's translation does not depend on the lines it is batched with.

The output length cap used to be ``1.5 * longest source of the batch + 10``: a weak model's
runaway outputs ran to a cap set by other sentences, so ``translate-corpus --chunk-lines``
changed 215 of 5,000 lines against ``nmt translate`` and 64 concurrent ``nmt serve`` clients
881 of 1,012 FLORES lines. The cap is now per sentence (``DecodeOptions.max_len``) and a batch
holds one cap, so every way of batching gives the same text. The tiny test model is weak: most
of its outputs run to the cap, which makes the test sharp."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SAMPLE_FLORES, run_nmt
from nmt.translate.backends import DecodeOptions
from nmt.translate.corpus import CorpusJob, translate_corpus
from nmt.translate.translator import Translator
from test_serve import call, exported, serving  # noqa: F401

LINES = SAMPLE_FLORES.joinpath("deu_Latn.devtest").read_text(encoding="utf-8").splitlines()[:96]
LINES[10:10] = ["", "Ja."]  # an empty line and a very short one among long ones


@pytest.fixture(scope="module")
def alone(exported):
    """Each line translated on its own (batches of one): the reference."""
    translator = Translator(exported, backend="ctranslate2")
    return [t.text for t in translator.translate(LINES, "de_DE", "en_XX", DecodeOptions(), max_batch_sentences=1)]


def test_translate_gives_the_same_lines_whatever_the_batch_size(exported, alone):
    translator = Translator(exported, backend="ctranslate2")
    for kwargs in ({}, {"max_batch_sentences": 5}, {"batch_tokens": 300}):
        got = [t.text for t in translator.translate(LINES, "de_DE", "en_XX", DecodeOptions(), **kwargs)]
        assert got == alone, kwargs
    shuffled = LINES[::-1]
    assert [t.text for t in translator.translate(shuffled, "de_DE", "en_XX")] == alone[::-1]


def test_fairseq_backend_too(exported):
    translator = Translator(exported, backend="fairseq")
    greedy = DecodeOptions(beam=1)  # (beam search on a runaway model is slow on CPU; CTranslate2 covers beam 5)
    one = [t.text for t in translator.translate(LINES[:16], "de_DE", "en_XX", greedy, max_batch_sentences=1)]
    assert [t.text for t in translator.translate(LINES[:16], "de_DE", "en_XX", greedy)] == one


def test_translate_corpus_and_nmt_translate_agree(exported, alone, tmp_path):
    source = tmp_path / "in.de"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    job = CorpusJob(model=str(exported), src="de_DE", tgt="en_XX", input=str(source), chunk_lines=7,
                    backend="ctranslate2")
    translate_corpus(job, str(tmp_path / "out.en"))
    assert (tmp_path / "out.en").read_text(encoding="utf-8").split("\n")[:-1] == alone
    result = run_nmt("translate", "-m", exported, "-s", "de_DE", "-t", "en_XX", "-i", source, "--backend",
                     "ctranslate2")
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.split("\n")[:-1] == alone


def test_serve_with_concurrent_one_line_clients_agrees_with_the_batch_job(exported, alone):
    with serving("-m", exported, "--batch-window-ms", 20) as server:
        def one(line):
            status, _, body = call(server.url, "/v1/translate", {"texts": [line], "source": "de", "target": "en"})
            assert status == 200, body
            return body["translations"][0]["text"]

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(one, LINES))
    assert got == alone
