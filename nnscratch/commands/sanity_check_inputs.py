"""The building blocks of ``nnscratch sanity-check``'s cases: ``Case``, and seeded inputs and targets.

The inputs are seeded and kept away from the points where a layer is not differentiable (ReLU's
kink, max-pooling ties, log of a probability near 0), so a central difference with eps = 1e-6 is
a fair reference. ``make_input`` and ``make_targets`` also build the input and targets of a
user's layer given with ``--layer``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

# the kinds of loss targets: integer labels (N,), one-hot rows (N, C), soft rows (N, C) summing to 1
TARGET_KINDS = ("integer", "one-hot", "soft")
# the kinds of input for a user's layer (--input): see make_input
INPUT_KINDS = ("normal", "away-from-zero", "positive", "probabilities", "ids:V")



@dataclasses.dataclass
class Case:
    """One configuration to check: ``build()`` returns (layer, x, args)."""

    layer: str
    config: str
    build: Callable[[], tuple]
    hint: str = ""  # added to a failure that is a non-finite output or gradient


# -- inputs kept away from kinks -------------------------------------------------------------
def normal_input(shape, seed, scale=1.0, offset=0.0):
    """Seeded N(offset, scale^2) values of the given shape."""
    return offset + scale * np.random.default_rng(seed).standard_normal(shape)


def away_from_zero(shape, seed):
    """|x| in [0.1, 2]: far from ReLU's kink at 0 compared with eps = 1e-6."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)


def separated(shape, seed):
    """A random permutation of values 0.1 apart: no near-ties for max pooling."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size) - size / 2).reshape(shape) * 0.1


def distributions(shape, seed):
    """Positive values summing to 1 along the last axis, each at least 0.2 / (0.2 + C - 1) (0.048 for
    C = 5), so log and 1/p stay tame under a nudge of eps."""
    p = np.random.default_rng(seed).uniform(0.2, 1.0, shape)
    return p / p.sum(axis=-1, keepdims=True)


def make_input(kind, shape, seed):
    """A seeded input of one of ``INPUT_KINDS`` (a user's layer, ``--input``):

    normal          N(0, 1)
    away-from-zero  |x| in [0.1, 2], either sign: no kink at 0 within reach of eps (ReLU-like layers)
    positive        uniform in [0.5, 2]: for log, sqrt, 1/x
    probabilities   positive and summing to 1 along the last axis: for a loss on probabilities
    ids:V           integers in [0, V): for a layer whose input is integer ids (an embedding)
    """
    if kind.startswith("ids:"):
        return np.random.default_rng(seed).integers(0, int(kind[4:]), shape)
    if kind == "normal":
        return normal_input(shape, seed)
    if kind == "away-from-zero":
        return away_from_zero(shape, seed)
    if kind == "positive":
        return np.random.default_rng(seed).uniform(0.5, 2.0, shape)
    return distributions(shape, seed)


def make_targets(kind, n, c, seed):
    """Seeded targets of one of ``TARGET_KINDS`` for n samples and c classes: (n,) or (n, c)."""
    labels = np.random.default_rng(seed).integers(0, c, n)
    if kind == "integer":
        return labels
    if kind == "one-hot":
        return np.eye(c)[labels]
    return distributions((n, c), seed + 1)  # soft


def with_statistics(layer, seed, training=True):
    """A normalization layer with seeded weight, bias and running statistics (not the 1, 0, 0, 1 a new
    one starts with, which would hide a swapped term), in train or eval mode."""
    rng = np.random.default_rng(seed)
    ranges = list(zip(layer.parameters, ((0.5, 1.5), (-1.0, 1.0)))) + list(zip(layer.buffers, ((-0.5, 0.5), (0.5, 2.0))))
    for array, (low, high) in ranges:  # weight, bias; running mean, running variance (positive)
        array[...] = rng.uniform(low, high, array.shape)
    return layer.train(training)
