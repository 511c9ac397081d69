"""What Conv2D and MaxPool2D share with their textbook twins (nnscratch/specs/windows.py): the windows
that fit an axis, the input a window needs, and the bases' specs, configs and shapes."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.specs import Conv2DBase, MaxPool2DBase, check_window_fits, window_output_size

from helpers.siblings import check_siblings


@pytest.mark.parametrize("size, kernel, stride, padding, expected", [
    (28, 3, 1, 1, 28), (28, 3, 1, 0, 26), (28, 2, 2, 0, 14), (7, 3, 2, 0, 3), (8, 3, 2, 0, 3), (5, 5, 1, 0, 1),
    (6, 3, 2, 1, 3),
])
def test_window_output_size_is_floor_as_pytorch(size, kernel, stride, padding, expected):
    assert window_output_size(size, kernel, stride, padding) == expected


def test_a_window_must_fit_the_input_once_padded():
    check_window_fits("Conv2D", (1, 1, 3, 3), (3, 3))
    check_window_fits("Conv2D", (1, 1, 1, 1), (3, 3), (1, 1))
    with pytest.raises(ValueError, match=r"^MaxPool2D: expected an input at least as large as the kernel 3x2, "
                                         r"got x of shape \(1, 1, 2, 5\)$"):
        check_window_fits("MaxPool2D", (1, 1, 2, 5), (3, 2))
    with pytest.raises(ValueError, match=r"^Conv2D: expected an input at least as large as the kernel 5x5 after "
                                         r"padding \(1, 0\), got x of shape \(2, 1, 2, 7\), 4x7 padded$"):
        check_window_fits("Conv2D", (2, 1, 2, 7), (5, 5), (1, 0))


@pytest.mark.parametrize("config", [
    {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True, "dtype": "float32"},
    {"in_channels": 1, "out_channels": 2, "kernel_size": [3, 2], "stride": [2, 1], "padding": 0, "bias": False,
     "dtype": "float64"},
])
def test_conv_siblings(config):
    x = np.random.default_rng(0).standard_normal((2, config["in_channels"], 7, 6))
    check_siblings(Conv2DBase, nn.Conv2D, nn.reference.Conv2D, config, x, rng=3)


@pytest.mark.parametrize("config", [{"kernel_size": 2, "stride": 2}, {"kernel_size": [3, 2], "stride": 1}])
def test_max_pool_siblings(config):
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 6))
    check_siblings(MaxPool2DBase, nn.MaxPool2D, nn.reference.MaxPool2D, config, x)


def test_max_pool_stride_defaults_to_the_kernel():
    assert nn.MaxPool2D(3).config() == {"kernel_size": 3, "stride": 3}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"in_channels": 0}, ValueError, "Conv2D: in_channels must be a positive int, got 0"),
    ({"kernel_size": (3, 3, 3)}, ValueError, r"Conv2D: kernel_size must be an int or an \(h, w\) pair"),
    ({"padding": -1}, ValueError, "Conv2D: padding must be a non-negative int, got -1"),
    ({"bias": 1}, TypeError, "Conv2D: bias must be True or False, got int 1"),
    ({"dtype": np.float16}, TypeError, "Conv2D: dtype float16 is not supported"),
])
def test_parameter_specs_check_every_argument_without_building(kwargs, error, match):
    arguments = {"in_channels": 1, "out_channels": 2, "kernel_size": 3, **kwargs}
    for cls in (nn.Conv2D, nn.reference.Conv2D):
        with pytest.raises(error, match=match.replace("Conv2D", cls.__name__)):
            cls.parameter_specs(**arguments)


def test_output_shape_refuses_what_forward_refuses():
    layer = nn.Conv2D(3, 4, 3)
    with pytest.raises(ValueError, match=r"^Conv2D: expected 3 input channels \(x of shape \(N, 3, H, W\)\), "
                                         r"got x of shape \(2, 2, 5, 5\)$"):
        layer.output_shape((2, 2, 5, 5))
    with pytest.raises(ValueError, match="expected an input at least as large as the kernel 3x3"):
        nn.MaxPool2D(3).output_shape((1, 1, 2, 2))
