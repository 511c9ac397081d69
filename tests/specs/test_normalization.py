"""What the batch norms share with their textbook twins (nnscratch/specs/normalization.py): the checked
hyperparameters, parameters and running statistics, the configs and shapes."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.specs import BatchNormBase

from helpers.siblings import check_siblings

CONFIGS = [
    {"num_features": 3, "eps": 1e-5, "momentum": 0.1, "affine": True, "dtype": "float32"},
    {"num_features": 2, "eps": 1e-3, "momentum": 1.0, "affine": False, "dtype": "float64"},
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name, shape", [("BatchNorm1D", (4, None)), ("BatchNorm1D", (4, None, 5)),
                                         ("BatchNorm2D", (4, None, 3, 2))])
def test_batch_norm_siblings(name, shape, config):
    shape = tuple(config["num_features"] if s is None else s for s in shape)
    x = np.random.default_rng(0).standard_normal(shape)
    check_siblings(BatchNormBase, getattr(nn, name), getattr(nn.reference, name), config, x)


def test_parameters_start_at_one_and_zero_and_the_statistics_at_zero_and_one():
    layer = nn.reference.BatchNorm2D(3)
    np.testing.assert_array_equal(layer.weight, 1)
    np.testing.assert_array_equal(layer.bias, 0)
    np.testing.assert_array_equal(layer.running_mean, 0)
    np.testing.assert_array_equal(layer.running_var, 1)
    assert layer.parameters == [layer.weight, layer.bias] and layer.buffers == [layer.running_mean, layer.running_var]
    plain = nn.BatchNorm1D(3, affine=False)
    assert plain.parameters == [] and plain.weight is None and len(plain.buffers) == 2


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_features": 0}, ValueError, "num_features must be a positive int, got 0"),
    ({"eps": 0.0}, ValueError, "eps must be > 0, got 0.0"),
    ({"momentum": 1.5}, ValueError, "momentum must be >= 0 and <= 1, got 1.5"),
    ({"affine": "yes"}, TypeError, "affine must be True or False, got str 'yes'"),
])
def test_bad_hyperparameters_are_refused_by_the_specs_as_by_the_constructor(kwargs, error, message):
    arguments = {"num_features": 3, **kwargs}
    for cls in (nn.BatchNorm1D, nn.reference.BatchNorm1D, nn.BatchNorm2D):
        expected = f"{cls.__name__}: {message}"
        for call in (cls, cls.parameter_specs, cls.buffer_specs):
            with pytest.raises(error) as info:
                call(**arguments)
            assert str(info.value) == expected


def test_output_shape_names_the_layout_expected():
    with pytest.raises(ValueError, match=r"^BatchNorm2D: expected input of shape \(N, 3, H, W\) \(3 channels\), "
                                         r"got shape \(2, 3\)$"):
        nn.BatchNorm2D(3).output_shape((2, 3))
    with pytest.raises(ValueError, match=r"^BatchNorm1D: expected input of shape \(N, 3\) or \(N, 3, L\) \(3 features\), "
                                         r"got shape \(2, 4\)$"):
        nn.reference.BatchNorm1D(3).output_shape((2, 4))
