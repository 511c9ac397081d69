"""Finite differences and the tolerance rule: what a gradient is compared with, and how.

The scalar differentiated is ``f = sum(forward(x, *args) * R)`` for a fixed random ``R`` of the
output's shape, so every output element takes part (a scalar output works too). Its numerical
gradient along one coordinate ``t`` is the central difference

    df/dt ~ sum((forward(t + eps) - forward(t - eps)) * R) / ((t + eps) - (t - eps))

and a coordinate passes when |numerical - analytical| <= atol + rtol * max(|numerical|, |analytical|).
Where that fails, ``one_sided_slopes`` tells a kink (ReLU at 0, a max-pooling tie) from a bug, as
Chainer's ``numerical_grad(detect_nondifferentiable=True)`` does: on each side, differences at two
step sizes, eps and 2 * eps.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .report import TensorCheck

# Defaults, for float64 arithmetic. With eps = 1e-6 the truncation error of a central difference
# is ~eps**2 * f''' ~ 1e-12 and the rounding error ~1e-16 * |y| / eps ~ 1e-10 * |y|, so a correct
# gradient lands around 1e-9; a wrong one is off by orders of magnitude more.
DEFAULT_EPS = 1e-6
DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-5
DEFAULT_MAX_COORDS = 200


def sample_coords(size: int, max_coords: int | None, seed: int, tensor_index: int) -> np.ndarray:
    """Flat indices to check: all of them, or a sorted seeded sample of ``max_coords`` of them.

    Each tensor draws from its own stream (seed, tensor_index), so adding a parameter does not
    change which coordinates of the others are checked.
    """
    if max_coords is None or size <= max_coords:
        return np.arange(size)
    rng = np.random.default_rng([seed, tensor_index])
    return np.sort(rng.choice(size, size=max_coords, replace=False))


def central_differences(run, target: np.ndarray, coords, r: np.ndarray, eps: float):
    """Central differences of sum(forward * R) along each flat coordinate of ``target``.

    ``target`` is the working copy's own array (its input ``run.x`` or a parameter), nudged in place
    and restored.

    Also returns, per coordinate, an estimate of the rounding noise in that difference, so an
    all-zero analytical gradient can be told apart from a function that does not change.
    """
    grads = np.empty(len(coords))
    noise = np.empty(len(coords))
    for k, flat in enumerate(coords):
        value = target.flat[flat]
        plus, minus = value + eps, value - eps
        target.flat[flat] = plus
        y_plus = run.forward()
        target.flat[flat] = minus
        y_minus = run.forward()
        target.flat[flat] = value
        # The step actually taken: exact (Sterbenz), unlike 2 * eps when |value| >> eps.
        step = plus - minus
        # Difference elementwise first: unchanged elements then cancel exactly, whatever |y| is.
        grads[k] = np.sum((y_plus - y_minus) * r) / step
        changed = y_plus != y_minus
        size = np.maximum(np.abs(y_plus), np.abs(y_minus))[changed]
        noise[k] = 64 * np.finfo(np.float64).eps * np.sum(size * np.abs(r[changed])) / step
    return grads, noise


def one_sided_slopes(run, target: np.ndarray, flat: int, r: np.ndarray, eps: float, y0: np.ndarray):
    """The left and right derivatives of sum(forward * R) along one coordinate, each from differences
    at steps eps and 2 * eps extrapolated to step 0 (2 d(eps) - d(2 eps)): they agree to O(eps^2)
    where the function is smooth, and differ by the jump in slope at a kink within 2 * eps."""
    value = target.flat[flat]
    slopes = []
    for sign in (-1.0, 1.0):
        differences = []
        for step in (eps, 2 * eps):
            moved = value + sign * step
            target.flat[flat] = moved
            differences.append(np.sum((run.forward() - y0) * r) / (moved - value))
        slopes.append(2 * differences[0] - differences[1])
    target.flat[flat] = value
    return slopes[0], slopes[1]


@dataclasses.dataclass
class Comparison:
    """The numerical and analytical gradients of one tensor at its checked coordinates.

    ``full`` is the whole analytical gradient (the tensor's shape), which the diagnoses also read."""

    coords: np.ndarray
    numerical: np.ndarray
    analytical: np.ndarray
    noise: np.ndarray
    full: np.ndarray
    atol: float
    rtol: float

    @classmethod
    def of(cls, coords, numerical, noise, full, atol, rtol) -> "Comparison":
        return cls(coords, numerical, np.asarray(full).ravel()[coords], noise, full, atol, rtol)

    @property
    def abs_err(self) -> np.ndarray:
        return np.abs(self.numerical - self.analytical)

    @property
    def tolerance(self) -> np.ndarray:
        return self.atol + self.rtol * np.maximum(np.abs(self.numerical), np.abs(self.analytical))

    @property
    def bad(self) -> np.ndarray:
        """Per checked coordinate: beyond its tolerance."""
        return self.abs_err > self.tolerance

    @property
    def all_zero(self) -> bool:
        """The analytical gradient is 0 at every checked coordinate while the function changes."""
        return bool(len(self.coords) and not self.analytical.any() and (np.abs(self.numerical) > self.noise).any())

    @property
    def problem(self) -> str:
        if self.bad.any():
            return "gradient is wrong"
        return "analytical gradient is all zero, but the function changes" if self.all_zero else ""

    def index(self, k: int) -> tuple:
        """The tensor index of checked coordinate number k."""
        return tuple(int(i) for i in np.unravel_index(self.coords[k], self.full.shape))

    def worst(self) -> int:
        """The checked coordinate furthest beyond its tolerance, abs_err / tolerance. A tolerance is 0
        where atol = 0 and both gradients are 0 (no error there: ratio 0), or everywhere when atol =
        rtol = 0; any error over a zero tolerance is infinitely far beyond it, and the largest such
        error is the worst."""
        abs_err, tolerance = self.abs_err, self.tolerance
        beyond_zero = (tolerance == 0) & (abs_err > 0)
        if beyond_zero.any():
            return int(np.argmax(np.where(beyond_zero, abs_err, -1.0)))
        if not self.bad.any() and self.all_zero:
            return int(np.argmax(np.abs(self.numerical) - self.noise))
        return int(np.argmax(abs_err / np.where(tolerance > 0, tolerance, 1.0)))

    def row(self, tensor: str, passed: bool, diagnoses: list) -> TensorCheck:
        """The report's row for this tensor."""
        if not len(self.coords):
            return TensorCheck(tensor, tuple(self.full.shape), 0, 0.0, 0.0, passed, diagnoses=diagnoses)
        abs_err = self.abs_err
        scale = np.maximum(np.abs(self.numerical), np.abs(self.analytical))
        # scale > 0 matters only when atol = 0: both gradients exactly 0 then, so no error, rel err 0.
        big = (scale >= self.atol) & (scale > 0)
        rel_err = np.where(big, abs_err / np.where(big, scale, 1.0), 0.0)
        worst = self.worst()
        return TensorCheck(
            tensor=tensor, shape=tuple(self.full.shape), coords=len(self.coords),
            max_abs_err=float(abs_err.max()), max_rel_err=float(rel_err.max()), passed=passed,
            worst_index=self.index(worst), numerical=float(self.numerical[worst]),
            analytical=float(self.analytical[worst]), problem=self.problem, diagnoses=diagnoses,
        )
