"""The textbook MaxPool2D (nnscratch/reference/pool.py) against the loop twins in helpers/naive.py:
every configuration, ties, random configurations, sanity_check, the fast layer's constructor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from helpers.layer_configs import LAYOUTS, MAXPOOL_CONFIGS, with_layout
from helpers.naive import naive_maxpool2d_backward, naive_maxpool2d_forward


def pool_against_naive(layer, x, delta_seed=0):
    y = layer.forward(x)
    np.testing.assert_array_equal(y, naive_maxpool2d_forward(x, layer.kernel_size, layer.stride))
    delta = np.random.default_rng(delta_seed).standard_normal(y.shape)
    dx = layer.backward(delta)
    np.testing.assert_allclose(dx, naive_maxpool2d_backward(x, delta, layer.kernel_size, layer.stride),
                               rtol=1e-12, atol=1e-12)
    return y, dx, delta


# -- MaxPool2D --------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", MAXPOOL_CONFIGS, ids=[c[0] for c in MAXPOOL_CONFIGS])
@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_max_pool_matches_naive_twin(config, values):
    _, kernel, stride, shape = config
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) if values == "distinct" else rng.integers(0, 2, shape).astype(np.float64)
    layer = nn.reference.MaxPool2D(kernel, stride)
    y, dx, delta = pool_against_naive(layer, x)
    assert y.shape == layer.output_shape(shape)
    np.testing.assert_allclose(dx.sum(), delta.sum())  # every delta goes to exactly one input


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_max_pool_random_configurations_match_naive_twin(data):
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    stride = data.draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(kh, 9)),
             data.draw(st.integers(kw, 9)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) if data.draw(st.booleans()) else rng.integers(-1, 2, shape).astype(np.float64)
    pool_against_naive(nn.reference.MaxPool2D((kh, kw), stride), with_layout(x, data.draw(st.sampled_from(LAYOUTS))))


def test_max_pool_sanity_check_keeps_dtype_and_matches_the_fast_layer_s_constructor():
    x = (np.random.default_rng(0).permutation(2 * 3 * 7 * 7) * 0.1).reshape(2, 3, 7, 7)  # no near-ties
    report = nn.sanity_check(nn.reference.MaxPool2D(3, stride=2), x)
    assert report.passed and [row.tensor for row in report] == ["input"]
    layer = nn.reference.MaxPool2D((2, 3), stride=(1, 2))
    assert layer.config() == nn.MaxPool2D((2, 3), stride=(1, 2)).config() and repr(layer).startswith("MaxPool2D(")
    y = layer.forward(x.astype(np.float32))
    assert y.dtype == np.float32 and layer.backward(np.ones(y.shape)).dtype == np.float32
    assert layer.forward(np.arange(12).reshape(1, 1, 3, 4)).dtype == np.float32  # integers computed in float32
    layer.release_memory()
    with pytest.raises(RuntimeError, match="MaxPool2D.backward called before forward"):
        layer.backward(np.ones(y.shape))
