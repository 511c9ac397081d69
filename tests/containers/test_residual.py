"""Residual: y = x + f(x) against a loop-based twin, hand-computed gradients, sanity_check, modes,
buffers, save/load and PyTorch."""

import json

import numpy as np
import pytest

import nnscratch as nn
from helpers.naive import naive_residual_mlp


def mlp_block(d=4, h=3, dtype=np.float64, seed=0):
    """Residual(Linear(d, h), Tanh(), Linear(h, d)) with non-zero biases."""
    block = nn.Residual(nn.Linear(d, h, dtype=dtype, rng=seed), nn.Tanh(), nn.Linear(h, d, dtype=dtype, rng=seed + 1))
    rng = np.random.default_rng(seed + 2)
    for p in block.parameters:
        p[...] = rng.normal(size=p.shape)
    return block


class Scale:
    """A plain protocol layer (no base class, no mode): y = s * x."""

    def __init__(self, s):
        self.s, self.parameters, self.parameters_deltas = s, [], []

    def forward(self, x, *args):
        return self.s * x

    def backward(self, delta):
        return self.s * delta


def test_forward_backward_against_the_loop_twin():
    block = mlp_block()
    rng = np.random.default_rng(3)
    x, delta = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    y = block.forward(x)
    dx = block.backward(delta)
    w1, b1, w2, b2 = block.parameters
    expected = naive_residual_mlp(x, w1, b1, w2, b2, delta)
    np.testing.assert_allclose(y, expected[0], rtol=1e-12)
    np.testing.assert_allclose(dx, expected[1], rtol=1e-12)
    for got, want in zip(block.parameters_deltas, expected[2:]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_skip_and_f_gradients_add():
    # f = 3x: y = 4x, dL/dx = delta + 3 delta
    block = nn.Residual(Scale(3.0))
    x = np.array([[1.0, -2.0]])
    np.testing.assert_array_equal(block.forward(x), [[4.0, -8.0]])
    np.testing.assert_array_equal(block.backward(np.array([[1.0, 0.5]])), [[4.0, 2.0]])
    # f = 0 (a zero Linear): y = x and dL/dx = delta exactly, the skip alone
    zero = nn.Linear(2, 2, dtype=np.float64)
    zero.weight[...] = 0
    block = nn.Residual(zero)
    np.testing.assert_array_equal(block.forward(x), x)
    np.testing.assert_array_equal(block.backward(np.array([[1.0, 0.5]])), [[1.0, 0.5]])


def test_sanity_check_on_the_input_and_every_parameter():
    report = nn.sanity_check(mlp_block(), np.random.default_rng(4).normal(size=(3, 4)))
    assert report.passed
    assert [row.tensor for row in report] == ["input", "parameter 0", "parameter 1", "parameter 2", "parameter 3"]


def test_sanity_check_of_a_conv_block_with_its_loss():
    block = nn.Residual(nn.Conv2D(2, 2, 3, padding=1, rng=0), nn.Tanh(), nn.Conv2D(2, 2, 3, padding=1, rng=1))
    net = nn.Sequential(block, nn.Flatten(), nn.Linear(32, 3, rng=2), nn.SoftmaxCrossEntropy(), nn.Mean())
    report = nn.sanity_check(net, np.random.default_rng(5).normal(size=(2, 2, 4, 4)), args=(np.array([0, 2]),))
    assert report.passed and len(list(report)) == 1 + 6


def test_nesting_and_parameters_are_the_layers_in_order():
    inner = mlp_block(seed=10)
    outer = nn.Residual(nn.Linear(4, 4, dtype=np.float64, rng=0), inner)
    assert len(outer.parameters) == 6
    assert all(a is b for a, b in zip(outer.parameters, outer[0].parameters + inner.parameters))
    assert all(a is b for a, b in zip(outer.parameters_deltas, outer[0].parameters_deltas + inner.parameters_deltas))
    # y = x + inner(h) = x + h + f(h), h = Linear(x): check against the pieces
    x = np.random.default_rng(6).normal(size=(3, 4))
    h = outer[0].forward(x)
    expected = x + inner.forward(h)
    np.testing.assert_allclose(outer.forward(x), expected, rtol=1e-12)
    assert nn.sanity_check(outer, x).passed


def test_trains_with_an_optimizer():
    block = mlp_block(dtype=np.float32)
    net = nn.Sequential(block, nn.MeanSquaredError(), nn.Mean())
    rng = np.random.default_rng(7)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    target = (x @ rng.normal(size=(4, 4))).astype(np.float32)
    optimizer = nn.Adam(net, lr=0.05)
    first = float(net.forward(x, target))
    for _ in range(50):
        net.forward(x, target)
        net.backward()
        optimizer.step()
    assert float(net.forward(x, target)) < 0.5 * first


def test_keeps_float32_end_to_end():
    block = mlp_block(dtype=np.float32)
    x = np.random.default_rng(8).normal(size=(3, 4)).astype(np.float32)
    y = block.forward(x)
    dx = block.backward(np.ones((3, 4)))  # a float64 delta is cast
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert all(d.dtype == np.float32 for d in block.parameters_deltas)
    assert block.forward(np.arange(12).reshape(3, 4)).dtype == np.float32  # integers compute in float32
    # float64 input: the block computes in its layers' float32, as Linear alone does (the skip made y float64,
    # so a float32 TransformerBlock handed float64 on to the rest of the model)
    y = block.forward(x.astype(np.float64))
    assert y.dtype == np.float32 and np.array_equal(y, block.forward(x))
    assert block.backward(np.ones((3, 4))).dtype == np.float32
    transformer = nn.TransformerBlock(4, 2, rng=0)
    assert transformer.forward(x[None].astype(np.float64)).dtype == np.float32


def test_train_eval_reach_the_layers_inside_and_buffers_are_concatenated():
    class Buffered(nn.Layer):
        def __init__(self, *shapes):
            super().__init__()
            self.buffers = [np.zeros(s) for s in shapes]

        def forward(self, x, *args):
            return x

        def backward(self, delta):
            return delta

    a, b = Buffered(2, 3), Buffered(4)
    dropout = nn.Dropout(0.5, rng=0)
    block = nn.Residual(a, nn.Sequential(dropout, b), Scale(1.0))
    assert all(x is y for x, y in zip(block.buffers, a.buffers + b.buffers)) and len(block.buffers) == 3
    net = nn.Sequential(nn.Linear(3, 3, rng=0), block)
    assert net.eval() is net and block.training is False and dropout.training is False and a.training is False
    x = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(block.forward(x), 2 * x)  # dropout is the identity in eval mode
    net.train()
    assert block.training and dropout.training
    assert not np.array_equal(block.forward(np.ones((64, 3), np.float32)), np.full((64, 3), 2.0))


def test_a_shape_mismatch_names_both_shapes():
    block = nn.Residual(nn.Linear(4, 3, rng=0))
    with pytest.raises(ValueError, match=r"Residual: f\(x\) has shape \(2, 3\) but x has shape \(2, 4\); "
                                         r"y = x \+ f\(x\) needs f to keep the shape of its input"):
        block.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"Residual: f\(x\) has shape \(1, 3\) but x has shape \(1, 4\)"):
        block.output_shape((1, 4))
    with pytest.raises(ValueError, match=r"Residual: f\(x\) has shape \(1, 3\) but x has shape \(1, 4\)"):
        block.summary((4,))
    # inside a Sequential, the position of the block comes first
    with pytest.raises(ValueError, match=r"in layer 1 \(Residual\) of Sequential: Residual: f\(x\) has shape"):
        nn.Sequential(nn.ReLU(), block).forward(np.zeros((2, 4), np.float32))


