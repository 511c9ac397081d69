"""What the diagnoses work with: the tensors under check, and fresh forward/backward calls on the copy."""

from __future__ import annotations

import dataclasses

import numpy as np

from .numerical import Comparison, central_differences


@dataclasses.dataclass
class Target:
    """One tensor under check: the input (index 0) or parameter index - 1, as the working copy's own
    array (nudged in place by the differences), and the flat coordinates checked."""

    index: int
    label: str
    array: np.ndarray
    coords: np.ndarray

    def gradient(self, result):
        """This tensor's gradient in a Runner.backward result (input gradient, parameter deltas)."""
        return result[0] if self.index == 0 else result[1][self.index - 1]


@dataclasses.dataclass
class Context:
    """The working copy's runner, R and the tolerances, shared by the probes of one check.

    ``y0`` is the output at the current point (moved when a probe is moved off a kink);
    ``accumulating`` the indices of the tensors whose gradient each backward adds to the last one
    (their gradient is then the increment of two backwards); ``independent`` whether the layer
    treats samples independently (True, False, or None when it does not say: see traits.py);
    ``integer_input`` whether x holds integer ids."""

    run: object
    r: np.ndarray
    y0: np.ndarray
    eps: float
    atol: float
    rtol: float
    seed: int
    targets: list
    independent: bool | None = None
    integer_input: bool = False
    accumulating: set = dataclasses.field(default_factory=set)

    @property
    def x_shape(self) -> tuple:
        return tuple(np.shape(self.run.x))

    def gradient(self, target: Target, delta=None, x=None) -> np.ndarray:
        """target's gradient after a fresh forward (of ``x``, or the working x) and backward(delta or R)."""
        delta = self.r if delta is None else delta
        self.run.forward(x)
        first = target.gradient(self.run.backward(delta))
        if target.index not in self.accumulating:
            return first
        self.run.forward(x)
        return target.gradient(self.run.backward(delta)) - first

    def compare(self, target: Target) -> Comparison:
        """The numerical and analytical gradients of ``target`` at the current point."""
        return self.compare_with(target, self.gradient(target))

    def compare_with(self, target: Target, full: np.ndarray) -> Comparison:
        """``full``, an analytical gradient of ``target``, against central differences at its coordinates."""
        numerical, noise = central_differences(self.run, target.array, target.coords, self.r, self.eps)
        return Comparison.of(target.coords, numerical, noise, full, self.atol, self.rtol)


def fmt(value: float) -> str:
    """A number as the messages print it: 4 significant digits (and 0, never -0)."""
    return f"{value + 0.0:.4g}"


def fmt_pair(a: float, b: float) -> tuple:
    """Two numbers with as many digits as it takes to tell them apart (4 to 12)."""
    for digits in range(4, 13):
        texts = (f"{a + 0.0:.{digits}g}", f"{b + 0.0:.{digits}g}")
        if texts[0] != texts[1]:
            break
    return texts


def at(comparison: Comparison, k: int) -> str:
    """'(i, j): numerical a, analytical b' for checked coordinate number k."""
    numerical, analytical = fmt_pair(comparison.numerical[k], comparison.analytical[k])
    return f"{comparison.index(k)}: numerical {numerical}, analytical {analytical}"


def worst_first(comparison: Comparison) -> np.ndarray:
    """The checked coordinates beyond their tolerance, the furthest beyond it first."""
    bad = np.flatnonzero(comparison.bad)
    tolerance = comparison.tolerance[bad]
    ratio = comparison.abs_err[bad] / np.where(tolerance > 0, tolerance, 1e-300)
    return bad[np.argsort(-ratio, kind="stable")]
