"""decay_matrices_only: weight decay on the parameters of two or more axes only, as nanoGPT decays
its matmul and embedding weights but not its biases and LayerNorm gains (PyTorch: two param groups)."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.io import load_checkpoint, save

OPTIMIZERS = [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.05)),
    ("Adam", dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05)),
    ("AdamW", dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)),
    ("RMSprop", dict(lr=1e-2, weight_decay=0.05)),
    ("Adagrad", dict(lr=1e-2, weight_decay=0.05)),
]


def _net(dtype=np.float64):
    return nn.Sequential(nn.Linear(4, 3, dtype=dtype, rng=0), nn.LayerNorm(3, dtype=dtype), nn.Linear(3, 2, dtype=dtype, rng=1))


def _steps(net, optimizer, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for d in net.parameters_deltas:
            d[...] = rng.standard_normal(d.shape)
        optimizer.step()


@pytest.mark.parametrize("name, settings", OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
def test_vectors_are_not_decayed_and_matrices_are(name, settings):
    # Zero gradients leave only the decay: a matrix shrinks, a vector (bias, LayerNorm gain) does not.
    net = _net()
    before = [p.copy() for p in net.parameters]
    optimizer = getattr(nn, name)(net, **settings, decay_matrices_only=True)
    for d in net.parameters_deltas:
        d[...] = 0
    optimizer.step()
    for p, old in zip(net.parameters, before):
        if p.ndim >= 2:
            assert np.abs(p).sum() < np.abs(old).sum()
        else:
            np.testing.assert_array_equal(p, old)


@pytest.mark.parametrize("name, settings", OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
def test_it_equals_two_optimizers_one_with_decay_on_the_matrices_one_without_on_the_rest(name, settings):
    net, split_net = _net(), _net()
    _steps(net, getattr(nn, name)(net, **settings, decay_matrices_only=True), 7)
    with_decay = getattr(nn, name)(_Only(split_net, lambda p: p.ndim >= 2), **settings)
    without = getattr(nn, name)(_Only(split_net, lambda p: p.ndim < 2), **{**settings, "weight_decay": 0.0})
    rng = np.random.default_rng(0)  # the same gradients as _steps draws
    for _ in range(7):
        for d in split_net.parameters_deltas:
            d[...] = rng.standard_normal(d.shape)
        with_decay.step()
        without.step()
    for ours, theirs in zip(net.parameters, split_net.parameters):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


class _Only:
    """The parameters of ``net`` that ``keep`` accepts, as a layer an optimizer can take."""

    def __init__(self, net, keep):
        self.net, self.keep = net, keep

    @property
    def parameters(self):
        return [p for p in self.net.parameters if self.keep(p)]

    @property
    def parameters_deltas(self):
        return [d for p, d in zip(self.net.parameters, self.net.parameters_deltas) if self.keep(p)]


@pytest.mark.torch
def test_adamw_equals_pytorch_with_two_parameter_groups():
    torch = pytest.importorskip("torch")
    net = _net()
    starts = [p.copy() for p in net.parameters]
    optimizer = nn.AdamW(net, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1, decay_matrices_only=True)
    tensors = [torch.tensor(s.copy(), requires_grad=True) for s in starts]
    groups = [{"params": [t for t in tensors if t.ndim >= 2], "weight_decay": 0.1},
              {"params": [t for t in tensors if t.ndim < 2], "weight_decay": 0.0}]
    theirs = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.99))
    rng = np.random.default_rng(3)
    for _ in range(10):
        deltas = [rng.standard_normal(p.shape) for p in net.parameters]
        for d, new in zip(net.parameters_deltas, deltas):
            d[...] = new
        optimizer.step()
        for t, new in zip(tensors, deltas):
            t.grad = torch.tensor(new)
        theirs.step()
    for ours, t in zip(net.parameters, tensors):
        np.testing.assert_allclose(ours, t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_a_non_bool_is_refused():
    with pytest.raises(TypeError, match=r"AdamW: decay_matrices_only must be True or False, got str 'yes'"):
        nn.AdamW(_net(), decay_matrices_only="yes")


def test_checkpoints_keep_it_and_older_files_without_it_load(tmp_path):
    net = _net(np.float32)
    optimizer = nn.AdamW(net, weight_decay=0.1, decay_matrices_only=True)
    _steps(net, optimizer, 2)
    loaded = load_checkpoint(save(net, tmp_path / "a.npz", optimizer=optimizer)).optimizer
    assert loaded.decay_matrices_only is True and loaded.steps == 2
    # written only when set: a default optimizer's header is what it was before the setting existed
    plain = nn.AdamW(net)
    save(net, tmp_path / "b.npz", optimizer=plain)
    with np.load(tmp_path / "b.npz", allow_pickle=False) as archive:
        assert "decay_matrices_only" not in str(archive["header"])
    assert load_checkpoint(tmp_path / "b.npz").optimizer.decay_matrices_only is False
