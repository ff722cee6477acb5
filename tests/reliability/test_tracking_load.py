"""Over 100 trials logging at once to the PostgreSQL-backed tracking server: every metric step there exactly once."""

import pytest

from bench.tracking_load import run_load
from tests.services import team_tracking_server

pytestmark = pytest.mark.integration


def test_a_hundred_trials_at_once_lose_nothing_and_duplicate_nothing():
    with team_tracking_server("load") as (uri, _):
        result = run_load(uri, n_trials=104, threads=8)
    assert result["runs"] == 104
    assert result["missing_metric_steps"] == 0 and result["duplicated_metric_steps"] == 0
