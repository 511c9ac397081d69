"""Reproducible initialisation: one global seed, from which layers without an ``rng`` draw."""

from __future__ import annotations

import numpy as np

from .validation import check_int

_global = np.random.default_rng()


def seed(n: int) -> None:
    """Seed every later layer initialisation (and shuffling) that is not given its own ``rng``."""
    global _global
    _global = np.random.default_rng(check_int("seed", "n", n, 0))


def default_rng() -> np.random.Generator:
    """A new generator drawn from the global one: same seed, same sequence of generators."""
    return np.random.default_rng(_global.integers(2**63))


def get_rng(rng) -> np.random.Generator:
    """The generator a layer initialises from: the one given, or one drawn from the global seed."""
    if rng is None:
        return default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")
