"""Direct tests of the core, without the command line: the server's batcher, the training loop's
bookkeeping and signals, checkpoint files, significance tests, and the clean and bin stages of
nmt prepare on tiny data (the end-to-end tests exercise the same code through the CLI)."""
from __future__ import annotations

import asyncio
import errno
import os
import signal
import types

import numpy as np
import pytest

from conftest import small_raw
from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions
from nmt.translate.translator import Hypothesis, Translation


# -- the server's batcher --------------------------------------------------------------------------

class _Backend:
    """Echoes its lines' ids, records every call; a batch holding "boom" fails as a whole."""
    parallel = 2

    def __init__(self):
        self.calls = []

    def generate(self, batch, src, tgt, options):
        lines = ["".join(map(chr, ids)) for ids in batch]
        self.calls.append((lines, src, tgt, options.beam))
        if "boom" in lines:
            raise RuntimeError("decoder bug")
        return [[(ids, -1.0)] for ids in batch]


class _Translator:
    """The steps of ``Translator.translate`` the batcher uses, on characters: ``prepare`` encodes a line
    as its code points (a line starting with "!" is too long: empty, with a warning), ``plan`` cuts
    batches of up to 4 lines in order, ``finish`` upper-cases."""

    def __init__(self):
        self.backend = _Backend()

    def prepare(self, lines, too_long="skip", first_line_number=1):
        results, work = [None] * len(lines), []
        for i, line in enumerate(lines):
            if line.startswith("!"):
                results[i] = Translation([], f"line {first_line_number + i}: too long")
            else:
                work.append((i, [ord(c) for c in line]))
        return results, work

    def plan(self, work, options, batch_tokens=4000):
        return [work[k:k + 4] for k in range(0, len(work), 4)]

    def finish(self, hyps):
        return Translation([Hypothesis("".join(map(chr, ids)).upper(), score) for ids, score in hyps])


def _batcher(translator, **kwargs):
    from nmt.serve.batcher import Batcher
    from nmt.serve.metrics import Metrics

    return Batcher(translator, Metrics(), "m", **kwargs)


def _serve(batcher, requests, timeout_s=30.0):
    """Send ``requests`` (lines, src, tgt, beam) at once: every one is queued before the scheduler takes
    a batch. Each one's (text, warning) pairs, or the exception it got."""
    translator = batcher.translator

    async def main():
        batcher.start()
        try:
            answers = await asyncio.gather(*(batcher.translate(translator.prepare(lines), src, tgt,
                                                               DecodeOptions(beam=beam), timeout_s)
                                             for lines, src, tgt, beam in requests), return_exceptions=True)
        finally:
            await batcher.stop()
        return [a if isinstance(a, BaseException) else [(t.text, t.warning) for t in a] for a in answers]

    return asyncio.run(main())


def test_batcher_merges_concurrent_requests_and_gives_each_its_own_lines():
    translator = _Translator()
    answers = _serve(_batcher(translator), [(["a", "b"], "de_DE", "en_XX", 5), (["c", "!x"], "de_DE", "en_XX", 5),
                                            (["d"], "ru_RU", "en_XX", 5), (["e"], "de_DE", "en_XX", 1),
                                            (["!y"], "de_DE", "en_XX", 5)])
    assert answers == [[("A", None), ("B", None)], [("C", None), ("", "line 2: too long")], [("D", None)],
                       [("E", None)], [("", "line 1: too long")]]
    # the two requests with the same direction and options share a batch; the others decode apart
    assert sorted(translator.backend.calls) == sorted([(["a", "b", "c"], "de_DE", "en_XX", 5),
                                                       (["d"], "ru_RU", "en_XX", 5), (["e"], "de_DE", "en_XX", 1)])


