"""RMSprop and Adagrad (nnscratch/optim/rmsprop.py): hand-computed steps with momentum, centering and
weight decay."""

import math

import pytest

import nnscratch as nn

from helpers.textbook_optim import Param


def test_rmsprop_hand_computed():
    layer = Param(1.0)
    # t=1, g=1:  v = 0.1 * 1 = 0.1,              p = 1 - 0.1 * 1 / sqrt(0.1) = 0.68377223
    # t=2, g=-2: v = 0.09 + 0.1 * 4 = 0.49,      p = 0.68377223 + 0.1 * 2 / 0.7 = 0.96948652
    values = layer.run(nn.RMSprop(layer, lr=0.1, alpha=0.9, eps=1e-12), [1.0, -2.0])
    assert values == pytest.approx([0.68377223, 0.96948652], abs=1e-8)


def test_rmsprop_momentum_hand_computed():
    layer = Param(1.0)
    # t=1: u = 1 / sqrt(0.1) = 3.16227766, b = u,                          p = 0.68377223
    # t=2: u = -2 / 0.7 = -2.85714286, b = 0.5 * 3.16227766 + u = -1.27600403, p = 0.81137264
    values = layer.run(nn.RMSprop(layer, lr=0.1, alpha=0.9, eps=1e-12, momentum=0.5), [1.0, -2.0])
    assert values == pytest.approx([0.68377223, 0.81137264], abs=1e-8)


def test_rmsprop_centered_hand_computed():
    layer = Param(1.0)
    # t=1: a = 0.1, v = 0.1, v - a^2 = 0.09, u = 1 / 0.3,            p = 1 - 0.01 / 0.3 = 0.96666667
    # t=2: a = 0.09 - 0.2 = -0.11, v = 0.49, v - a^2 = 0.4779, u = -2 / sqrt(0.4779) = -2.89308691,
    #      p = 0.96666667 + 0.01 * 2.89308691 = 0.99559754
    values = layer.run(nn.RMSprop(layer, lr=0.01, alpha=0.9, eps=1e-12, centered=True), [1.0, -2.0])
    assert values == pytest.approx([1 - 0.01 / 0.3, 1 - 0.01 / 0.3 + 0.01 * 2 / math.sqrt(0.4779)], abs=1e-10)
    assert values[1] == pytest.approx(0.99559754, abs=1e-8)


def test_rmsprop_weight_decay_hand_computed():
    layer = Param(2.0)
    # g = 1 + 0.5 * 2 = 2, v = 0.01 * 4 = 0.04, p = 2 - 0.1 * 2 / 0.2 = 1
    assert layer.run(nn.RMSprop(layer, lr=0.1, eps=1e-12, weight_decay=0.5), [1.0]) == pytest.approx([1.0], abs=1e-9)


def test_adagrad_hand_computed():
    layer = Param(1.0)
    # t=1, g=3: G = 9,  p = 1 - 0.1 * 3 / 3 = 0.9;   t=2, g=4: G = 25, p = 0.9 - 0.1 * 4 / 5 = 0.82
    assert layer.run(nn.Adagrad(layer, lr=0.1, eps=1e-12), [3.0, 4.0]) == pytest.approx([0.9, 0.82], abs=1e-10)
    layer = Param(2.0)
    # g = 1 + 0.25 * 2 = 1.5, G = 2.25, p = 2 - 0.1 * 1.5 / 1.5 = 1.9
    assert layer.run(nn.Adagrad(layer, lr=0.1, weight_decay=0.25), [1.0]) == pytest.approx([1.9], abs=1e-9)
