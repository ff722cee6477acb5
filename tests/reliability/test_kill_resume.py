"""kill -9 of the driver part-way, then the same command again: no finished step rebuilt, no half-written step
left, no MLflow run left RUNNING, and the same numbers as a run that was never interrupted."""

import random
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.reliability.conftest import completed_steps, logged_metrics, reliability_spec, run_sweep

pytestmark = pytest.mark.integration


def _kill_points(root, total: int):
    """Two kill points: just after the first safety milestone, and a seeded random point (after a random number of
    finished steps, then a random fraction of a second more: usually in the middle of the next step). Counted in
    steps, not seconds from the start, so a faster start-up cannot move it past the end of the run."""
    rng = random.Random(0)
    after, extra = rng.randint(2, total // 2), rng.uniform(0.0, 1.5)
    reached: dict[str, float] = {}

    def at_random_point() -> bool:
        if len(completed_steps(root)) < after:
            return False
        reached.setdefault("at", time.monotonic())
        return time.monotonic() - reached["at"] >= extra

    return {
        "after the first safety milestone": lambda: any(k.startswith("safety/") for k in completed_steps(root)),
        f"at a seeded random point ({after} steps done, then {extra:.1f} s)": at_random_point,
    }


@pytest.mark.parametrize("point", [0, 1], ids=["after-a-milestone", "seeded-random-point"])
def test_resumed_runs_match_an_uninterrupted_one(reference, tmp_path, point):
    _, expected, all_steps = reference
    spec = reliability_spec(tmp_path / "runs")
    name, kill_when = list(_kill_points(spec.root, len(all_steps)).items())[point]
    run_sweep(spec, tmp_path / "spec.yaml", kill_when=kill_when)
    before = completed_steps(spec.root)
    assert len(before) < len(all_steps), f"killed {name}, but nothing was left to do"

    run_sweep(spec, tmp_path / "spec.yaml")
    after = completed_steps(spec.root)
    assert all(after[k] == t for k, t in before.items()), f"killed {name}: a step finished before it was rebuilt"
    assert after.keys() == all_steps.keys()
    assert logged_metrics(spec) == expected, f"killed {name}"
    assert not list(spec.root.glob("*/*.partial-*")), "half-written outputs left behind"
    client = MlflowClient(spec.tracking_uri)
    exp = client.get_experiment_by_name("micro")
    assert {r.info.status for r in client.search_runs([exp.experiment_id])} == {"FINISHED"}