def test_batcher_cuts_batches_as_planned_and_a_failing_batch_fails_only_its_request():
    translator = _Translator()
    answers = _serve(_batcher(translator), [([f"x{i}"] * 3, "de_DE", "en_XX", 5) for i in range(3)])
    assert answers == [[(f"X{i}", None)] * 3 for i in range(3)]
    assert sorted(len(call[0]) for call in translator.backend.calls) == [1, 4, 4]  # 9 lines, 4 per batch
    translator = _Translator()
    answers = _serve(_batcher(translator), [(["ok"], "de_DE", "en_XX", 5), (["boom", "fine"], "de_DE", "en_XX", 5),
                                            (["after"], "ru_RU", "en_XX", 5)])
    assert answers[0] == [("OK", None)] and answers[2] == [("AFTER", None)]
    assert isinstance(answers[1], RuntimeError)
    # the merged batch failed, then each request was decoded alone
    assert (["ok", "boom", "fine"], "de_DE", "en_XX", 5) in translator.backend.calls
    assert (["ok"], "de_DE", "en_XX", 5) in translator.backend.calls


def test_batcher_refuses_over_its_queue_and_after_stopping():
    from nmt.serve.batcher import Overloaded

    translator = _Translator()
    answers = _serve(_batcher(translator, max_queue_lines=3), [(["a", "b"], "de_DE", "en_XX", 5),
                                                               (["c", "d"], "de_DE", "en_XX", 5),
                                                               (["e"], "de_DE", "en_XX", 5)])
    assert answers[0] == [("A", None), ("B", None)] and isinstance(answers[1], Overloaded)
    assert answers[2] == [("E", None)]  # it fits beside the first
    batcher = _batcher(_Translator())
    _serve(batcher, [])
    with pytest.raises(Overloaded, match="shutting down"):
        asyncio.run(batcher.translate(batcher.translator.prepare(["a"]), "de_DE", "en_XX", DecodeOptions(), 1.0))


# -- the training loop's bookkeeping and signals ----------------------------------------------------

def test_loop_state_and_verdict_travel_as_plain_data(tmp_path):
    import torch

    from nmt.fairseq_backend.settings import LoopState, Validation, Verdict

    state = LoopState(best_score=31.5, best_update=20, bad_validations=1,
                      history=[Validation(10, 2.5, 30.0, {"chrf": {"de_DE-en_XX": 30.0}}),
                               Validation(20, 2.1, 31.5, {"chrf": {"de_DE-en_XX": 31.5}})])
    torch.save({"nmt": state.to_dict()}, tmp_path / "c.pt")
    saved = torch.load(tmp_path / "c.pt", weights_only=True)["nmt"]  # what resuming reads
    assert LoopState.from_dict(saved) == state
    assert saved["history"][0] == {"update": 10, "valid_loss": 2.5, "score": 30.0, "chrf": {"de_DE-en_XX": 30.0}}
    assert LoopState.from_dict(None) == LoopState()
    # a verdict crosses to the other ranks through fairseq's broadcast, which unpickles weights-only too
    verdict = Verdict(improved=True, stop=False, state=state)
    torch.save(verdict.to_dict(), tmp_path / "v.pt")
    assert Verdict.from_dict(torch.load(tmp_path / "v.pt", weights_only=True)) == verdict


def _judge(metric="chrf", patience=2):
    from nmt.fairseq_backend.loop import TrainingLoop
    from nmt.fairseq_backend.settings import LoopSettings, LoopState

    loop = types.SimpleNamespace(state=LoopState(), settings=LoopSettings(1, 1, 1, metric=metric, patience=patience))
    return lambda update, loss, score: TrainingLoop.judge(loop, update, loss, score)


def test_validation_verdicts_pick_the_best_and_stop_early():
    from nmt.fairseq_backend.settings import Scores

    judge = _judge(patience=2)
    first = judge(10, 3.0, Scores(20.0, {"avg_chrf": 20.0}))
    assert first.improved and not first.stop and first.state.best_update == 10
    assert judge(20, 2.0, Scores(25.0)).improved
    worse = judge(30, 1.9, Scores(24.0))
    assert not worse.improved and not worse.stop and worse.state.bad_validations == 1
    last = judge(40, 1.8, Scores(25.0))  # equal is no improvement
    assert last.stop and last.state.best_score == 25.0 and last.state.best_update == 20
    assert [v.update for v in last.state.history] == [10, 20, 30, 40] and last.state.history[0].details
    by_loss = _judge(metric="loss", patience=0)
    assert by_loss(10, 3.0, Scores(99.0)).state.best_score == -3.0  # the loss decides, not the hook's score
    assert by_loss(20, 2.0, Scores()).improved and not by_loss(30, 2.5, Scores()).stop  # patience 0: never stop


