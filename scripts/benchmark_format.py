"""How scripts/benchmark.py and scripts/busy_fit.py print and save their figures: thread-choice tallies,
CPU shares, load averages, and the JSON file; and the options both take (--only, --busy-max-seconds)."""

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


def only_names(parser, text: str, allowed) -> list:
    """--only's comma-separated names, each one of ``allowed``; a parser error (exit 2) otherwise."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(allowed))
    if unknown or not names:
        parser.error(f"--only: expected names among {', '.join(allowed)}, got {', '.join(unknown) or 'none'}")
    return names


def check_busy_max_seconds(parser, seconds: float) -> None:
    """The busy-loop process's own time limit must be in (0, 3600] seconds; a parser error otherwise."""
    if not 0 < seconds <= 3600:
        parser.error(f"--busy-max-seconds: expected seconds in (0, 3600], got {seconds}")


def report(text: str, results: dict, json_path) -> int:
    """Print the rendered figures and, with --json, write them all to that file; exit code 0."""
    print(text)
    if json_path:
        write_json(json_path, results)
        print(f"figures written to {json_path}")
    return 0
