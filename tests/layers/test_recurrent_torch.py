"""RNN, LSTM and GRU against PyTorch's nn.RNN, nn.LSTM and nn.GRU (batch_first=True) with the same
weights, copied one to one: outputs, final states and every gradient, dL/dh0 and dL/dc0 included,
over random shapes in float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from helpers.recurrent_cases import CELLS, EACH_CELL, make, normal, parts, random_state

pytestmark = pytest.mark.torch  # each test takes the torch fixture (tests/layers/conftest.py): skips without it


def torch_twin(torch, layer):
    """PyTorch's module for ``layer``, its parameters copied in the same order and layout."""
    config = layer.config()
    extra = {"nonlinearity": config["nonlinearity"]} if "nonlinearity" in config else {}
    module = getattr(torch.nn, type(layer).__name__)(
        config["input_size"], config["hidden_size"], bias=config["bias"], batch_first=True,
        dtype=getattr(torch, layer.weight_ih.dtype.name), **extra)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"][: len(layer.parameters)]
    assert [name for name, _ in module.named_parameters()] == names  # the same parameters, in the same order
    with torch.no_grad():
        for (_, param), value in zip(module.named_parameters(), layer.parameters, strict=True):
            assert tuple(param.shape) == value.shape
            param.copy_(torch.from_numpy(value))
    return module


def close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    scale = max(1.0, float(np.abs(want).max()))
    if dtype == np.float32:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * scale)


def against_torch(torch, layer, x, state, delta):
    dtype = layer.weight_ih.dtype
    module = torch_twin(torch, layer)
    tx = torch.from_numpy(x.astype(dtype)).requires_grad_(True)
    tstate = [torch.from_numpy(part.astype(dtype)[None]).requires_grad_(True) for part in parts(state)]
    ty, tfinal = module(tx, tuple(tstate) if len(tstate) == 2 else tstate[0])
    ty.backward(torch.from_numpy(delta.astype(dtype)))

    y = layer.forward(x, initial_state=state)
    close(y, ty.detach().numpy(), dtype)
    for mine, theirs in zip(parts(layer.final_state), parts(tfinal), strict=True):
        close(mine, theirs.detach().numpy()[0], dtype)
    close(layer.backward(delta), tx.grad.numpy(), dtype)
    for mine, theirs in zip(parts(layer.initial_state_delta), tstate, strict=True):
        close(mine, theirs.grad.numpy()[0], dtype)
    for mine, (_, theirs) in zip(layer.parameters_deltas, module.named_parameters(), strict=True):
        close(mine, theirs.grad.numpy(), dtype)


@pytest.mark.parametrize("kind", [nn, nn.reference], ids=["fast", "reference"])
@EACH_CELL
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_pytorch(torch, kind, cell, extra, dtype, bias):
    layer = make(kind, cell, extra, 5, 7, dtype=dtype, bias=bias, seed=1)
    against_torch(torch, layer, normal((3, 6, 5), 2), random_state(cell, 3, 7, 3), normal((3, 6, 7), 4))


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(range(len(CELLS))), st.integers(1, 6), st.integers(1, 12), st.integers(1, 9),
       st.integers(1, 9), st.booleans(), st.sampled_from([np.float64, np.float32]), st.integers(0, 2**16))
def test_random_shapes_match_pytorch(torch, which, n, steps, d, h, bias, dtype, seed):
    cell, extra = CELLS[which]
    layer = make(nn, cell, extra, d, h, dtype=dtype, bias=bias, seed=seed)
    against_torch(torch, layer, normal((n, steps, d), seed + 1), random_state(cell, n, h, seed + 2),
                  normal((n, steps, h), seed + 3))


@EACH_CELL
def test_pytorch_s_default_initialisation_copies_over_and_runs_the_same(torch, cell, extra):
    # A PyTorch module's own weights (its init, float32) into an nnscratch layer: same outputs.
    module = getattr(torch.nn, cell)(4, 6, batch_first=True, **extra)
    layer = getattr(nn, cell)(4, 6, **extra)
    for mine, (_, theirs) in zip(layer.parameters, module.named_parameters(), strict=True):
        mine[...] = theirs.detach().numpy()
    x = normal((2, 30, 4), 5, dtype=np.float32)
    close(layer.forward(x), module(torch.from_numpy(x))[0].detach().numpy(), np.float32)
