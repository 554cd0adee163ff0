"""Learning-rate schedules that fit a training budget (no fairseq here: plain arithmetic).

fairseq's ``inverse_sqrt`` schedule warms up for a fixed number of updates and then
decays as 1/sqrt(update): made for runs of 100k+ updates on GPUs. A CPU run of an
hour makes a few thousand updates, so a fixed 4,000-update warm-up never reaches the
peak rate and the schedule never anneals. ``budget`` instead follows what the budget
allows (Li et al. 2020, "Budgeted training": linear decay to zero at the end of the
budget beats step and inverse-sqrt schedules at every budget they tried): a linear
warm-up over a share of the updates the budget will allow, then a linear decay to
``final_ratio * peak`` at the budget's end. With ``decay_share`` below 1 the rate stays at
its peak until only that share of the budget is left (warm-up, stable, decay: Hägele et al.
2024, "Scaling laws and compute-optimal training beyond fixed training durations", found a
final decay over 20% of the run as good as a cosine schedule to the same end).

The number of updates a time budget allows is not known in advance; ``BudgetSchedule``
estimates it from the rate measured over the updates made so far in this process
(``observe``), so the schedule follows the machine it runs on (and a resumed run's
remaining budget).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# warm-up as a share of the updates the budget allows, within these bounds
WARMUP_SHARE = 0.04
WARMUP_MIN, WARMUP_MAX = 50, 4000


@dataclass
class BudgetSchedule:
    peak: float
    max_updates: float  # math.inf: no update limit
    warmup: int = 0  # 0: WARMUP_SHARE of the expected updates
    final_ratio: float = 0.0
    decay_share: float = 1.0  # the last share of the updates over which the rate decays (1: all after warm-up)
    init_lr: float = 1e-7

    def __post_init__(self):
        self.expected = self.max_updates  # refined by observe() when a time budget binds
        self._fixed_warmup = self.warmup

    def observe(self, update: int, start_update: int, clocks) -> None:
        """Re-estimate the updates the budget allows from the rate since ``start_update``.

        ``clocks``: (seconds used, budget seconds, seconds used at ``start_update``) for each
        time budget (wall clock, CPU time); the tightest one decides."""
        expected = self.max_updates
        for used, budget, start in clocks:
            spent = used - start
            if not math.isfinite(budget) or update <= start_update or spent <= 0:
                continue
            rate = (update - start_update) / spent
            expected = min(expected, update + rate * max(0.0, budget - used))
        self.expected = expected

    def warmup_updates(self) -> int:
        if self._fixed_warmup:
            return self._fixed_warmup
        if not math.isfinite(self.expected):
            return WARMUP_MAX
        # at least WARMUP_MIN updates, unless the budget is so short that they would be a quarter of it
        floor = min(WARMUP_MIN, self.expected / 4)
        return max(1, int(min(WARMUP_MAX, max(floor, WARMUP_SHARE * self.expected))))

    def lr(self, update: int) -> float:
        warmup = self.warmup_updates()
        if update < warmup:
            return self.init_lr + (self.peak - self.init_lr) * update / warmup
        floor = self.final_ratio * self.peak
        if not math.isfinite(self.expected):
            return self.peak * math.sqrt(warmup / max(update, 1))  # no budget at all: inverse square root
        span = max(1.0, min(self.expected - warmup, self.decay_share * self.expected))
        left = min(1.0, max(0.0, (self.expected - update) / span))
        return floor + (self.peak - floor) * left
