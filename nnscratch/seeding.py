"""Reproducible initialisation: one global seed, from which layers without an ``rng`` draw."""

from __future__ import annotations

import numpy as np

_global = np.random.default_rng()


def seed(n: int) -> None:
    """Seed every later layer initialisation (and shuffling) that is not given its own ``rng``."""
    global _global
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(n).__name__} {n!r}")
    _global = np.random.default_rng(int(n))


def default_rng() -> np.random.Generator:
    """A new generator drawn from the global one: same seed, same sequence of generators."""
    return np.random.default_rng(_global.integers(2**63))
