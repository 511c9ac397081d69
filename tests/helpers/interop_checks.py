"""How the converters' tests compare a model with its hand-off: ONNX Runtime's outputs against
nnscratch's to float32 rounding, and a PyTorch twin's outputs, input gradients, parameter gradients
and running statistics against nnscratch's.
"""

from __future__ import annotations

import numpy as np

import nnscratch as nn

from .interop_cases import sample_input

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5)}


# -- ONNX Runtime ------------------------------------------------------------------------------------
def run_exported(ort, path, x: np.ndarray) -> np.ndarray:
    """The output of the ONNX file at ``path`` for ``x``, run by ONNX Runtime on the CPU."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": x})
    return output


def assert_float32_close(actual, expected):
    """Equal to float32 rounding: a few units in the last place of the largest value."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6 * scale)


# -- PyTorch -----------------------------------------------------------------------------------------
def leaves(model) -> list:
    """The layers of ``model`` in order, nested Sequentials and Residuals opened."""
    containers = (nn.Sequential, nn.Residual)
    found = []
    for layer in model.layers if isinstance(model, containers) else [model]:
        found += leaves(layer) if isinstance(layer, containers) else [layer]
    return found


def in_torch_layout(model, arrays) -> list:
    """nnscratch parameters (or their deltas) laid out as PyTorch's ``module.parameters()`` are."""
    arrays, result = list(arrays), []
    for layer in leaves(model):
        own, arrays = arrays[: len(layer.parameters)], arrays[len(layer.parameters) :]
        if isinstance(layer, nn.Linear):  # W is (in, out) here, (out, in) in PyTorch
            own = [own[0].T, *own[1:]]
        result += own
    assert not arrays
    return result


def nnscratch_pass(model, x, delta):
    """(y, dL/dx, parameter deltas) of one forward and backward with upstream gradient ``delta``."""
    y = model.forward(x)
    dx = model.backward(delta)
    return y, dx, [d.copy() for d in model.parameters_deltas]


def torch_pass(torch, module, x, delta):
    """The same from PyTorch's autograd."""
    tx = torch.from_numpy(x.copy())
    if tx.is_floating_point():  # integer ids (an Embedding's) have no gradient
        tx.requires_grad_(True)
    module.zero_grad()
    ty = module(tx)
    ty.backward(torch.from_numpy(delta))
    dx = None if tx.grad is None else tx.grad.numpy()
    return ty.detach().numpy(), dx, [p.grad.numpy() for p in module.parameters()]


def assert_same_function(torch, model, module, input_shape, dtype, batch=4):
    """Outputs, input gradients and parameter gradients equal, for a random upstream gradient."""
    x = sample_input(input_shape, batch, dtype)
    delta = np.random.default_rng(7).normal(size=model.output_shape((batch, *input_shape))).astype(dtype)
    y, dx, deltas = nnscratch_pass(model, x, delta)
    ty, tdx, tdeltas = torch_pass(torch, module, x, delta)
    tolerance = TOLERANCE[dtype]
    assert ty.dtype == y.dtype == dtype
    np.testing.assert_allclose(ty, y, **tolerance)
    if dx is None:  # a model starting with Embedding: no gradient for the ids, on either side
        assert tdx is None and x.dtype.kind == "i"
    else:
        np.testing.assert_allclose(tdx, dx, **tolerance)
    expected = in_torch_layout(model, deltas)
    assert len(tdeltas) == len(expected)
    for got, want in zip(tdeltas, expected):
        np.testing.assert_allclose(got, want, **tolerance)
    # BatchNorm's running statistics, moved the same way in training mode (and not at all in eval)
    buffers = [b.numpy() for b in module.buffers() if b.is_floating_point()]
    assert len(buffers) == len(model.buffers)
    for got, want in zip(buffers, model.buffers):
        np.testing.assert_allclose(got, want, **tolerance)