def test_bad_input():
    with pytest.raises(ValueError, match=r"Residual: expected at least one layer for f in y = x \+ f\(x\), got none"):
        nn.Residual()
    with pytest.raises(TypeError, match=r"Residual: layer 1 \(str\) does not follow the layer protocol.*missing forward"):
        nn.Residual(nn.ReLU(), "relu")
    block = nn.Residual(nn.Linear(4, 4, rng=0), nn.ReLU())
    with pytest.raises(TypeError, match=r"Residual: expected a numpy array as input, got list"):
        block.forward([[1.0] * 4])
    with pytest.raises(ValueError, match=r"in layer 0 \(Linear\) of Residual: Linear: expected 4 input features"):
        block.forward(np.zeros((2, 5), np.float32))
    with pytest.raises(RuntimeError, match=r"Residual.backward called before forward"):
        nn.Residual(nn.ReLU()).backward(np.zeros((2, 4)))
    block.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"Residual.backward: expected delta of shape \(2, 4\) \(the shape of the last output\), got \(4, 2\)"):
        block.backward(np.zeros((4, 2)))
    with pytest.raises(TypeError, match=r"Residual: index it with an int"):
        block[0:1]


def test_list_form_indexing_repr_and_summary():
    block = nn.Residual([nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 4, rng=1)])
    assert len(block) == 3 and block[1] is block.layers[1] and list(block) == block.layers
    assert repr(block) == (
        "Residual(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True, dtype='float32')\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=3, out_features=4, bias=True, dtype='float32')\n"
        ")"
    )
    net = nn.Sequential(block, nn.ReLU())
    assert repr(net).startswith("Sequential(\n  (0): Residual(\n    (0): Linear(in_features=4")
    lines = net.summary((4,)).splitlines()
    assert lines[2].split()[:2] == ["0", "Residual"] and "(N, 4)" in lines[2] and lines[2].endswith(f"{4 * 3 + 3 + 3 * 4 + 4}")
    text = block.summary((4,))
    assert text.splitlines()[0] == "Residual: y = x + f(x), f ="
    assert "(N, 3)" in text and text.splitlines()[-1] == "Total parameters: 31"
    assert block.output_shape((7, 4)) == (7, 4)


