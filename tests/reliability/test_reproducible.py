"""The same spec and seeds on the same machine give identical metrics, run after run, in fresh run folders."""

import pytest

from tests.reliability.conftest import logged_metrics, reliability_spec, run_sweep

pytestmark = pytest.mark.integration


def test_two_fresh_runs_log_identical_metrics(reference, tmp_path):
    _, expected, _ = reference
    spec = reliability_spec(tmp_path / "runs")
    run_sweep(spec, tmp_path / "spec.yaml")
    again = logged_metrics(spec)
    assert again.keys() == expected.keys() and len(again) > 20
    different = {k: (again[k], expected[k]) for k in again if again[k] != expected[k]}
    assert not different, different
