"""What every shared base of nnscratch/specs/ promises, checked on a fast layer and its textbook twin
built from one configuration (tests/specs/): siblings, never each other's base; ``parameter_specs``
(and ``buffer_specs``) give exactly the arrays the constructor makes; ``config`` rebuilds the layer;
``output_shape`` is the shape forward gives; the same seed gives the same initial parameters."""

from __future__ import annotations

import numpy as np


def check_siblings(base, fast_cls, twin_cls, config: dict, x, rng=None) -> None:
    seeded = {} if rng is None else {"rng": rng}
    fast, twin = fast_cls(**config, **seeded), twin_cls(**config, **seeded)
    assert isinstance(fast, base) and isinstance(twin, base)
    assert not isinstance(fast, twin_cls) and not isinstance(twin, fast_cls)
    assert not issubclass(fast_cls, twin_cls) and not issubclass(twin_cls, fast_cls)
    for layer in (fast, twin):
        if hasattr(type(layer), "parameter_specs"):  # a layer without parameters has none
            assert type(layer).parameter_specs(**config) == [(p.shape, p.dtype) for p in layer.parameters]
        if hasattr(type(layer), "buffer_specs"):
            assert type(layer).buffer_specs(**config) == [(b.shape, b.dtype) for b in layer.buffers]
        assert layer.config() == config
        assert type(layer)(**layer.config()).config() == config
        assert layer.output_shape(x.shape) == layer.forward(x).shape
    for a, b in zip(fast.parameters, twin.parameters, strict=True):
        np.testing.assert_array_equal(a, b)