def test_the_training_entry_installs_handlers_only_in_a_spawned_rank_of_a_caller_that_asked(monkeypatch):
    """loop.main: in the caller's own process it leaves the handlers alone (the caller owns them); in a
    rank process fairseq spawned (the request's pid is another process's) it installs the same handlers
    when the caller used stop_on_signals, and puts the old ones back after; torch's thread count is the
    settings' while training and the caller's again after."""
    import torch

    from nmt.fairseq_backend import loop
    from nmt.fairseq_backend.settings import LoopSettings
    from nmt.cli_util import stop_on_signals
    from nmt.stopping import StopRequest

    seen = []
    threads = torch.get_num_threads()
    settings = LoopSettings(validate_every=1, save_every=1, keep_last=1, threads=threads + 1)

    class Loop:  # stands in for TrainingLoop: notes which handler it ran under
        def __init__(self, cfg, hooks, settings, stop):
            self.stop = stop

        def run(self):
            seen.append((signal.getsignal(signal.SIGTERM), self.stop))
            assert torch.get_num_threads() == threads + 1  # the settings' thread count while training
            return "result"

    monkeypatch.setattr(loop, "TrainingLoop", Loop)
    before = signal.getsignal(signal.SIGTERM)
    plain = StopRequest()
    outcome: list = []
    loop.main(None, None, settings, outcome, stop=plain)  # a Python caller's own request: no handlers
    assert seen[-1] == (before, plain) and outcome == ["result"]
    assert torch.get_num_threads() == threads  # the caller's again
    with stop_on_signals() as asked:
        installed = signal.getsignal(signal.SIGTERM)
    assert asked.rank_setup is stop_on_signals and installed is not before
    asked.pid += 1  # as seen from a spawned rank: the request (a pickled copy) names the parent process
    loop.main(None, None, settings, stop=asked)
    handler, stop = seen[-1]
    assert handler not in (before, installed) and callable(handler) and stop is asked  # its own, for this rank
    assert signal.getsignal(signal.SIGTERM) is before  # and put back afterwards
    not_asked = StopRequest()
    not_asked.pid += 1
    loop.main(None, None, settings, stop=not_asked)
    assert seen[-1][0] is before


def test_stop_on_signals_turns_signals_into_a_stop_request_then_restores_the_handlers():
    from nmt.cli_util import stop_on_signals
    from nmt.stopping import StopRequest

    got = []
    mine = lambda signum, frame: got.append(signum)  # noqa: E731
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with stop_on_signals() as stop:
            assert stop.rank_setup is stop_on_signals and not stop.requested
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.signal == signal.SIGTERM and got == []  # noted: training finishes its update and saves
        assert signal.getsignal(signal.SIGTERM) is mine and got == []  # restored; the caller reads the request
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            with stop_on_signals() as stop:
                os.kill(os.getpid(), signal.SIGINT)
                assert stop.signal == signal.SIGINT
                os.kill(os.getpid(), signal.SIGTERM)  # a second signal stops at once
        assert signal.getsignal(signal.SIGTERM) is mine and got == []
        request = StopRequest()  # a caller's own request: the first one counts
        request.request(signal.SIGINT)
        request.request(signal.SIGTERM)
        assert request.signal == signal.SIGINT and request.rank_setup is None
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- checkpoint files -------------------------------------------------------------------------------

def _stored(save_dir):
    import torch

    return {p.name: torch.load(p, weights_only=True)["u"] for p in sorted(save_dir.glob("*.pt"))}


def test_checkpoint_files_keep_the_last_n_and_best_never_behind(tmp_path):
    from nmt.fairseq_backend import checkpoint_files as files

    for update, best in ((10, True), (20, False), (30, True), (40, False)):
        last = files.store({"u": update}, tmp_path, update, best, keep_last=2)
    assert last == tmp_path / files.LAST
    assert _stored(tmp_path) == {"checkpoint_30.pt": 30, "checkpoint_40.pt": 40, "checkpoint_best.pt": 30,
                                 "checkpoint_last.pt": 40}
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    files.store({"u": 5}, fresh, 5, False, keep_last=1)  # the first checkpoint is best even when not "best"
    assert _stored(fresh)["checkpoint_best.pt"] == 5


