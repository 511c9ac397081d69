"""nnscratch.init: fans, gains, the statistics of large draws, in-place fills, the layers' default
initialisation unchanged, bad arguments."""

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch import init


def test_fans_of_a_linear_and_a_conv_weight():
    # nnscratch's Linear weight is (in, out): fan_in is its first axis (PyTorch's (out, in): its second)
    assert init.fan_in_and_fan_out(np.empty((784, 10))) == (784, 10)
    assert init.fan_in_and_fan_out(nn.Linear(12, 5, rng=0).weight) == (12, 5)
    # a conv weight (out, in, kh, kw), as PyTorch's: fan_in = in * kh * kw, fan_out = out * kh * kw
    assert init.fan_in_and_fan_out(np.empty((16, 3, 5, 4))) == (3 * 20, 16 * 20)
    assert init.fan_in_and_fan_out(nn.Conv2D(3, 8, (3, 2), rng=0).weight) == (18, 48)
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(7,\)"):
        init.fan_in_and_fan_out(np.empty(7))


def test_gains():
    assert init.calculate_gain("linear") == init.calculate_gain("conv2d") == init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match=r"calculate_gain: unknown nonlinearity 'swish', expected one of linear"):
        init.calculate_gain("swish")


# -- statistics of large draws: sample variance against the formula -----------------------------
# 10^6 draws: the sample variance of a uniform (normal) has a relative standard deviation of 0.09%
# (0.14%); the bounds below are 1%, over 7 standard deviations, and the draws are seeded.
STATISTICS = [
    # (fill, shape, variance)
    (lambda w: init.kaiming_uniform_(w, rng=1), (1000, 1000), 2 / 1000),
    (lambda w: init.kaiming_uniform_(w, mode="fan_out", rng=2), (500, 2000), 2 / 2000),
    (lambda w: init.kaiming_uniform_(w, a=0.5, rng=3), (1000, 1000), 2 / (1.25 * 1000)),
    (lambda w: init.kaiming_normal_(w, rng=4), (1000, 1000), 2 / 1000),
    (lambda w: init.kaiming_normal_(w, nonlinearity="tanh", mode="fan_out", rng=5), (40, 10, 50, 50), (25 / 9) / (40 * 2500)),
    (lambda w: init.kaiming_normal_(w, nonlinearity="linear", rng=6), (100, 10, 25, 40), 1 / (10 * 1000)),
    (lambda w: init.xavier_uniform_(w, rng=7), (800, 1250), 2 / (800 + 1250)),
    (lambda w: init.xavier_uniform_(w, gain=5 / 3, rng=8), (64, 16, 31, 31), (25 / 9) * 2 / ((16 + 64) * 961)),
    (lambda w: init.xavier_normal_(w, rng=9), (1000, 1000), 2 / 2000),
    (lambda w: init.xavier_normal_(w, gain=2.0, rng=10), (250, 4000), 4 * 2 / 4250),
]


@pytest.mark.parametrize("fill, shape, variance", STATISTICS)
def test_the_sample_variance_of_a_large_draw_matches_the_formula(fill, shape, variance):
    weight = np.empty(shape)
    assert fill(weight) is weight  # filled in place
    n = weight.size
    assert np.var(weight) == pytest.approx(variance, rel=0.01)
    assert abs(np.mean(weight)) < 6 * math.sqrt(variance / n)


@pytest.mark.parametrize("fill", [init.kaiming_uniform_, init.xavier_uniform_])
def test_uniform_draws_fill_their_interval(fill):
    weight = fill(np.empty((300, 700)), rng=0)
    bound = math.sqrt(6 / 300) if fill is init.kaiming_uniform_ else math.sqrt(6 / 1000)
    assert -bound <= weight.min() < -0.999 * bound and 0.999 * bound < weight.max() <= bound


def test_zeros_and_ones_and_the_dtype_is_kept():
    weight = np.full((3, 4), 7.0, np.float32)
    assert init.zeros_(weight) is weight and weight.dtype == np.float32 and not weight.any()
    assert init.ones_(weight) is weight and (weight == 1).all()
    init.kaiming_normal_(weight, rng=0)
    assert weight.dtype == np.float32
    np.testing.assert_array_equal(weight, np.random.default_rng(0).normal(0, math.sqrt(2 / 3), (3, 4)).astype(np.float32))


def test_the_rng_may_be_a_generator_a_seed_or_the_global_seed():
    def draw(rng):
        return init.xavier_uniform_(np.empty((20, 30)), rng=rng)

    np.testing.assert_array_equal(draw(5), draw(np.random.default_rng(5)))
    nn.seed(11)
    first = draw(None)
    second = draw(None)
    nn.seed(11)
    np.testing.assert_array_equal(draw(None), first)
    assert not np.array_equal(first, second)  # each call draws a fresh generator from the global one
    with pytest.raises(TypeError, match=r"xavier_uniform_: rng must be None, an int seed or a numpy Generator, got str"):
        draw("5")


