"""Dropout: the loop-based twin on the same draws, the rates, eval mode, the gradient check that a
mask-ignoring backward fails, layout and dtype, bad input, save/load, PyTorch's semantics."""

import numpy as np
import pytest
from helpers.naive import naive_dropout_backward, naive_dropout_forward

import nnscratch as nn
from nnscratch.check import GradientCheckError, sanity_check


def draws(seed, shape, dtype=np.float64):
    """The uniforms Dropout(rng=seed) draws for its first C-order input of ``shape``."""
    return np.random.default_rng(seed).random(shape, dtype=dtype)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_forward_and_backward_equal_the_loop_twin_on_the_same_draws(p):
    x = np.random.default_rng(1).normal(size=(4, 3, 5))
    delta = np.random.default_rng(2).normal(size=x.shape)
    layer = nn.Dropout(p, rng=7)
    y = layer.forward(x)
    np.testing.assert_allclose(y, naive_dropout_forward(x, draws(7, x.shape), p), rtol=1e-15)
    np.testing.assert_allclose(layer.backward(delta), naive_dropout_backward(delta, draws(7, x.shape), p), rtol=1e-15)
    assert y.dtype == np.float64


def test_the_rate_and_the_mean_are_right():
    p = 0.3
    x = np.ones((200, 500), np.float32)
    y = nn.Dropout(p, rng=0).forward(x)
    assert set(np.unique(y)) == {np.float32(0.0), np.float32(1 / 0.7)}
    dropped = np.mean(y == 0)
    assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / x.size)  # within 4 standard errors
    assert abs(y.mean() - 1.0) < 0.01


def test_a_new_mask_every_forward_and_backward_uses_the_last():
    layer = nn.Dropout(0.5, rng=0)
    x = np.ones((8, 8))
    first, second = layer.forward(x), layer.forward(x)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), second)


def test_eval_mode_and_p_zero_are_the_identity():
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    layer = nn.Dropout(0.5, rng=0).eval()
    assert layer.forward(x) is x
    np.testing.assert_array_equal(layer.backward(x * 2), x * 2)
    zero = nn.Dropout(0.0, rng=0)
    assert zero.forward(x) is x and zero.training
    # eval mode draws nothing: the generator is where it was
    state = layer.rng.bit_generator.state
    layer.forward(x)
    assert layer.rng.bit_generator.state == state


def test_rng_sources_seed_generator_and_the_global_seed():
    x = np.ones((5, 5))
    generator = np.random.default_rng(3)
    assert nn.Dropout(rng=generator).rng is generator
    np.testing.assert_array_equal(nn.Dropout(rng=3).forward(x), nn.Dropout(rng=np.random.default_rng(3)).forward(x))
    nn.seed(11)
    a = nn.Dropout().forward(x)
    nn.seed(11)
    np.testing.assert_array_equal(nn.Dropout().forward(x), a)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.8])
def test_gradient_check_in_training_and_eval_mode(p):
    x = np.random.default_rng(0).normal(size=(4, 6))
    layer = nn.Dropout(p, rng=1)
    state = layer.rng.bit_generator.state
    report = sanity_check(layer, x)
    assert report.passed and report[0].coords == x.size
    assert layer.rng.bit_generator.state == state  # the check drew from a copy
    assert sanity_check(layer.eval(), x).passed


class MaskIgnoringDropout(nn.Dropout):
    """The bug numpy-ml shipped: backward scales delta but never applies the mask."""

    def backward(self, delta):
        return delta / (1.0 - self.p)


class GlobalRandomDropout(nn.Dropout):
    """Draws its mask from np.random's global state, which the check cannot rewind."""

    def _scaled_mask(self, x):
        return (np.random.random(x.shape) >= self.p) / (1.0 - self.p)


def test_a_backward_that_ignores_the_mask_fails_the_check():
    x = np.random.default_rng(0).normal(size=(4, 6))
    with pytest.raises(GradientCheckError, match=r"MaskIgnoringDropout: gradient is wrong for input"):
        sanity_check(MaskIgnoringDropout(0.5, rng=1), x)