class _FullDisk:
    def __reduce__(self):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one(tmp_path):
    from nmt.fairseq_backend import checkpoint_files as files

    files.store({"u": 10}, tmp_path, 10, True, keep_last=5)
    with pytest.raises(NmtError, match="no space left on device.*previous checkpoints are intact") as error:
        files.store({"u": _FullDisk()}, tmp_path, 20, True, keep_last=5)
    assert error.value.exit_code == 3
    assert _stored(tmp_path) == {"checkpoint_10.pt": 10, "checkpoint_best.pt": 10, "checkpoint_last.pt": 10}
    assert not list(tmp_path.glob(".*"))


def test_the_checkpoint_to_resume_follows_fairseqs_rule(tmp_path):
    from nmt.fairseq_backend.checkpoint_files import checkpoint_to_resume

    cfg = types.SimpleNamespace(restore_file="checkpoint_last.pt", save_dir=str(tmp_path), finetune_from_model=None)
    assert checkpoint_to_resume(cfg) is None
    cfg.finetune_from_model = str(tmp_path / "pretrained.pt")
    assert checkpoint_to_resume(cfg) == tmp_path / "pretrained.pt"
    (tmp_path / "checkpoint_last.pt").write_bytes(b"x")
    assert checkpoint_to_resume(cfg) == tmp_path / "checkpoint_last.pt"  # a run in progress wins
    cfg.restore_file = str(tmp_path / "other.pt")
    assert checkpoint_to_resume(cfg) is None


# -- significance -------------------------------------------------------------------------------------

def test_segment_level_paired_tests():
    from nmt.evaluate import significance as sig

    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, 200)
    better, same, noise = base + 0.05, base.copy(), base + rng.normal(0, 0.001, 200)
    for test in ("bs", "ar"):
        results = sig.segment_paired([base, better, same, noise], test, 500)
        assert results[0].p_value is None and results[0].score == pytest.approx(base.mean())
        assert results[1].p_value < 0.01  # a consistent gain
        assert results[2].p_value == 1.0 and results[2].zero_difference  # identical output: no evidence
        assert results[3].p_value > 0.05  # noise
        again = sig.segment_paired([base, better, same, noise], test, 500)
        assert [r.p_value for r in again] == [r.p_value for r in results]  # seeded
    bs = sig.segment_paired([base, better], "bs", 500)
    assert bs[0].ci > 0 and bs[1].mean == pytest.approx(better.mean(), abs=0.01)
    assert sig.segment_signature("ar", 0) == "paired-ar|unit:segment-mean|ar:10000|seed:12345"


def test_sacrebleu_paired_test_reports_p_one_for_an_unchanged_system():
    from nmt import metrics
    from nmt.evaluate import significance as sig

    refs = ["the cat sat on the mat", "a dog barks loudly", "it rains today", "we go home now"] * 5
    good = list(refs)
    bad = ["the cat", "a dog", "rain", "home"] * 5
    outcome = sig.sacrebleu_paired([bad, good, bad], ["base", "good", "same"], refs,
                                   {"chrF": metrics.chrf_metric(0)}, "bs", 200)
    base, better, unchanged = outcome.results["chrF"]
    assert better.p_value < 0.05 and not better.zero_difference
    assert unchanged.p_value == 1.0 and unchanged.zero_difference  # sacrebleu would say 1/(n+1)
    assert outcome.n_samples == 200 and "|bs:200|" in outcome.signatures["chrF"]


# -- the clean and bin stages of nmt prepare ---------------------------------------------------------

def _clean(tmp_path, name: str, **settings):
    """The clean stage on 300 sample pairs plus 40 exact duplicates, into ``tmp_path/name``."""
    from nmt.data.clean_stage import stage_clean
    from nmt.data.corpus import discover_raw
    from nmt.data.prepare import PrepareConfig

    raw = small_raw(tmp_path, langs=("de_DE",), n=300)
    for lang in ("de_DE", "en_XX"):
        train = raw / f"train.de_DE-en_XX.{lang}"
        lines = train.read_text(encoding="utf-8").splitlines()
        train.write_text("\n".join(lines + lines[:40]) + "\n", encoding="utf-8")
    cfg = PrepareConfig(out=str(tmp_path / "o"), raw=[str(raw)], valid_size=25, **settings)
    out = tmp_path / name
    out.mkdir()
    return stage_clean(cfg, discover_raw([raw]), out), out