def test_save_load_round_trip(tmp_path):
    block = mlp_block(dtype=np.float32)
    net = nn.Sequential(nn.Linear(4, 4, rng=0), block, nn.Residual(nn.ReLU(), block.layers[0], nn.GELU(),
                                                                    nn.Linear(3, 4, rng=5)), nn.Linear(4, 2, rng=6))
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    assert repr(loaded) == repr(net) and isinstance(loaded[1], nn.Residual) and isinstance(loaded[2], nn.Residual)
    x = np.random.default_rng(9).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_load_refuses_an_empty_residual(tmp_path):
    path = nn.save(nn.Sequential(nn.Residual(nn.ReLU())), tmp_path / "net.npz")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(str(arrays["header"]))
    header["architecture"]["layers"][0]["layers"] = []
    arrays["header"] = np.array(json.dumps(header))
    with open(tmp_path / "bad.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match=r"bad.npz.*Residual: expected at least one layer"):
        nn.load(tmp_path / "bad.npz")


@pytest.mark.torch
def test_matches_pytorch_resnet_style_block():
    torch = pytest.importorskip("torch")
    conv1, conv2 = nn.Conv2D(3, 3, 3, padding=1, dtype=np.float64, rng=0), nn.Conv2D(3, 3, 3, padding=1, dtype=np.float64, rng=1)
    block = nn.Residual(conv1, nn.ReLU(), conv2)
    rng = np.random.default_rng(10)
    x, delta = rng.normal(size=(2, 3, 5, 5)), rng.normal(size=(2, 3, 5, 5))
    y, dx = block.forward(x), block.backward(delta)

    tx = torch.tensor(x, requires_grad=True)
    weights = [torch.tensor(p, requires_grad=True) for p in block.parameters]
    w1, b1, w2, b2 = weights
    F = torch.nn.functional
    ty = tx + F.conv2d(F.relu(F.conv2d(tx, w1, b1, padding=1)), w2, b2, padding=1)
    ty.backward(torch.tensor(delta))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    for got, tensor in zip(block.parameters_deltas, weights):
        np.testing.assert_allclose(got, tensor.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_inside_a_block_switches_mode_and_its_buffers_round_trip(tmp_path):
    block = nn.Residual(nn.Conv2D(2, 2, 3, padding=1, bias=False, rng=0), nn.BatchNorm2D(2), nn.ReLU())
    net = nn.Sequential(block, nn.GlobalAvgPool2D())
    x = np.random.default_rng(11).normal(size=(4, 2, 5, 5)).astype(np.float32)
    net.forward(x)  # train mode: updates the running statistics
    bn = block[1]
    assert len(block.buffers) == 2 and block.buffers[0] is bn.buffers[0] and net.buffers[1] is bn.buffers[1]
    assert not np.array_equal(bn.buffers[0], 0)
    net.eval()
    assert bn.training is False
    running = [b.copy() for b in block.buffers]
    y = net.forward(x)
    np.testing.assert_array_equal(block.buffers[0], running[0])  # eval mode leaves them alone
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    for a, b in zip(loaded.buffers, net.buffers):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.eval().forward(x), y)


def test_release_memory_reaches_the_layers_inside():
    block = mlp_block()
    block.forward(np.ones((2, 4)))
    assert block[1]._y is not None
    block.release_memory()
    assert block[1]._y is None and block[0]._x is None