# -- the layers' defaults: kaiming_uniform_, with the very numbers they always had --------------
def old_he_uniform(rng, fan_in, shape, dtype=np.float32):
    """The layers' initialisation before nnscratch.init, as it was written."""
    bound = math.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_and_conv2d_initialise_exactly_as_before(dtype):
    for seed in range(5):
        layer = nn.Linear(37, 11, dtype=dtype, rng=seed)
        np.testing.assert_array_equal(layer.weight, old_he_uniform(np.random.default_rng(seed), 37, (37, 11), dtype))
        assert not layer.bias.any() and layer.weight.dtype == dtype
        conv = nn.Conv2D(3, 6, (5, 3), dtype=dtype, rng=seed)
        np.testing.assert_array_equal(conv.weight, old_he_uniform(np.random.default_rng(seed), 45, (6, 3, 5, 3), dtype))
        assert not conv.bias.any()
    # with the global seed too, and a network drawing its layers one after the other from one generator
    nn.seed(3)
    net = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 2))
    nn.seed(3)
    from nnscratch import seeding

    first, second = seeding.default_rng(), seeding.default_rng()
    np.testing.assert_array_equal(net[0].weight, old_he_uniform(first, 8, (8, 4)))
    np.testing.assert_array_equal(net[1].weight, old_he_uniform(second, 4, (4, 2)))
    rng = np.random.default_rng(9)
    a, b = nn.Linear(5, 3, rng=rng), nn.Conv2D(2, 3, 3, rng=rng)
    rng = np.random.default_rng(9)
    np.testing.assert_array_equal(a.weight, old_he_uniform(rng, 5, (5, 3)))
    np.testing.assert_array_equal(b.weight, old_he_uniform(rng, 18, (3, 2, 3, 3)))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: init.kaiming_uniform_([[1.0, 2.0]]), TypeError, r"kaiming_uniform_: expected a numpy array to fill in place, got list"),
        (lambda: init.kaiming_normal_(np.zeros((2, 2), np.int32)), TypeError, r"kaiming_normal_: expected a floating-point array, got dtype int32"),
        (lambda: init.zeros_(np.broadcast_to(np.ones(2), (3, 2))), ValueError, r"zeros_: the array is read-only"),
        (lambda: init.kaiming_uniform_(np.zeros(4)), ValueError, r"kaiming_uniform_: expected a weight of at least 2 dimensions, got shape \(4,\)"),
        (lambda: init.xavier_normal_(np.zeros(4)), ValueError, r"xavier_normal_: expected a weight of at least 2 dimensions"),
        (lambda: init.kaiming_uniform_(np.zeros((2, 2)), mode="fan"), ValueError, r"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got 'fan'"),
        (lambda: init.kaiming_normal_(np.zeros((2, 2)), nonlinearity="gelu"), ValueError, r"kaiming_normal_: unknown nonlinearity 'gelu'"),
        (lambda: init.kaiming_normal_(np.zeros((2, 2)), a="0.1"), TypeError, r"the negative slope of leaky_relu must be a real number, got str '0.1'"),
        (lambda: init.xavier_uniform_(np.zeros((2, 2)), gain=0), ValueError, r"xavier_uniform_: gain must be > 0, got 0"),
        (lambda: init.xavier_uniform_(np.zeros((2, 2)), gain="1"), TypeError, r"xavier_uniform_: gain must be a real number, got str"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- PyTorch: the same fans (of the transposed Linear weight) and gains ------------------------
@pytest.mark.torch
def test_fans_and_gains_match_torch():
    torch = pytest.importorskip("torch")
    from torch.nn.init import _calculate_fan_in_and_fan_out, calculate_gain

    linear = torch.nn.Linear(12, 5)  # weight (5, 12) there, (12, 5) here
    assert init.fan_in_and_fan_out(nn.Linear(12, 5, rng=0).weight) == _calculate_fan_in_and_fan_out(linear.weight)
    conv = torch.nn.Conv2d(3, 8, (3, 2))
    assert init.fan_in_and_fan_out(nn.Conv2D(3, 8, (3, 2), rng=0).weight) == _calculate_fan_in_and_fan_out(conv.weight)
    for name in init.NONLINEARITIES:
        assert init.calculate_gain(name) == pytest.approx(calculate_gain(name), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.3) == pytest.approx(calculate_gain("leaky_relu", 0.3), rel=1e-15)


@pytest.mark.torch
@pytest.mark.parametrize("name, kwargs", [("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
                                          ("kaiming_normal_", {"a": 0.2}), ("xavier_uniform_", {"gain": 1.5}),
                                          ("xavier_normal_", {})])
def test_torch_s_draws_have_our_variance_for_the_same_layer(name, kwargs):
    # Different generators, so compare distributions: torch's draw for its (out, in) weight and ours
    # for the (in, out) weight of the same layer have the same variance.
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = getattr(torch.nn.init, name)(torch.empty(400, 2500, dtype=torch.float64), **kwargs).numpy()
    ours = getattr(init, name)(np.empty((2500, 400)), rng=0, **kwargs)
    assert np.var(ours) == pytest.approx(np.var(theirs), rel=0.01)
