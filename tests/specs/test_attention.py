"""What MultiHeadAttention shares with its textbook twin (nnscratch/specs/attention.py): the checked
hyperparameters, the projections' shapes and initialisation, the config, the shapes, the padding mask."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.specs.attention import MultiHeadAttentionBase

from helpers.siblings import check_siblings


@pytest.mark.parametrize("config", [
    {"embed_dim": 8, "num_heads": 2, "causal": False, "dropout": 0.0, "bias": True, "dtype": "float32"},
    {"embed_dim": 6, "num_heads": 3, "causal": True, "dropout": 0.0, "bias": False, "dtype": "float64"},
])
def test_attention_siblings(config):
    x = np.random.default_rng(0).standard_normal((2, 5, config["embed_dim"]))
    check_siblings(MultiHeadAttentionBase, nn.MultiHeadAttention, nn.reference.MultiHeadAttention, config, x, rng=4)


def test_the_heads_split_the_features():
    layer = nn.reference.MultiHeadAttention(12, 4, rng=0)
    assert layer.head_dim == 3 and [p.shape for p in layer.parameters] == [(36, 12), (36,), (12, 12), (12,)]
    np.testing.assert_array_equal(layer.in_proj_bias, 0)
    limit = np.sqrt(6 / (12 + 36))  # Xavier uniform over (3E, E)
    assert np.abs(layer.in_proj_weight).max() <= limit


@pytest.mark.parametrize("kwargs, error, message", [
    ({"embed_dim": 10, "num_heads": 4}, ValueError, "embed_dim must be divisible by num_heads (each head gets "
                                                    "embed_dim // num_heads features), got embed_dim=10, num_heads=4"),
    ({"num_heads": 0}, ValueError, "num_heads must be a positive int, got 0"),
    ({"dropout": 1.0}, ValueError, "dropout must be >= 0 and < 1, got 1.0"),
    ({"causal": 1}, TypeError, "causal must be True or False, got int 1"),
])
def test_bad_hyperparameters(kwargs, error, message):
    arguments = {"embed_dim": 8, "num_heads": 2, **kwargs}
    for cls in (nn.MultiHeadAttention, nn.reference.MultiHeadAttention):
        for call in (cls, cls.parameter_specs):
            with pytest.raises(error) as info:
                call(**arguments)
            assert str(info.value) == f"{cls.__name__}: {message}"


def test_shapes_and_the_padding_mask_are_checked_before_any_work():
    layer = nn.MultiHeadAttention(4, 2, rng=0)
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"^MultiHeadAttention: expected 4 features \(x of shape \(N, T, 4\)\), "
                                         r"got x of shape \(2, 3, 5\)$"):
        layer.output_shape((2, 3, 5))
    with pytest.raises(TypeError, match="key_padding_mask must be a numpy bool array of shape"):
        layer.forward(x, key_padding_mask=[[False] * 3] * 2)
    with pytest.raises(TypeError, match=r"got dtype int64; use mask.astype\(bool\) for 0/1 values$"):
        layer.forward(x, key_padding_mask=np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(N, T\) = \(2, 3\) .* got shape \(3, 2\)$"):
        layer.forward(x, key_padding_mask=np.zeros((3, 2), bool))
