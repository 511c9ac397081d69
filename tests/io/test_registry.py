"""The registry of savable classes (nnscratch/io/registry.py): which classes a checkpoint may name,
each saved under its own name and rebuilt as exactly itself, layers that are containers saved by
their config, and the arithmetic that sizes every layer's arrays before it is built."""

import os

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.commands.sanity_check_cases import builtin_cases
from nnscratch.io import load, save
from nnscratch.io import registry

from helpers.checkpoint_files import Tally, built_in, header_of, perturb, small_net, tally_net


def test_the_table_holds_the_built_in_layers_and_the_twins_under_names_of_their_own():
    classes = registry.layer_classes()
    assert {name: classes[name] for name in nn.layers.__all__} == {name: getattr(nn, name) for name in nn.layers.__all__}
    twins = {name: classes[f"reference.{name}"] for name in nn.reference.__all__}
    assert twins == {name: getattr(nn.reference, name) for name in nn.reference.__all__}
    assert len(classes) == len(nn.layers.__all__) + len(nn.reference.__all__)
    assert not {nn.Layer, nn.Sequential, nn.Residual} & set(classes.values())
    assert set(registry.CONTAINERS) == {"Sequential", "Residual"}


def test_parameter_specs_match_what_every_builtin_layer_builds():
    """The arithmetic the loader checks sizes with agrees with the constructors, for every case of
    nnscratch sanity-check (every built-in layer) and every Linear/Conv2D option; a layer class
    without parameter_specs or buffer_specs has none."""
    layers = [case.build()[0] for case in builtin_cases()]
    layers += [nn.Linear(3, 5, bias=False, dtype=np.float64), nn.Conv2D(2, 3, (3, 1), stride=2, padding=(1, 0), bias=False),
               nn.BatchNorm2D(3, affine=False), nn.reference.BatchNorm1D(4)]
    seen = set()
    for layer in layers:
        if not isinstance(layer, nn.Layer):
            continue
        seen.add(type(layer).__name__)
        parameters, buffers = registry.specs(type(layer), layer.config())
        assert [(tuple(s), np.dtype(d)) for s, d in parameters] == [(p.shape, p.dtype) for p in layer.parameters], layer
        assert [(tuple(s), np.dtype(d)) for s, d in buffers] == [(b.shape, b.dtype) for b in layer.buffers], layer
    assert {"Linear", "Conv2D", "BatchNorm2D", "ReLU", "Flatten"} <= seen
    assert not hasattr(nn.ReLU, "parameter_specs") and registry.specs(nn.ReLU, {}) == ([], [])


class Scale:
    """A user's layer written as a plain class: y = w * x, elementwise."""

    def __init__(self):
        self.parameters, self.parameters_deltas = [np.ones(2, np.float32)], [np.zeros(2, np.float32)]

    def forward(self, x, *args):
        self.x = x
        return self.parameters[0] * x

    def backward(self, delta):
        self.parameters_deltas[0][...] = (delta * self.x).sum(axis=0)
        return delta * self.parameters[0]


class MyLinear(nn.Linear):
    pass


