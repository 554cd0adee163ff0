"""The learning-rate schedule that fits the training budget, and the CPU-time budget."""
from __future__ import annotations

import json
import math

import pytest

from conftest import TINY_TRAIN
from nmt.config import load_train_config
from nmt.errors import NmtError
from nmt.fairseq_backend.schedule import WARMUP_MAX, WARMUP_MIN, BudgetSchedule


def test_warmup_then_linear_decay_to_the_end_of_an_update_budget():
    s = BudgetSchedule(peak=1e-3, max_updates=1000, warmup=100, final_ratio=0.0, init_lr=0.0)
    assert s.lr(0) == 0.0
    assert s.lr(50) == pytest.approx(5e-4)
    assert s.lr(100) == pytest.approx(1e-3)
    assert s.lr(550) == pytest.approx(5e-4)  # half-way through the decay
    assert s.lr(1000) == pytest.approx(0.0)
    floor = BudgetSchedule(peak=1e-3, max_updates=1000, warmup=100, final_ratio=0.1, init_lr=0.0)
    assert floor.lr(1000) == pytest.approx(1e-4) and floor.lr(100) == pytest.approx(1e-3)


def test_automatic_warmup_is_a_share_of_the_budget_within_bounds():
    assert BudgetSchedule(1e-3, 10_000).warmup_updates() == 400
    assert BudgetSchedule(1e-3, 300).warmup_updates() == WARMUP_MIN
    assert BudgetSchedule(1e-3, 40).warmup_updates() == 10  # a very short budget: a quarter of it at most
    assert BudgetSchedule(1e-3, 10_000_000).warmup_updates() == WARMUP_MAX
    assert BudgetSchedule(1e-3, math.inf).warmup_updates() == WARMUP_MAX


def test_a_time_budget_is_turned_into_updates_by_the_measured_rate():
    s = BudgetSchedule(1e-3, max_updates=math.inf)
    # 100 updates in the first 50 s of a 600 s budget: 2 updates/s, so 100 + 2 * 550 = 1,200 in all
    s.observe(100, 0, [(50.0, 600.0, 0.0)])
    assert s.expected == pytest.approx(1200)
    # two clocks: the one whose budget runs out first decides (CPU 300 s here: 100 + 2 * 250 = 600)
    s.observe(100, 0, [(50.0, 600.0, 0.0), (50.0, 300.0, 0.0), (50.0, math.inf, 0.0)])
    assert s.expected == pytest.approx(600)
    # the update limit caps the estimate; a resumed run measures its rate from where it started
    capped = BudgetSchedule(1e-3, max_updates=700)
    capped.observe(300, 200, [(250.0, 600.0, 200.0)])
    assert capped.expected == 700
    assert s.lr(s.expected) == pytest.approx(0.0, abs=1e-12)


def test_without_any_budget_the_rate_decays_as_inverse_square_root():
    s = BudgetSchedule(1e-3, max_updates=math.inf, warmup=100)
    assert s.lr(400) == pytest.approx(1e-3 * math.sqrt(100 / 400))


@pytest.mark.parametrize("override,message", [
    ("training.lr_schedule=cosine", "training.lr_schedule"),
    ("training.final_lr_ratio=2", "final_lr_ratio"),
    ("training.max_cpu_minutes=-1", "max_cpu_minutes"),
    ("training.warmup_updates=-5", "warmup_updates"),
])
def test_bad_schedule_settings_are_one_line(prepared_sample, override, message):
    with pytest.raises(NmtError, match=message):
        load_train_config(None, [f"data={prepared_sample}", override]).check()
    # warm-up 0 means automatic with the budget schedule, but fairseq's inverse_sqrt needs a number
    load_train_config(None, [f"data={prepared_sample}", "training.warmup_updates=0"]).check()
    with pytest.raises(NmtError, match="warmup_updates"):
        load_train_config(None, [f"data={prepared_sample}", "training.warmup_updates=0",
                                 "training.lr_schedule=inverse_sqrt"]).check()


def test_training_follows_the_schedule_and_stops_at_the_cpu_budget(prepared_sample, tmp_path, caplog):
    """A run with a CPU-time budget stops by itself, records its CPU time and schedule, and the rate it
    logged is the schedule's rate for the updates the budget allowed."""
    from nmt.training.translation import train

    run = tmp_path / "run"
    cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "training.warmup_updates=0",
                                                "training.max_updates=100000", "training.max_cpu_minutes=0.4",
                                                "training.log_every=5", "validation.every_updates=40",
                                                "checkpoint.every_updates=40", "training.threads=1"])
    with caplog.at_level("INFO"):
        result = train(cfg, run)
    assert "CPU-time budget" in result.stop_reason
    # the budget: it stops once the CPU time plus the last validation's cost would pass it (so a little
    # below it), or after the update that crossed it
    assert 0.4 * 60 * 0.5 <= result.cpu_seconds < 0.4 * 60 * 2
    schedule = result.lr_schedule
    # 4% of the expected updates, at least 50 unless that is over a quarter of a budget this short
    expected = schedule["expected_updates"]
    assert schedule["kind"] == "budget"
    rule = max(1, int(max(min(50, expected / 4), 0.04 * expected)))
    assert abs(schedule["warmup_updates"] - rule) <= 1  # (the record rounds the expected updates)
    assert result.updates <= schedule["expected_updates"] * 1.5
    assert json.loads((run / "training.json").read_text())["cpu_seconds"] == result.cpu_seconds
    logged = [line for line in caplog.messages if line.startswith("update ") and "warm-up" in line]
    assert logged, "the log line shows the expected number of updates and the warm-up"


def test_bf16_autocast_trains_on_cpu_and_fp16_is_refused(prepared_sample, tmp_path):
    from nmt.training.translation import train

    cfg = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "training.precision=bf16",
                                                "training.max_updates=20", "validation.every_updates=20",
                                                "checkpoint.every_updates=20", "training.device=cpu"])
    result = train(cfg, tmp_path / "bf16")
    record = json.loads((result.bundle / "training.json").read_text())
    assert result.updates == 20 and math.isfinite(record["validations"][-1]["valid_loss"])
    fp16 = load_train_config(None, TINY_TRAIN + [f"data={prepared_sample}", "training.precision=fp16",
                                                 "training.device=cpu"])
    with pytest.raises(NmtError, match="fp16 needs a GPU"):
        train(fp16, tmp_path / "fp16")
