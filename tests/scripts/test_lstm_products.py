"""scripts/lstm_products.py: its products are exactly the matrix products the fast LSTM layer makes in
one forward and backward (so its figure is that layer's floor), and it prints a time for each side."""

from collections import Counter

import numpy as np
import pytest

import nnscratch as nn
from helpers.script_modules import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("lstm_products.py")


def recorded_products(monkeypatch, work) -> Counter:
    """The (shape, shape) of every np.matmul that ``work()`` makes."""
    seen, real = Counter(), np.matmul

    def matmul(a, b, *args, **kwargs):
        seen[(np.shape(a), np.shape(b))] += 1
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(np, "matmul", matmul)
    try:
        work()
    finally:
        monkeypatch.undo()
    return seen


def test_the_products_are_the_lstm_layer_s(script, monkeypatch):
    n, t, size = 3, 5, 4
    layer = nn.LSTM(size, size, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((n, t, size), dtype=np.float32)

    def layer_work():
        layer.backward(np.ones_like(layer.forward(x)))

    expected = recorded_products(monkeypatch, layer_work)
    got = recorded_products(monkeypatch, script.numpy_products(script.shapes(n, t, size)))
    assert sum(expected.values()) == 2 * t + 5
    assert got == expected


def test_it_prints_each_side_s_time(script, capsys):
    assert script.main(["--batch", "2", "--steps", "3", "--size", "8", "--repeats", "2", "--no-torch"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "the products of one LSTM forward and backward, N=2, T=3, D=H=8, float32, best of 2:"
    name, ms, unit = out[1].split()
    assert name == "numpy" and float(ms) > 0 and unit == "ms" and len(out) == 2
