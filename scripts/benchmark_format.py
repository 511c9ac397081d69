"""How scripts/benchmark.py and scripts/busy_fit.py print and save their figures: thread-choice tallies,
CPU shares, load averages, and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from nnscratch.atomic_file import atomic_write


def tally(counts: list) -> str:
    """'2 x7, 1 x2': how often each thread count was the final choice (- when nothing was chosen)."""
    counted = {}
    for count in counts:
        counted[count] = counted.get(count, 0) + 1
    return ", ".join(f"{'-' if c is None else c} x{n}" for c, n in sorted(counted.items(), key=lambda item: -item[1]))


def share(value) -> str:
    return "unknown" if value is None else f"{value:.0%}"


def load_average(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values) if values else "unknown"


def write_json(path, results: dict) -> None:
    """Write the figures to ``path`` atomically: a temp file in the same folder, then os.replace."""
    with atomic_write(Path(path)) as f:
        f.write((json.dumps(results, indent=2) + "\n").encode())