def test_clean_stage_counts_every_pair_and_removes_duplicates_and_test_overlap(tmp_path):
    info, out = _clean(tmp_path, "a", workers=1, chunk_lines=64)
    counts = info["pairs"]["de_DE-en_XX"]["train"]
    assert counts["read"] == 340
    assert counts["read"] == counts["kept"] + counts["bad_utf8"] + sum(counts["dropped"].values()) + 25
    assert counts["dropped"]["duplicate"] >= 40 and info["pairs"]["de_DE-en_XX"]["valid"]["lines"] == 25
    src = (out / "train.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
    tgt = (out / "train.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines()
    assert len(src) == len(tgt) == counts["kept"] and len(set(zip(src, tgt))) == len(src)
    held = set((out / "valid.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines())
    test = set((out / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines())
    assert not (held | test) & set(src)  # held-out and test lines never train
    again, out2 = _clean(tmp_path, "b", workers=2, chunk_lines=7)  # chunking and workers change nothing
    assert again["pairs"] == info["pairs"]
    for name in ("train.de_DE-en_XX.de_DE", "valid.de_DE-en_XX.en_XX", "test.de_DE-en_XX.en_XX"):
        assert (out2 / name).read_bytes() == (out / name).read_bytes()


def test_bin_stage_encodes_every_line_and_shards_them_round_robin(tmp_path):
    from nmt.data import spm as spm_lib
    from nmt.data.bin_stage import fairseq_data_path, stage_bin
    from nmt.data.indexed import read_indexed
    from nmt.data.prepare import PrepareConfig
    from nmt.vocab import EOS, load_spm, piece_table, read_dictionary, spm_pieces, write_dictionary

    info, clean_dir = _clean(tmp_path, "clean", workers=1)
    (clean_dir / "stage.json").write_text(__import__("json").dumps(info))
    spm_dir = tmp_path / "spm"
    spm_dir.mkdir()
    text = [line for name in ("de_DE", "en_XX") for line in
            (clean_dir / f"train.de_DE-en_XX.{name}").read_text(encoding="utf-8").splitlines()]
    model = spm_lib.train(text, spm_dir / "spm", 300)
    model.rename(spm_dir / "spm.model")
    write_dictionary(spm_dir / "dict.txt", spm_pieces(load_spm(spm_dir / "spm.model"))[4:])
    for shards in (1, 3):
        cfg = PrepareConfig(out=str(tmp_path), raw=["x"], shards=shards, workers=1, chunk_lines=50)
        out = tmp_path / f"bin{shards}"
        out.mkdir()  # as Stage.begin makes it
        stats = stage_bin(cfg, clean_dir, spm_dir, ["de_DE", "en_XX"], ["de_DE-en_XX"], out,
                          lambda **kw: __import__("contextlib").nullcontext(), directions=[("de_DE", "en_XX")])
        symbols = read_dictionary(out / "dict.txt")
        assert (out / "lang_dict.txt").read_text() == "de_DE\nen_XX\n" and stats["dictionary_size"] == len(symbols)
        lines = (clean_dir / "train.de_DE-en_XX.en_XX").read_text(encoding="utf-8").splitlines()
        parts = [read_indexed(d / "train.de_DE-en_XX.en_XX") for d in ([out] if shards == 1 else
                                                                    [out / f"shard{k}" for k in range(3)])]
        assert [len(p) for p in parts] == [len(lines[k::shards]) for k in range(shards)]
        processor = load_spm(spm_dir / "spm.model")
        table = piece_table(processor, symbols)
        for k, part in enumerate(parts):  # line i in shard i % N, as sentencepiece encodes it, then </s>
            for line, ids in zip(lines[k::shards], part):
                assert ids.tolist() == table[processor.encode(line)].tolist() + [EOS]
    assert fairseq_data_path(tmp_path, {"shards": 3}) == ":".join(str(tmp_path / "bin" / f"shard{k}") for k in range(3))
    assert fairseq_data_path(tmp_path, {}) == str(tmp_path / "bin")
