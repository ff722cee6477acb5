"""Over 100 trials logging at once to the PostgreSQL-backed tracking server: every metric step there exactly once."""

import boto3
import pytest

from bench.tracking_load import run_load
from tests.services import S3_KEYS, mlflow_server, postgres, s3_server

pytestmark = pytest.mark.integration


def test_a_hundred_trials_at_once_lose_nothing_and_duplicate_nothing():
    with s3_server() as endpoint, postgres() as backend:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        ).create_bucket(Bucket="load")
        with mlflow_server(backend, "s3://load/artifacts", endpoint) as uri:
            result = run_load(uri, n_trials=104, threads=8)
    assert result["runs"] == 104
    assert result["missing_metric_steps"] == 0 and result["duplicated_metric_steps"] == 0
