"""save / load (nnscratch/io/checkpoint.py): exact round trips, optimizer state, atomic writes, and
a file written only once it loads back."""

import os
import stat

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.io import Checkpoint, load, load_checkpoint, save

from helpers.checkpoint_files import small_net, perturb, train_steps


def every_layer_net():
    """A network using every built-in layer, a float64 part and a nested Sequential."""
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2D(2, 3, (3, 2), stride=(1, 2), padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2D(2, stride=1),
        nn.Flatten(),
        nn.Sequential(nn.Linear(3 * 5 * 2, 6, rng=rng), nn.Tanh(), nn.Linear(6, 5, bias=False, dtype=np.float64, rng=rng)),
        nn.Sigmoid(),
        nn.Linear(5, 4, rng=rng),
        nn.Softmax(),
    )


def test_the_package_and_nnscratch_give_the_same_functions():
    assert (nn.save, nn.load, nn.load_checkpoint) == (save, load, load_checkpoint)
    import nnscratch.io as io

    assert io.__all__ == ["save", "load", "load_checkpoint", "Checkpoint"] and io.Checkpoint is Checkpoint


def test_round_trip_gives_identical_outputs_and_structure(tmp_path):
    net = every_layer_net()
    perturb(net)
    path = save(net, tmp_path / "net.ckpt")
    assert path == tmp_path / "net.ckpt" and path.exists()  # no ".npz" appended
    loaded = load(path)
    assert repr(loaded) == repr(net)
    assert isinstance(loaded[4], nn.Sequential)
    for a, b in zip(net.parameters, loaded.parameters):
        assert a.dtype == b.dtype and a is not b
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(2).normal(size=(3, 2, 6, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    assert loaded[0].weight is loaded[0].parameters[0]  # weights copied in place


@pytest.mark.parametrize("make", [lambda net: nn.Adam(net, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1),
                                  lambda net: nn.SGD(net, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                                  lambda net: nn.AdamW(net, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1),
                                  lambda net: nn.RMSprop(net, lr=0.01, alpha=0.9, momentum=0.5, centered=True),
                                  lambda net: nn.RMSprop(net, lr=0.01, weight_decay=0.01),
                                  lambda net: nn.Adagrad(net, lr=0.1, eps=1e-6, weight_decay=0.01)],
                         ids=["Adam", "SGD", "AdamW", "RMSprop-centered-momentum", "RMSprop", "Adagrad"])
def test_optimizer_state_round_trip_continues_identically(tmp_path, make):
    net = small_net()
    optimizer = make(net)
    train_steps(net, optimizer, 3)
    save(net, tmp_path / "c.npz", optimizer=optimizer, epoch=7, metadata={"note": "hi", "big": 2**100})
    checkpoint = load_checkpoint(tmp_path / "c.npz")
    assert checkpoint.epoch == 7
    assert checkpoint.metadata == {"note": "hi", "big": 2**100}
    loaded = checkpoint.optimizer
    assert type(loaded) is type(optimizer) and loaded.steps == optimizer.steps == 3
    for name in ("lr", "weight_decay", "betas", "eps", "momentum", "nesterov", "alpha", "centered"):
        assert getattr(loaded, name, None) == getattr(optimizer, name, None)
    train_steps(net, optimizer, 2, seed=9)
    train_steps(checkpoint.model, loaded, 2, seed=9)
    for a, b in zip(net.parameters, checkpoint.model.parameters):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_without_optimizer_or_epoch(tmp_path):
    save(small_net(), tmp_path / "m.npz")
    checkpoint = load_checkpoint(tmp_path / "m.npz")
    assert checkpoint.optimizer is None and checkpoint.epoch is None and checkpoint.metadata == {}


def test_an_integer_epoch_of_numpy_is_saved_as_an_int(tmp_path):
    save(small_net(), tmp_path / "m.npz", epoch=np.int64(4))
    epoch = load_checkpoint(tmp_path / "m.npz").epoch
    assert epoch == 4 and type(epoch) is int


def test_save_replaces_atomically_and_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(small_net(), path)
    original = path.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save(small_net(), path)
    assert path.read_bytes() == original  # the old checkpoint survives a failed write
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # and no temporary file is left


def test_save_gives_the_permissions_the_umask_gives_a_new_file(tmp_path, umask):
    umask(0o027)
    assert stat.S_IMODE(save(small_net(), tmp_path / "m.npz").stat().st_mode) == 0o640


def test_loading_does_not_consume_the_global_seed(tmp_path):
    save(small_net(), tmp_path / "m.npz")
    nn.seed(3)
    expected = nn.Linear(4, 4).weight
    nn.seed(3)
    load(tmp_path / "m.npz")
    np.testing.assert_array_equal(nn.Linear(4, 4).weight, expected)


def test_save_loads_the_file_back_before_replacing(tmp_path, checkpoint_path, monkeypatch):
    good = checkpoint_path.read_bytes()
    real_savez = np.savez
    monkeypatch.setattr(np, "savez", lambda f, **arrays: real_savez(f, **{**arrays, "extra": np.zeros(1)}))
    with pytest.raises(RuntimeError, match="save: the file written does not load back .*unexpected arrays"):
        save(small_net(), checkpoint_path)
    assert checkpoint_path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]


def test_metadata_must_be_a_dict(tmp_path):
    with pytest.raises(TypeError, match="metadata must be a dict, got list"):
        save(small_net(), tmp_path / "m.npz", metadata=[1])
    assert not os.listdir(tmp_path)
