"""A run folder built before a refactor is reused after it: every step of the shipped presets keeps its key, and every
trial finds its MLflow run again."""

import json

from tests.steps import keys


def test_the_presets_steps_keep_the_keys_recorded_before_the_rework():
    recorded = json.loads(keys.RECORD.read_text())
    now = keys.current()
    problems = []
    for case, before in recorded.items():
        after = now.get(case, {"steps": [], "trials": {}})
        gone = sorted(set(before["steps"]) - set(after["steps"]))
        new = sorted(set(after["steps"]) - set(before["steps"]))
        if gone or new:
            problems.append(f"{case}: {len(gone)} step(s) no longer built, {len(new)} new, e.g. {(gone + new)[:3]}")
        elif before["trials"] != after["trials"]:
            problems.append(f"{case}: the same steps, but trials use them differently")
        elif before["runs"] != after["runs"]:
            problems.append(f"{case}: trials' metric steps differ or are in another order: new MLflow runs")
    hint = "\n(re-record only for a change meant to rebuild: python -m tests.steps.keys)"
    assert not problems, "\n".join(problems) + hint
