"""Weight initializers, in PyTorch's naming: each fills an array in place and returns it.

    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", rng=0)
    nn.init.zeros_(layer.bias)

The random ones draw from ``rng``: a numpy Generator, an int seed, or None for a generator drawn
from the global seed (``nnscratch.seed``), as the layers do. The draws are float64, rounded to the
array's dtype.

Fans. A Linear weight is (in_features, out_features) in nnscratch, because y = x @ W, and
(out_features, in_features) in PyTorch. So for a 2-D array fan_in = shape[0] and fan_out = shape[1]
here: the transpose of PyTorch's rule, which gives the same fans, and the same distribution, for
the same layer. A convolution weight (out_channels, in_channels, kh, kw) is laid out as PyTorch's,
and its fans are PyTorch's: fan_in = in_channels * kh * kw, fan_out = out_channels * kh * kw.

Variances (gain from ``calculate_gain``, fan from ``mode``):
    kaiming_uniform_: U(-b, b), b = gain * sqrt(3 / fan)     kaiming_normal_: N(0, gain^2 / fan)
    xavier_uniform_:  U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
    xavier_normal_:   N(0, gain^2 * 2 / (fan_in + fan_out))
He (Kaiming) keeps the activations' scale through ReLU layers; Glorot (Xavier) balances forward and
backward through layers that are linear near 0 (tanh, sigmoid).
"""

from __future__ import annotations

import math

import numpy as np

from .seeding import get_rng
from .validation import check_number

NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def _check_array(owner: str, array) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{owner}: expected a numpy array to fill in place, got {type(array).__name__}")
    if array.dtype.kind != "f":
        raise TypeError(f"{owner}: expected a floating-point array, got dtype {array.dtype}")
    if not array.flags.writeable:
        raise ValueError(f"{owner}: the array is read-only, so it cannot be filled in place")
    return array


def _rng(owner: str, rng) -> np.random.Generator:
    try:
        return get_rng(rng)
    except TypeError as error:
        raise TypeError(f"{owner}: {error}") from None


def fan_in_and_fan_out(array) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: (shape[0], shape[1]) for a 2-D (in, out) Linear weight;
    (in_channels * k, out_channels * k), k the product of the kernel sizes, for a convolution
    weight (out_channels, in_channels, kh, kw, ...). See the module docstring."""
    shape = np.shape(array)
    if len(shape) < 2:
        raise ValueError(f"fan_in_and_fan_out: expected a weight of at least 2 dimensions, got shape {shape}")
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def _gain_squared(owner: str, nonlinearity: str, param) -> float:
    """gain^2, exactly 2.0 for relu and leaky_relu(0), so He's bound is sqrt(6 / fan) to the bit."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{owner}: unknown nonlinearity {nonlinearity!r}, expected one of {', '.join(NONLINEARITIES)}")
    if nonlinearity == "tanh":
        return (5.0 / 3.0) ** 2
    if nonlinearity == "relu":
        return 2.0
    if nonlinearity == "selu":
        return (3.0 / 4.0) ** 2
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        slope = check_number(owner, "the negative slope of leaky_relu", slope)
        return 2.0 / (1.0 + slope**2)
    return 1.0


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity, as PyTorch's: 1 for linear, conv and sigmoid, 5/3 for
    tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope = param, default 0.01),
    3/4 for selu."""
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "selu":
        return 3.0 / 4.0
    return math.sqrt(_gain_squared("calculate_gain", nonlinearity, param))


def _fans(owner: str, array: np.ndarray) -> tuple[int, int]:
    if array.ndim < 2:
        raise ValueError(f"{owner}: expected a weight of at least 2 dimensions, got shape {array.shape}")
    return fan_in_and_fan_out(array)


def _fan(owner: str, array: np.ndarray, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{owner}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(owner, array)
    return fan_in if mode == "fan_in" else fan_out


# The four random initializers repeat the same steps (check, fans, a scale, one draw) on purpose: each
# reads on its own as its formula, as the functions of torch.nn.init do.
def kaiming_uniform_(array, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None) -> np.ndarray:
    """He (Kaiming) uniform: W ~ U(-b, b), b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    The defaults (leaky_relu with a = 0, fan_in) give b = sqrt(6 / fan_in): Linear's and Conv2D's
    initialisation. ``a`` is the negative slope of a leaky ReLU after the layer (0: plain ReLU).
    """
    owner = "kaiming_uniform_"
    _check_array(owner, array)
    fan = _fan(owner, array, mode)
    gain_squared = _gain_squared(owner, nonlinearity, a)
    if array.size:  # an empty array has nothing to fill (and a fan of 0)
        bound = math.sqrt(3.0 * gain_squared / fan)
        array[...] = _rng(owner, rng).uniform(-bound, bound, array.shape)
    return array


def kaiming_normal_(array, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None) -> np.ndarray:
    """He (Kaiming) normal: W ~ N(0, std^2), std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    owner = "kaiming_normal_"
    _check_array(owner, array)
    fan = _fan(owner, array, mode)
    gain_squared = _gain_squared(owner, nonlinearity, a)
    if array.size:
        std = math.sqrt(gain_squared / fan)
        array[...] = _rng(owner, rng).normal(0.0, std, array.shape)
    return array


def xavier_uniform_(array, gain=1.0, rng=None) -> np.ndarray:
    """Glorot (Xavier) uniform: W ~ U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))."""
    owner = "xavier_uniform_"
    _check_array(owner, array)
    gain = check_number(owner, "gain", gain, 0.0, low_inclusive=False)
    fan_in, fan_out = _fans(owner, array)
    if array.size:
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        array[...] = _rng(owner, rng).uniform(-bound, bound, array.shape)
    return array


def xavier_normal_(array, gain=1.0, rng=None) -> np.ndarray:
    """Glorot (Xavier) normal: W ~ N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    owner = "xavier_normal_"
    _check_array(owner, array)
    gain = check_number(owner, "gain", gain, 0.0, low_inclusive=False)
    fan_in, fan_out = _fans(owner, array)
    if array.size:
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
        array[...] = _rng(owner, rng).normal(0.0, std, array.shape)
    return array


def zeros_(array) -> np.ndarray:
    """Fill with 0 (biases)."""
    _check_array("zeros_", array).fill(0)
    return array


def ones_(array) -> np.ndarray:
    """Fill with 1."""
    _check_array("ones_", array).fill(1)
    return array
