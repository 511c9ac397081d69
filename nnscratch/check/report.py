"""What a gradient check returns and raises: per-tensor rows, the report table, the failure message."""

from __future__ import annotations

import dataclasses


class GradientCheckError(AssertionError):
    """A gradient check failed. ``report``: the per-tensor rows, or None if it failed before them."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


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

    def __str__(self) -> str:
        return (
            f"{self.tensor} {self.shape}: {self.coords} coords, max abs err {self.max_abs_err:.2e}, "
            f"max rel err {self.max_rel_err:.2e}, {'PASS' if self.passed else 'FAIL'}"
        )


class GradientCheckReport(list):
    """What ``sanity_check`` returns: a list of ``TensorCheck`` rows with a readable table."""

    def __init__(self, layer: str, rows=()):
        super().__init__(rows)
        self.layer = layer

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self)

    def __str__(self) -> str:
        lines = [f"gradient check of {self.layer}:"]
        lines.append(f"  {'tensor':<28} {'coords':>6} {'max abs err':>11} {'max rel err':>11}  result")
        for row in self:
            tensor = f"{row.tensor} {row.shape}"
            lines.append(
                f"  {tensor:<28} {row.coords:>6} {row.max_abs_err:>11.2e} {row.max_rel_err:>11.2e}  "
                f"{'PASS' if row.passed else 'FAIL'}"
            )
        return "\n".join(lines)


def layer_name(layer) -> str:
    """The name a layer goes by in messages: its ``name`` attribute if a string, else its class."""
    name = getattr(layer, "name", None)
    return name if isinstance(name, str) else type(layer).__name__


def failure_message(name: str, failed: list, eps: float, atol: float, rtol: float) -> str:
    """One line for a failed check: the first failing tensor in full, then the others by name."""
    row = failed[0]
    message = (
        f"{name}: {row.problem} for {row.tensor} (shape {row.shape}) at index {row.worst_index}: "
        f"numerical {row.numerical:.9g}, analytical {row.analytical:.9g}, "
        f"abs err {abs(row.numerical - row.analytical):.3g}, rel err "
        f"{abs(row.numerical - row.analytical) / max(abs(row.numerical), abs(row.analytical), 1e-300):.3g} "
        f"(passes when abs err <= atol + rtol * |value|, atol={atol:g}, rtol={rtol:g}, eps={eps:g}; "
        f"{row.coords} coordinates checked)"
    )
    if len(failed) > 1:
        message += "; also failing: " + ", ".join(f"{other.tensor} {other.shape}" for other in failed[1:])
    return message
