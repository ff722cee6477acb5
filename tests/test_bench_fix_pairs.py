"""bench/fix_pairs.py: function pairs from security-fix commits, found in a real git repository."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fix_pairs  # noqa: E402

BEFORE = '''import sqlite3


class Users:
    def find(self, name):
        """Look a user up."""
        return self.db.execute("SELECT * FROM users WHERE name = '%s'" % name)

    def count(self):
        # all users
        return self.db.execute("SELECT count(*) FROM users")
'''
AFTER = '''import sqlite3


class Users:
    def find(self, name):
        """Look a user up."""
        return self.db.execute("SELECT * FROM users WHERE name = ?", (name,))

    def count(self):
        # every user
        return self.db.execute("SELECT count(*) FROM users")
'''


def _commit(repo: Path, files: dict[str, str], message: str, body: str = "") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", message, *(["-m", body] if body else [])], check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_a_fix_commit_yields_the_function_it_changed_and_not_a_comment_only_change_or_a_test(tmp_path):
    repo = tmp_path / "owner+project" / "repo"
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "t@example.com"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "t"], check=True)
    test_file = "def test_find(db):\n    db.execute('x')\n"
    _commit(repo, {"app/users.py": BEFORE, "tests/test_users.py": test_file}, "users")
    fix = _commit(
        repo, {"app/users.py": AFTER, "tests/test_users.py": test_file + "# more\n"}, "Fix SQL injection in find"
    )
    _commit(repo, {"app/users.py": AFTER + "\n"}, "release 1.1", "Fixes an XSS (named in the body only)")

    assert fix_pairs.fix_commits(repo) == [(fix, 89)]
    (pair,) = fix_pairs.collect(tmp_path, known=[])
    # a second collection keeps what the manifest has, split included, and adds nothing twice
    assert fix_pairs.collect(tmp_path, known=[{**pair, "split": "heldout"}]) == [{**pair, "split": "heldout"}]
    assert (pair["repo"], pair["commit"], pair["path"], pair["function"], pair["cwe"]) == (
        "owner/project",
        fix,
        "app/users.py",
        "Users.find",
        89,
    )
    vulnerable, fixed = fix_pairs.load_pair(tmp_path, pair)
    assert vulnerable.startswith("import sqlite3") and "% name" in vulnerable and "(name,)" in fixed


def test_functions_are_named_by_class_and_a_docstring_or_comment_change_is_no_change():
    found = fix_pairs.functions(BEFORE)
    assert sorted(found) == ["Users.count", "Users.find"] and found["Users.find"].startswith("def find(self, name):")
    assert fix_pairs._same_code(fix_pairs.functions(BEFORE)["Users.count"], fix_pairs.functions(AFTER)["Users.count"])
    assert not fix_pairs._same_code(found["Users.find"], fix_pairs.functions(AFTER)["Users.find"])
    assert fix_pairs.functions("def broken(:\n") == {}