def test_a_layer_drawing_from_the_global_state_is_told_where_to_keep_its_randomness():
    with pytest.raises(GradientCheckError, match=r"different outputs for the same input twice; .*self\.rng"):
        sanity_check(GlobalRandomDropout(0.5, rng=1), np.ones((3, 4)))


def test_dropout_inside_a_network_checks_with_its_loss():
    net = nn.Sequential(nn.Linear(5, 6, rng=0), nn.Tanh(), nn.Dropout(0.4, rng=1), nn.Linear(6, 3, rng=2),
                        nn.SoftmaxCrossEntropy(), nn.Mean())
    x, labels = np.random.default_rng(0).normal(size=(4, 5)), np.array([0, 2, 1, 1])
    assert sanity_check(net, x, (labels,)).passed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_a_channel_major_input_is_fine(dtype):
    memory = np.random.default_rng(0).normal(size=(3, 2, 4, 5)).astype(dtype)  # (C, N, H, W)
    x = memory.transpose(1, 0, 2, 3)  # an (N, C, H, W) view, as Conv2D gives
    layer = nn.Dropout(0.5, rng=0)
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert layer._mask.dtype == dtype  # (the mask is in C order: in memory order it measured no faster)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2 * x[kept], rtol=1e-6)
    dx = layer.backward(np.ones(x.shape, dtype))
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx != 0, kept)
    assert nn.Dropout(0.5, rng=0).forward(np.ones((2, 3), np.uint8)).dtype == np.float32


@pytest.mark.parametrize("p, error, match", [
    (1.0, ValueError, r"Dropout: p must be in \[0, 1\) \(the probability of zeroing an element\), got 1.0"),
    (-0.1, ValueError, r"Dropout: p must be in \[0, 1\).*got -0.1"),
    (float("nan"), ValueError, r"Dropout: p must be in \[0, 1\)"),
    ("0.5", TypeError, r"Dropout: p must be a number in \[0, 1\), got str '0.5'"),
    (True, TypeError, r"Dropout: p must be a number in \[0, 1\), got bool True"),
])
def test_bad_p(p, error, match):
    with pytest.raises(error, match=match):
        nn.Dropout(p)


def test_bad_input_delta_and_rng():
    layer = nn.Dropout(0.5, rng=0)
    with pytest.raises(TypeError, match="Dropout: expected a numpy array as input, got list"):
        layer.forward([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Dropout.backward called before forward"):
        layer.backward(np.ones(3))
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Dropout.backward: expected delta of shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy Generator, got str"):
        nn.Dropout(0.5, rng="seed")


def test_save_and_load_keep_p(tmp_path):
    net = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Dropout(0.25, rng=0))
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    assert isinstance(loaded[1], nn.Dropout) and loaded[1].p == 0.25 and repr(loaded[1]) == "Dropout(p=0.25)"
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(nn.predict(loaded, x), nn.predict(net, x))  # eval mode: no dropout


@pytest.mark.torch
def test_the_semantics_of_torch_dropout():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(50, 40)).astype(np.float32)
    for p in (0.2, 0.6):
        ours = nn.Dropout(p, rng=0)
        theirs = torch.nn.Dropout(p)
        t = torch.tensor(x, requires_grad=True)
        torch_y = theirs(t)
        torch_y.sum().backward()
        y = ours.forward(x)
        # both keep survivors as x / (1 - p), and the gradient is the scaled mask of that forward
        for output, gradient in ((y, ours.backward(np.ones_like(x))), (torch_y.detach().numpy(), t.grad.numpy())):
            kept = output != 0
            np.testing.assert_allclose(output[kept], x[kept] / (1 - p), rtol=1e-6)
            np.testing.assert_allclose(gradient, kept / np.float32(1 - p), rtol=1e-6)
        theirs.eval()
        np.testing.assert_array_equal(ours.eval().forward(x), theirs(torch.tensor(x)).numpy())


def test_release_memory_drops_the_mask():
    layer = nn.Dropout(0.5, rng=0)
    layer.forward(np.ones((3, 4)))
    layer.release_memory()
    assert layer._mask is None
    with pytest.raises(RuntimeError, match="Dropout.backward called before forward"):
        layer.backward(np.ones((3, 4)))
