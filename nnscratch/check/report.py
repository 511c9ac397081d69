"""What a gradient check returns and raises: per-tensor rows and their diagnoses, the report table,
the failure message, and the same as plain data (``to_dict``, standard JSON only)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# Every kind of diagnosis, by its stable name (the ``kind`` of a ``Diagnosis``, the JSON's "kind").
# docs/when-the-check-fails.md has a section on each.
KINDS = {
    "scaled": "the analytical gradient is a constant multiple of the numerical one",
    "wrong-sign": "the analytical gradient is minus the numerical one",
    "transposed": "the gradient, or a parameter as backward uses it, has its axes permuted or flipped",
    "zero": "the analytical gradient is zero where the numerical one is not",
    "accumulates": "each backward adds its gradient to the last one instead of overwriting it",
    "not-repeatable": "a second backward after the same forward gives another gradient",
    "ignores-upstream": "the gradient does not scale with the upstream gradient delta",
    "leaks-across-batch": "the gradient of one sample changes when another sample changes",
    "batch-constant": "the error is the same for every sample: a term over the whole batch is wrong",
    "kink": "the mismatch sits where the function is not differentiable: not a bug there",
    "resolution": "the errors are no larger than the finite differences' own: a tolerance they cannot meet",
    "wrong-elements": "wrong in some elements, the worst of them named",
    "precision": "right in float64, not in float32, or computed in another dtype",
}


class GradientCheckError(AssertionError):
    """A gradient check failed. ``report``: the per-tensor rows, or None if it failed before them.

    ``summary`` is the message's first line; the lines after it are the diagnoses."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report
        self.summary = message.split("\n", 1)[0]


@dataclasses.dataclass
class Diagnosis:
    """What is wrong with one tensor's gradient, in one line, with the numbers that show it.

    ``bug`` is False for an explanation that is not a bug (a kink): the row can still pass."""

    kind: str  # one of KINDS
    message: str
    evidence: dict = dataclasses.field(default_factory=dict)
    bug: bool = True

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "bug": self.bug, "message": self.message, "evidence": plain(self.evidence)}


@dataclasses.dataclass
class TensorCheck:
    """The result of checking one tensor (the input or one parameter)."""

    tensor: str  # "input" or "parameter i"
    shape: tuple
    coords: int  # coordinates checked (all of them, or a seeded sample of max_coords)
    max_abs_err: float
    max_rel_err: float  # over coordinates whose gradient is at least atol in size
    passed: bool
    worst_index: tuple = ()
    numerical: float = 0.0
    analytical: float = 0.0
    problem: str = ""  # why it failed, when it failed
    diagnoses: list = dataclasses.field(default_factory=list)  # Diagnosis, each a line of evidence
    skipped: str = ""  # why it was not checked (integer ids have no gradient), when it was not

    @property
    def result(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"

    def __str__(self) -> str:
        text = (f"{self.tensor} {self.shape}: {self.coords} coords, max abs err {self.max_abs_err:.2e}, "
                f"max rel err {self.max_rel_err:.2e}, {self.result}")
        return text + (f" ({self.skipped})" if self.skipped else "")

    def to_dict(self) -> dict:
        worst = None
        if self.coords and not self.passed:
            worst = {"index": list(self.worst_index), "numerical": self.numerical, "analytical": self.analytical}
        return plain({
            "tensor": self.tensor, "shape": list(self.shape), "coords": self.coords,
            "max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err, "result": self.result.lower(),
            "skipped": self.skipped or None, "problem": self.problem or None, "worst": worst,
            "diagnoses": [d.to_dict() for d in self.diagnoses],
        })


class GradientCheckReport(list):
    """What ``sanity_check`` returns: a list of ``TensorCheck`` rows with a readable table.

    ``float32`` says what the float32 probe found: "passed", "failed", "not run" (a float64 check
    failed, or it was not asked for) or "skipped: <why>"."""

    def __init__(self, layer: str, rows=(), float32: str = "not run"):
        super().__init__(rows)
        self.layer = layer
        self.float32 = float32

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self)

    def __str__(self) -> str:
        lines = [f"gradient check of {self.layer}:"]
        lines.append(f"  {'tensor':<28} {'coords':>6} {'max abs err':>11} {'max rel err':>11}  result")
        for row in self:
            tensor = f"{row.tensor} {row.shape}"
            lines.append(
                f"  {tensor:<28} {row.coords:>6} {row.max_abs_err:>11.2e} {row.max_rel_err:>11.2e}  {row.result}"
                + (f" ({row.skipped})" if row.skipped else "")
            )
            lines += [f"      {diagnosis}" for diagnosis in row.diagnoses]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "passed": self.passed, "float32": self.float32,
                "tensors": [row.to_dict() for row in self]}


def layer_name(layer) -> str:
    """The name a layer goes by in messages: its ``name`` attribute if a string, else its class."""
    name = getattr(layer, "name", None)
    return name if isinstance(name, str) else type(layer).__name__


def plain(value):
    """``value`` as standard JSON data: numpy numbers as Python ones, tuples as lists, and every
    non-finite float as None (JSON has no NaN or Infinity)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def failure_message(name: str, failed: list, eps: float, atol: float, rtol: float) -> str:
    """The first failing tensor in one line (the others by name), then a line per diagnosis."""
    row = failed[0]
    if row.problem:
        message = (
            f"{name}: {row.problem} for {row.tensor} (shape {row.shape}) at index {row.worst_index}: "
            f"numerical {row.numerical:.9g}, analytical {row.analytical:.9g}, "
            f"abs err {abs(row.numerical - row.analytical):.3g}, rel err "
            f"{abs(row.numerical - row.analytical) / max(abs(row.numerical), abs(row.analytical), 1e-300):.3g} "
            f"(passes when abs err <= atol + rtol * |value|, atol={atol:g}, rtol={rtol:g}, eps={eps:g}; "
            f"{row.coords} coordinates checked)"
        )
    else:  # the values agree, and something else is wrong (it accumulates, it is float32 only, ...)
        first = next(d for d in row.diagnoses if d.bug)
        message = f"{name}: {row.tensor} (shape {row.shape}) {first.kind}: {first.message}"
    if len(failed) > 1:
        message += "; also failing: " + ", ".join(f"{other.tensor} {other.shape}" for other in failed[1:])
    said = None if row.problem else first
    lines = [f"  {other.tensor} {other.shape}: {d}" for other in failed for d in other.diagnoses if d is not said]
    return "\n".join([message, *lines])