@pytest.mark.parametrize("layer, name", [(Scale(), "Scale"), (MyLinear(2, 2), "MyLinear")])
def test_save_refuses_layers_it_cannot_describe(tmp_path, layer, name):
    with pytest.raises(TypeError, match=rf"model\[1\] is a {name}, which save cannot describe"):
        save(nn.Sequential(nn.ReLU(), layer), tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_a_subclass_of_a_reference_layer_is_refused_too(tmp_path):
    class MyConv(nn.reference.Conv2D):
        pass

    with pytest.raises(TypeError, match=r"model\[0\] is a MyConv, which save cannot describe; .*reference\.Conv2D"):
        save(nn.Sequential(MyConv(1, 1, 1)), tmp_path / "m.npz")


def test_reference_layers_round_trip_under_names_of_their_own(tmp_path):
    # A twin and its fast layer share a base: each must come back as exactly what was saved.
    net = nn.Sequential(nn.reference.Conv2D(2, 3, (3, 2), stride=(1, 2), padding=1, rng=0), nn.ReLU(),
                        nn.reference.MaxPool2D(2, stride=1), nn.Conv2D(3, 2, 1, bias=False, rng=1),
                        nn.MaxPool2D(1), nn.Flatten(), nn.Linear(2 * 5 * 3, 4, rng=2))
    perturb(net)
    x = np.random.default_rng(2).normal(size=(3, 2, 6, 6)).astype(np.float32)
    classes = [layer["class"] for layer in header_of(save(net, tmp_path / "m.npz"))["architecture"]["layers"]]
    assert classes[:5] == ["reference.Conv2D", "ReLU", "reference.MaxPool2D", "Conv2D", "MaxPool2D"]
    loaded = load(tmp_path / "m.npz")
    assert [type(layer) for layer in loaded] == [type(layer) for layer in net]
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_reference_batch_norms_round_trip_with_their_buffers(tmp_path):
    # reference.BatchNorm1D/2D beside the fast ones: each comes back as itself, with its
    # parameters, its running statistics and its configuration.
    net = nn.Sequential(nn.Conv2D(2, 3, 3, padding=1, rng=0), nn.reference.BatchNorm2D(3, eps=1e-3, momentum=0.2),
                        nn.BatchNorm2D(3, affine=False), nn.Flatten(), nn.Linear(3 * 4 * 4, 5, rng=1),
                        nn.reference.BatchNorm1D(5, affine=False), nn.BatchNorm1D(5))
    perturb(net)
    x = np.random.default_rng(3).normal(size=(4, 2, 4, 4)).astype(np.float32)
    net.forward(x)  # a training step moves the running statistics off the values perturb gave them
    header = header_of(save(net.eval(), tmp_path / "m.npz"))
    classes = [layer["class"] for layer in header["architecture"]["layers"]]
    assert classes == ["Conv2D", "reference.BatchNorm2D", "BatchNorm2D", "Flatten", "Linear",
                       "reference.BatchNorm1D", "BatchNorm1D"]
    assert len(header["buffers"]) == 8
    loaded = load(tmp_path / "m.npz")
    assert [type(layer) for layer in loaded] == [type(layer) for layer in net]
    assert [layer.config() for layer in loaded] == [layer.config() for layer in net]
    for ours, theirs in zip(loaded.parameters + loaded.buffers, net.parameters + net.buffers, strict=True):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(loaded.eval().forward(x), net.forward(x))


def test_buffers_round_trip_exactly(tmp_path, tally_is_built_in):
    net = tally_net()
    rng = np.random.default_rng(0)
    for _ in range(3):
        net.forward(rng.normal(size=(4, 2)).astype(np.float32))
    path = save(net, tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(k for k in archive.files if k.startswith("buffer.")) == [f"buffer.{i}" for i in range(4)]
    assert header_of(path)["buffers"] == [{"shape": [], "dtype": "int64"}, {"shape": [3], "dtype": "float32"}] * 2
    loaded = load(path)
    assert len(loaded.buffers) == 4
    for original, restored in zip(net.buffers, loaded.buffers):
        assert restored.dtype == original.dtype and restored.shape == original.shape
        np.testing.assert_array_equal(restored, original)
    assert int(loaded[1].count) == 3 and loaded[1].buffers[0] is loaded[1].count  # copied in place


# -- layers that are containers (the coming TransformerBlock): saved by name and config -------
class Block(nn.Sequential):
    """x -> Linear(width, hidden) -> Tanh -> Tally -> Linear(hidden, width): a layer class that is
    a Sequential, with hyperparameters of its own, as a Transformer block is."""

    def __init__(self, width, hidden=4, rng=None):
        super().__init__(nn.Linear(width, hidden, rng=rng), nn.Tanh(), Tally(hidden), nn.Linear(hidden, width, rng=rng))
        self.width, self.hidden = width, hidden

    @property
    def name(self):
        return "Block"

    def config(self):
        return {"width": self.width, "hidden": self.hidden}

    @classmethod
    def parameter_specs(cls, width, hidden=4):
        return [*nn.Linear.parameter_specs(width, hidden), *nn.Linear.parameter_specs(hidden, width)]

    @classmethod
    def buffer_specs(cls, width, hidden=4):
        return Tally.buffer_specs(hidden)


def test_a_layer_that_is_a_container_is_saved_by_its_config_and_rebuilt_as_itself(tmp_path, monkeypatch):
    built_in(monkeypatch, Block, Tally)
    net = nn.Sequential(Block(3, rng=0), nn.ReLU(), nn.Residual(Block(3, hidden=5, rng=1)), nn.Linear(3, 2, rng=2))
    perturb(net)
    x = np.random.default_rng(4).normal(size=(6, 3)).astype(np.float32)
    expected = net.forward(x)  # moves the Tally buffers too
    header = header_of(save(net, tmp_path / "m.npz"))
    block, _, residual, _ = header["architecture"]["layers"]
    assert block == {"class": "Block", "config": {"width": 3, "hidden": 4}}  # no "layers": never its children
    assert residual == {"class": "Residual", "layers": [{"class": "Block", "config": {"width": 3, "hidden": 5}}]}
    assert len(header["parameters"]) == 4 + 4 + 2 and len(header["buffers"]) == 2 + 2
    loaded = load(tmp_path / "m.npz")
    assert type(loaded[0]) is Block and type(loaded[2][0]) is Block and loaded[2][0].config() == {"width": 3, "hidden": 5}
    for ours, theirs in zip(loaded.parameters + loaded.buffers, net.parameters + net.buffers, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert loaded[0].parameters[0] is loaded[0][0].weight  # read into the rebuilt block's own layers
    np.testing.assert_array_equal(loaded.forward(x), expected)


class Bare(nn.Sequential):
    """A layer class that is a container and has a config, but no parameter_specs."""

    def __init__(self, width):
        super().__init__(nn.Linear(width, width, rng=0))
        self.width = width

    def config(self):
        return {"width": self.width}


def test_a_container_class_not_registered_or_without_parameter_specs_is_refused(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match=r"model\[0\] is a Block, which save cannot describe"):
        save(nn.Sequential(Block(3)), tmp_path / "m.npz")
    built_in(monkeypatch, Bare)
    with pytest.raises(ValueError, match=r"save: model\[1\] \(Bare\): cannot rebuild it from config \{'width': 3\}: "
                                         r"Bare is a container saved by its config, so it needs a parameter_specs"):
        save(nn.Sequential(nn.ReLU(), Bare(3)), tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


# -- optimizers --------------------------------------------------------------------------------
def test_save_refuses_a_foreign_or_unknown_optimizer(tmp_path):
    net = small_net()
    with pytest.raises(ValueError, match="does not update this model's parameters"):
        save(net, tmp_path / "m.npz", optimizer=nn.Adam(small_net()))
    with pytest.raises(TypeError, match="SGD, Adam, AdamW, RMSprop, Adagrad optimizers only, got object"):
        save(net, tmp_path / "m.npz", optimizer=object())

    class MyAdam(nn.Adam):
        pass

    with pytest.raises(TypeError, match="optimizers only, got MyAdam"):
        save(net, tmp_path / "m.npz", optimizer=MyAdam(net))
    assert not os.listdir(tmp_path)
