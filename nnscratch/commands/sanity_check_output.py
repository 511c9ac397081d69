"""What ``nnscratch sanity-check`` prints: the table with a line per diagnosis under its row, the
closing summary, or (``--json``) the same as one JSON document.

The JSON document (standard JSON: no NaN or Infinity, a non-finite number is null):

    {"schema": "nnscratch.sanity-check/1",
     "passed": bool,
     "settings": {"eps", "atol", "rtol", "coords", "seed", "diagnose"},
     "configurations": [
        {"layer": str, "configuration": str, "passed": bool,
         "error": null | str,        # the failure's first line, or the exception a layer raised
         "float32": str,             # the float32 probe: "passed", "failed", "not run", "skipped: <why>"
         "tensors": [
            {"tensor": "input" | "parameter i", "shape": [int], "coords": int,
             "max_abs_err": float, "max_rel_err": float, "result": "pass" | "fail" | "skip",
             "skipped": null | str, "problem": null | str,
             "worst": null | {"index": [int], "numerical": float, "analytical": float},
             "diagnoses": [{"kind": str, "bug": bool, "message": str, "evidence": {...}}]}]}],
     "summary": {"configurations": int, "failed": int, "tensors": int}}

``kind`` is one of ``nnscratch.check.KINDS``; ``evidence`` holds the numbers the message quotes,
its keys depending on the kind. Fields are only ever added to version 1, never renamed or removed.
"""

from __future__ import annotations

import dataclasses
import json

from nnscratch.check import DEFAULT_EPS
from nnscratch.check.report import plain

SCHEMA = "nnscratch.sanity-check/1"
_HEADER = ("layer", "configuration", "tensor", "coords", "max abs err", "max rel err", "result")


@dataclasses.dataclass
class CaseResult:
    """One configuration checked: its report (None when the layer crashed before any row) and, if it
    failed, the message (the error's first line, or the exception)."""

    layer: str
    config: str
    report: object
    failure: str = ""


def _cells(result: CaseResult) -> list:
    """The table's rows of one configuration, each (cells, lines to print under it)."""
    if not result.report:
        return [((result.layer, result.config, "-", "-", "-", "-", "FAIL"), [])]
    rows = []
    for row in result.report:
        under = [f"    {row.skipped}"] if row.skipped else []
        under += [f"    {diagnosis}" for diagnosis in row.diagnoses]
        rows.append(((result.layer, result.config, f"{row.tensor} {row.shape}", str(row.coords),
                      f"{row.max_abs_err:.2e}", f"{row.max_rel_err:.2e}", row.result), under))
    return rows


def table(results: list) -> str:
    """The results as a table, the diagnoses of a row indented under it."""
    rows = [row for result in results for row in _cells(result)]
    widths = [max(len(str(cells[i])) for cells in [_HEADER, *(r[0] for r in rows)]) for i in range(len(_HEADER))]
    right = {3, 4, 5}

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(_HEADER), "  ".join("-" * w for w in widths)]
    for cells, under in rows:
        lines += [line(cells), *under]
    return "\n".join(lines)


def _tensor_count(results: list) -> int:
    return sum(len(result.report) for result in results if result.report)


def summary(results: list, options) -> str:
    """What follows the table: the failures by configuration, the rule, and the verdict."""
    failures = [f"FAIL {r.layer} [{r.config}]: {r.failure}" for r in results if r.failure]
    lines = ([""] + failures) if failures else []
    lines.append(f"\nA tensor passes when every coordinate checked has abs err <= atol + rtol * |gradient| "
                 f"(atol={options.atol:g}, rtol={options.rtol:g}; central differences, eps={DEFAULT_EPS:g}, "
                 "float64).\nmax rel err is taken over the coordinates with |gradient| >= atol.")
    if any(row.diagnoses for result in results if result.report for row in result.report):
        lines.append("The lines under a row are its diagnoses: docs/when-the-check-fails.md explains each.")
    tensors = _tensor_count(results)
    checked = f"{tensors} tensor{'' if tensors == 1 else 's'} checked"
    if failures:
        lines.append(f"\nsanity-check: {len(failures)} of {len(results)} configurations FAILED ({checked})")
    else:
        everything = "the 1 configuration" if len(results) == 1 else f"all {len(results)} configurations"
        lines.append(f"\nsanity-check: {everything} passed ({checked})")
    return "\n".join(lines)


def document(results: list, options) -> str:
    """The results as the JSON document the module docstring describes."""
    configurations = []
    for result in results:
        report = result.report
        configurations.append({
            "layer": result.layer, "configuration": result.config, "passed": not result.failure,
            "error": result.failure or None, "float32": report.float32 if report is not None else "not run",
            "tensors": [row.to_dict() for row in report] if report else [],
        })
    failed = sum(1 for result in results if result.failure)
    data = {
        "schema": SCHEMA,
        "passed": not failed,
        "settings": {"eps": DEFAULT_EPS, "atol": options.atol, "rtol": options.rtol, "coords": options.coords,
                     "seed": options.seed, "diagnose": options.diagnose},
        "configurations": configurations,
        "summary": {"configurations": len(results), "failed": failed, "tensors": _tensor_count(results)},
    }
    return json.dumps(plain(data), indent=2, allow_nan=False)
