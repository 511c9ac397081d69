"""Adam and AdamW (nnscratch/optim/adam.py): the bias correction by hand, the textbook twin over many
steps and random settings, weight decay coupled (Adam) or decoupled (AdamW), and why float16 is refused."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn

from helpers.textbook_optim import Param, Params, textbook_adam


def test_adam_bias_correction_hand_computed():
    layer = Param(1.0)
    # t=1, g=0.5:  m = 0.05, v = 0.00025, m_hat = 0.05 / 0.1 = 0.5, v_hat = 0.00025 / 0.001 = 0.25
    #              p = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    p1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    # t=2, g=-1:   m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975
    #              m_hat = -0.055 / 0.19, v_hat = 0.00124975 / 0.001999
    p2 = p1 - 0.1 * (-0.055 / 0.19) / (np.sqrt(0.00124975 / 0.001999) + 1e-8)
    values = layer.run(nn.Adam(layer, lr=0.1), [0.5, -1.0])
    assert values == pytest.approx([p1, p2], rel=1e-12)
    assert values[0] == pytest.approx(0.9, abs=1e-7)  # the first step moves by lr, whatever the gradient's size
    assert values[1] == pytest.approx(0.936610, abs=1e-6)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_the_textbook_over_many_steps(dtype, rtol, weight_decay):
    rng = np.random.default_rng(3)
    start = rng.normal(size=(4, 3))
    grads = rng.normal(size=(25, 4, 3)) * np.logspace(-4, 1, 25)[:, None, None]  # small and large
    layer = Param(0.0, dtype=dtype)
    layer.parameters = [start.astype(dtype)]
    layer.parameters_deltas = [np.zeros((4, 3), dtype)]
    optimizer = nn.Adam(layer, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=weight_decay)
    for g in grads:
        layer.parameters_deltas[0][...] = g
        optimizer.step()
    expected = textbook_adam(start, grads.astype(dtype), 0.05, (0.8, 0.99), 1e-6, weight_decay)
    assert layer.parameters[0].dtype == dtype
    np.testing.assert_allclose(layer.parameters[0], expected, rtol=rtol, atol=rtol * 1e-3)


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-4, 0.5), beta1=st.sampled_from([0.0, 0.5, 0.9]), beta2=st.sampled_from([0.9, 0.99, 0.999]),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-3]),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4), steps=st.integers(1, 6), seed=st.integers(0, 2**16),
)
def test_adam_matches_the_textbook_for_random_settings(lr, beta1, beta2, eps, weight_decay, sizes, steps, seed):
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=size) for size in sizes]
    grads = [rng.normal(size=(steps, size)) for size in sizes]
    layer = Params(starts, np.float64)
    optimizer = nn.Adam(layer, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    for t in range(steps):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        expected = textbook_adam(start, g, lr, (beta1, beta2), eps, weight_decay)
        np.testing.assert_allclose(p, expected, rtol=1e-9, atol=1e-12)


def test_adam_weight_decay():
    layer = Param(1.0)
    # g = 0 + 0.5 * 1 = 0.5, so the first step is again lr * 0.5 / 0.5
    assert layer.run(nn.Adam(layer, lr=0.01, weight_decay=0.5), [0.0]) == pytest.approx([0.99], abs=1e-7)


def test_adamw_decays_the_weight_not_the_gradient():
    layer = Param(1.0)
    # t=1: p = 1 * (1 - 0.1 * 0.5) = 0.95, then Adam's first step moves it by lr: 0.85. (Adam with
    # L2 decay would see g = 0.5 + 0.5 * 1 and also move by lr, from 1: 0.9.)
    # t=2, g=-1: p = 0.85 * 0.95 = 0.8075, then the same Adam step as in the Adam test above:
    #      + 0.1 * (0.055 / 0.19) / sqrt(0.00124975 / 0.001999) = + 0.03661035
    step2 = 0.1 * (0.055 / 0.19) / (np.sqrt(0.00124975 / 0.001999) + 1e-8)
    values = layer.run(nn.AdamW(layer, lr=0.1, weight_decay=0.5), [0.5, -1.0])
    assert values == pytest.approx([0.95 - 0.1 * 0.5 / (0.5 + 1e-8), 0.85 * 0.95 + step2], abs=1e-8)
    assert values[1] == pytest.approx(0.84411035, abs=1e-8)
    assert nn.AdamW(Param(1.0)).weight_decay == 0.01  # PyTorch's default


def test_float16_would_break_adam():
    # Why the refusal: Adam's eps is 0 in float16, and the first zero gradient divides 0 by 0.
    assert np.float16(1e-8) == 0
    with pytest.raises(TypeError, match=r"Adam: parameter 0 is float16.*float16 eps rounds to zero"):
        nn.Adam(Param(1.0, np.float16))
