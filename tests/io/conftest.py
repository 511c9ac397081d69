"""Fixtures of the checkpoint tests (their helpers are in checkpoint_files.py)."""

import pytest

import nnscratch as nn

from helpers.checkpoint_files import Tally, built_in, small_net, train_steps


@pytest.fixture
def checkpoint_path(tmp_path):
    """A good checkpoint, ``good.npz``: ``small_net`` after one Adam step, with the Adam state, epoch 1."""
    net = small_net()
    optimizer = nn.Adam(net)
    train_steps(net, optimizer, 1)
    return nn.save(net, tmp_path / "good.npz", optimizer=optimizer, epoch=1)


@pytest.fixture
def tally_is_built_in(monkeypatch):
    """Let save/load treat Tally as a built-in layer for one test."""
    built_in(monkeypatch, Tally)
