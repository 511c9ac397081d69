"""The Layer base class and the protocol helpers: train/eval mode, buffers, walking containers."""

import contextlib
import re

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.containers import Container
from nnscratch.protocol import Layer, children, in_mode, modes, restore_modes, walk
from nnscratch.validation import check_mode


class Plain:
    """A protocol layer with no mode and no buffers: containers must leave it alone."""

    def __init__(self):
        self.parameters, self.parameters_deltas = [], []

    def forward(self, x, *args):
        return x

    def backward(self, delta):
        return delta


class NoInit(Layer):
    """A subclass whose __init__ never calls Layer's: training still comes from the class."""

    def __init__(self):
        self.parameters, self.parameters_deltas = [], []


def test_every_layer_starts_in_training_mode_and_switches():
    for layer in (nn.Linear(2, 3), nn.ReLU(), nn.Conv2D(1, 1, 3), NoInit(), Layer()):
        assert layer.training is True
        assert layer.eval() is layer and layer.training is False
        assert layer.train() is layer and layer.training is True
        assert layer.train(False) is layer and layer.training is False
        assert layer.train(np.bool_(True)).training is True and type(layer.training) is bool
    # an instance's mode is its own
    a, b = nn.ReLU(), nn.ReLU()
    a.eval()
    assert b.training is True and nn.ReLU.training is True


@pytest.mark.parametrize("mode", ["False", 0, 1, None, 1.0])
def test_mode_must_be_a_real_bool(mode):
    with pytest.raises(TypeError, match=r"Linear.train: mode must be True or False, got"):
        nn.Linear(2, 3).train(mode)
    with pytest.raises(TypeError, match=r"Sequential.train: mode must be True or False, got"):
        nn.Sequential(nn.ReLU()).train(mode)
    with pytest.raises(TypeError, match="check.train: mode must be True or False"):
        check_mode("check", mode)


def test_layer_buffers_default_to_an_empty_list():
    assert nn.Linear(2, 3).buffers == [] and nn.ReLU().buffers == []


def test_walk_visits_containers_depth_first():
    inner = nn.Sequential(nn.Tanh(), Plain())
    net = nn.Sequential(nn.Linear(2, 2), inner, nn.ReLU())
    assert [type(layer).__name__ for layer in walk(net)] == ["Sequential", "Linear", "Sequential", "Tanh", "Plain", "ReLU"]
    assert children(net) == net.layers and children(nn.ReLU()) == [] and children(Plain()) == []


def test_a_container_of_its_own_uses_the_mixin():
    class Pair(Container):
        def __init__(self, *layers):
            self.layers = list(layers)

    relu, plain, with_buffers = nn.ReLU(), Plain(), Layer()
    with_buffers.buffers = [np.zeros(2), np.ones(3)]
    pair = Pair(relu, nn.Sequential(plain, with_buffers))
    assert pair.eval() is pair and pair.training is False and relu.training is False
    assert with_buffers.training is False and not hasattr(plain, "training")
    assert [b.shape for b in pair.buffers] == [(2,), (3,)]
    assert pair.buffers[0] is with_buffers.buffers[0]


def test_modes_restore_each_layer_as_it_was():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), Plain()), nn.Tanh())
    net[1][0].eval()  # a mix: one layer deep inside in eval mode
    saved = modes(net)
    net.train()
    assert net[1][0].training is True
    net.eval()
    restore_modes(saved)
    assert [layer.training for layer in (net, net[0], net[1], net[1][0], net[2])] == [True, True, True, False, True]


@pytest.mark.parametrize("raises", [False, True])
def test_in_mode_sets_the_mode_for_the_block_and_puts_every_layer_back(raises):
    net = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Tanh(), Plain()))
    loss = nn.Sequential(nn.Mean()).eval()
    net[1][0].eval()
    seen = []
    with pytest.raises(RuntimeError, match="inside") if raises else contextlib.nullcontext():
        with in_mode(True, net, loss, Plain()):
            seen = [layer.training for layer in (net, net[0], net[1], net[1][0], loss, loss[0])]
            if raises:
                raise RuntimeError("inside")
    assert seen == [True] * 6
    assert [layer.training for layer in (net, net[0], net[1], net[1][0], loss, loss[0])] == [True, True, True, False, False, False]


# -- non-real input is refused by every layer -------------------------------------------------------
def _every_builtin_case():
    from nnscratch.commands.sanity_check_cases import builtin_cases

    cases = {}
    for case in builtin_cases():
        cases.setdefault(case.layer, case)  # one configuration per layer class
    return sorted(cases.items())


NON_REAL = {
    "complex": lambda x: x.astype(np.complex128) + 1j,
    "string": lambda x: x.astype(str),
    "datetime": lambda x: np.zeros(x.shape, "datetime64[D]"),
    "timedelta": lambda x: np.zeros(x.shape, "timedelta64[s]"),
    "object": lambda x: x.astype(object),
}


@pytest.mark.parametrize("kind", sorted(NON_REAL))
@pytest.mark.parametrize("name, case", _every_builtin_case(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_builtin_layer_refuses_non_real_input(name, case, kind):
    layer, x, args = case.build()
    bad = NON_REAL[kind](np.asarray(x))
    # a container names the layer inside it that refused, after its own position
    who = layer.layers[0].name if isinstance(layer, nn.Sequential) else getattr(layer, "name", type(layer).__name__)
    with pytest.raises(TypeError, match=rf"{who}: (the input|the \w+) must be real numbers \(bool, int or float\), "
                                        rf"got an array of {re.escape(str(bad.dtype))}$"):
        layer.forward(bad, *args)


@pytest.mark.parametrize("cls", [nn.SoftmaxCrossEntropy, nn.CrossEntropy])
@pytest.mark.parametrize("kind", ["complex", "string", "object"])
def test_losses_refuse_non_real_targets(cls, kind):
    x = np.full((2, 3), 1 / 3, np.float32)
    targets = NON_REAL[kind](np.eye(3, dtype=np.float32)[[0, 2]])
    with pytest.raises(TypeError, match=rf"{cls.__name__}: targets must be real numbers \(bool, int or float\)"):
        cls().forward(x, targets)
