"""Reading ``nnscratch sanity-check``'s printed table back: its rows and the diagnosis lines under them
(tests/commands/test_sanity_check.py and test_sanity_check_diagnoses.py)."""

import re


def table_rows(out: str) -> list[list[str]]:
    """Rows of the printed table split on runs of 2+ spaces (cells have single spaces inside); the
    indented lines under a row (its diagnoses) are left out: see diagnosis_lines."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        if not line.startswith(" "):
            rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def diagnosis_lines(out: str) -> list[tuple]:
    """(row number, the line) for each indented line under a row of the printed table."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    found, row = [], -1
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        if line.startswith(" "):
            found.append((row, line.strip()))
        else:
            row += 1
    return found
