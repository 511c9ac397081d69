"""save / load: exact round trips, optimizer state, atomic writes, and clear errors for bad files."""

import json
import os
import stat

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.io import load, load_checkpoint, save


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


def perturb(net):
    """Give every parameter (biases too) values no fresh layer would have."""
    rng = np.random.default_rng(1)
    for p in net.parameters:
        p[...] = rng.normal(size=p.shape)


def small_net():
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1), nn.SoftmaxCrossEntropy(), nn.Mean())


def train_steps(net, optimizer, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.normal(size=(5, 3)).astype(np.float32)
        net.forward(x, rng.integers(0, 2, 5))
        net.backward()
        optimizer.step()


def rewrite(path, change):
    """Load an .npz's arrays and header, let ``change(arrays, header)`` edit them, write it back."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(str(arrays["header"]))
    change(arrays, header)
    arrays["header"] = np.array(json.dumps(header))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


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


class Custom:
    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        return x

    def backward(self, delta):
        return delta


class MyLinear(nn.Linear):
    pass


@pytest.mark.parametrize("layer, name", [(Custom(), "Custom"), (MyLinear(2, 2), "MyLinear")])
def test_save_refuses_layers_it_cannot_describe(tmp_path, layer, name):
    with pytest.raises(TypeError, match=rf"model\[1\] is a {name}, which save cannot describe"):
        save(nn.Sequential(nn.ReLU(), layer), tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_reference_layers_round_trip_under_names_of_their_own(tmp_path):
    # The fast layers subclass their textbook twins: each must come back as exactly what was saved.
    net = nn.Sequential(nn.reference.Conv2D(2, 3, (3, 2), stride=(1, 2), padding=1, rng=0), nn.ReLU(),
                        nn.reference.MaxPool2D(2, stride=1), nn.Conv2D(3, 2, 1, bias=False, rng=1),
                        nn.MaxPool2D(1), nn.Flatten(), nn.Linear(2 * 5 * 3, 4, rng=2))
    perturb(net)
    x = np.random.default_rng(2).normal(size=(3, 2, 6, 6)).astype(np.float32)
    save(net, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        classes = [layer["class"] for layer in json.loads(str(archive["header"]))["architecture"]["layers"]]
    assert classes[:5] == ["reference.Conv2D", "ReLU", "reference.MaxPool2D", "Conv2D", "MaxPool2D"]
    loaded = load(tmp_path / "m.npz")
    assert [type(layer) for layer in loaded] == [type(layer) for layer in net]
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_reference_batch_norms_round_trip_with_their_buffers(tmp_path):
    # reference.BatchNorm1D/2D beside the fast ones (subclasses of them): each comes back as itself,
    # with its parameters, its running statistics and its configuration.
    net = nn.Sequential(nn.Conv2D(2, 3, 3, padding=1, rng=0), nn.reference.BatchNorm2D(3, eps=1e-3, momentum=0.2),
                        nn.BatchNorm2D(3, affine=False), nn.Flatten(), nn.Linear(3 * 4 * 4, 5, rng=1),
                        nn.reference.BatchNorm1D(5, affine=False), nn.BatchNorm1D(5))
    perturb(net)
    x = np.random.default_rng(3).normal(size=(4, 2, 4, 4)).astype(np.float32)
    net.forward(x)  # a training step moves the running statistics off the values perturb gave them
    save(net.eval(), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        header = json.loads(str(archive["header"]))
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


def test_a_subclass_of_a_reference_layer_is_refused_too(tmp_path):
    class MyConv(nn.reference.Conv2D):
        pass

    with pytest.raises(TypeError, match=r"model\[0\] is a MyConv, which save cannot describe; .*reference\.Conv2D"):
        save(nn.Sequential(MyConv(1, 1, 1)), tmp_path / "m.npz")


def test_save_refuses_foreign_optimizer_and_bad_metadata(tmp_path):
    net = small_net()
    with pytest.raises(ValueError, match="does not update this model's parameters"):
        save(net, tmp_path / "m.npz", optimizer=nn.Adam(small_net()))
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save(net, tmp_path / "m.npz", metadata={"x": np.zeros(2)})
    with pytest.raises(TypeError, match="metadata must be a dict, got list"):
        save(net, tmp_path / "m.npz", metadata=[1])
    with pytest.raises(TypeError, match="SGD, Adam, AdamW, RMSprop, Adagrad optimizers only, got object"):
        save(net, tmp_path / "m.npz", optimizer=object())


# -- bad files ---------------------------------------------------------------------------------
@pytest.fixture
def checkpoint_path(tmp_path):
    net = small_net()
    optimizer = nn.Adam(net)
    train_steps(net, optimizer, 1)
    return save(net, tmp_path / "good.npz", optimizer=optimizer, epoch=1)


def test_junk_empty_and_truncated_files(tmp_path, checkpoint_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(os.urandom(500))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.npz"
    data = checkpoint_path.read_bytes()
    for path, content in ((junk, None), (empty, None), (truncated, data[: len(data) // 2])):
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{path.name}: not .*nnscratch checkpoint"):
            load(path)
    # every truncation point fails cleanly, never with another exception or a half-loaded model
    for cut in range(0, len(data), max(1, len(data) // 40)):
        truncated.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated.npz"):
            load(truncated)


def test_other_npz_and_npy_files(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"a\.npy: .*single \.npy array"):
        load(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"b\.npz: not an nnscratch checkpoint: no 'header'"):
        load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", header=np.array([{"format": "nnscratch-checkpoint"}], dtype=object))
    with pytest.raises(ValueError, match=r"c\.npz: .*pickle"):  # never unpickled
        load(tmp_path / "c.npz")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a, h: h.update(format="other"), "format is not 'nnscratch-checkpoint'"),
        (lambda a, h: h.update(version=2), "format version 2"),
        (lambda a, h: h["architecture"]["layers"][0].update({"class": "os.system"}), "unknown layer class 'os.system'"),
        (lambda a, h: h["architecture"]["layers"][0].update({"class": "Layer"}), "unknown layer class 'Layer'"),
        (lambda a, h: h["architecture"]["layers"][0]["config"].update(in_features=5),
         r"parameter 0: the architecture gives \(5, 4\) float32, the header says .* \(model\[0\], Linear\)"),
        (lambda a, h: h["architecture"]["layers"][0]["config"].update(in_features=-1), "cannot rebuild it"),
        (lambda a, h: h["architecture"]["layers"][0]["config"].update(colour="red"), "cannot rebuild it"),
        (lambda a, h: h["architecture"]["layers"].pop(0), "parameters but the file describes"),
        (lambda a, h: a.update({"param.0": a["param.0"].astype(np.float64)}), r"parameter 0: expected shape \(3, 4\) float32"),
        (lambda a, h: a.update({"param.1": a["param.1"][:2]}), r"parameter 1: expected shape \(4,\) float32, the file holds \(2,\)"),
        (lambda a, h: a.pop("param.2"), "'param.2' is missing"),
        (lambda a, h: a.update(extra=np.zeros(1)), "unexpected arrays in the checkpoint: extra"),
        (lambda a, h: a.update({"optimizer.m.0": a["optimizer.m.0"][:1]}), "optimizer state m.0"),
        (lambda a, h: h["optimizer"].update({"class": "Lion"}), "unknown optimizer 'Lion'"),
        (lambda a, h: h["optimizer"]["config"].update(lr=-1), "cannot rebuild the Adam optimizer"),
        (lambda a, h: h["optimizer"].update(steps="many"), "steps must be a non-negative int"),
        (lambda a, h: h.update(epoch=-3), "epoch must be a non-negative int"),
        (lambda a, h: h.update(architecture={"class": "Sequential", "layers": "no"}), "needs a 'layers' list"),
    ],
)
def test_mismatched_or_tampered_files(checkpoint_path, change, match):
    rewrite(checkpoint_path, change)
    with pytest.raises(ValueError, match=rf"good\.npz: .*{match}"):
        load_checkpoint(checkpoint_path)


@pytest.mark.parametrize(
    "make, option, value",
    [(lambda net: nn.SGD(net, lr=0.1, momentum=0.9), "nesterov", "false"),
     (lambda net: nn.RMSprop(net), "centered", "no"),
     (lambda net: nn.RMSprop(net), "centered", 1)],
)
def test_an_optimizer_flag_that_is_not_a_bool_is_refused(tmp_path, make, option, value):
    net = small_net()
    path = save(net, tmp_path / "good.npz", optimizer=make(net))
    rewrite(path, lambda a, h: h["optimizer"]["config"].update({option: value}))
    match = rf"good\.npz: cannot rebuild the .* optimizer .*: .*{option} must be True or False, got"
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)


def test_invalid_json_header(checkpoint_path):
    with np.load(checkpoint_path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["header"] = np.array("{not json")
    with open(checkpoint_path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="header is not valid JSON"):
        load(checkpoint_path)


# -- buffers -----------------------------------------------------------------------------------
class Tally(nn.Layer):
    """Identity that keeps state but trains nothing: a count (int64) and a running sum (float32)."""

    def __init__(self, features=3):
        super().__init__()
        self.features = features
        self.count = np.zeros((), np.int64)
        self.total = np.zeros(features, np.float32)
        self.buffers = [self.count, self.total]

    def config(self):
        return {"features": self.features}

    @classmethod
    def buffer_specs(cls, features=3):
        return [((), np.dtype(np.int64)), ((features,), np.dtype(np.float32))]

    def forward(self, x, *args):
        self.count += 1
        self.total += x.sum(axis=0)
        return x

    def backward(self, delta):
        return delta


@pytest.fixture
def tally_is_built_in(monkeypatch):
    """Let save/load treat Tally as a built-in layer for one test."""
    monkeypatch.setattr(nn.layers, "Tally", Tally, raising=False)
    monkeypatch.setattr(nn.layers, "__all__", [*nn.layers.__all__, "Tally"])


def tally_net():
    return nn.Sequential(nn.Linear(2, 3, rng=0), Tally(3), nn.Sequential(nn.ReLU(), Tally(3)))


def test_buffers_round_trip_exactly(tmp_path, tally_is_built_in):
    net = tally_net()
    rng = np.random.default_rng(0)
    for _ in range(3):
        net.forward(rng.normal(size=(4, 2)).astype(np.float32))
    path = save(net, tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(str(archive["header"]))
        assert sorted(k for k in archive.files if k.startswith("buffer.")) == [f"buffer.{i}" for i in range(4)]
    assert header["buffers"] == [{"shape": [], "dtype": "int64"}, {"shape": [3], "dtype": "float32"}] * 2
    loaded = load(path)
    assert len(loaded.buffers) == 4
    for original, restored in zip(net.buffers, loaded.buffers):
        assert restored.dtype == original.dtype and restored.shape == original.shape
        np.testing.assert_array_equal(restored, original)
    assert int(loaded[1].count) == 3 and loaded[1].buffers[0] is loaded[1].count  # copied in place


def test_a_file_without_buffers_loads_as_before(tmp_path):
    path = save(small_net(), tmp_path / "old.npz")
    rewrite(path, lambda arrays, header: header.pop("buffers"))
    np.testing.assert_array_equal(load(path).parameters[0], small_net().parameters[0])


@pytest.mark.parametrize("change, match", [
    (lambda a, h: h["buffers"].pop(), r"the architecture has 4 buffers but the file describes 3"),
    (lambda a, h: h["buffers"][1].update(shape=[4]), r"buffer 1: the architecture gives \(3,\) float32, the header says"),
    (lambda a, h: a.update({"buffer.1": np.zeros(3, np.float64)}), r"buffer 1: expected shape \(3,\) float32, the file holds \(3,\) float64"),
    (lambda a, h: a.pop("buffer.2"), r"buffer 2: the array 'buffer.2' is missing"),
    (lambda a, h: a.update({"buffer.9": np.zeros(3)}), r"unexpected arrays in the checkpoint: buffer.9"),
    (lambda a, h: h.update(buffers={"0": 1}), r"the checkpoint header's 'buffers' must be a list"),
])
def test_tampered_buffers_are_refused(tmp_path, tally_is_built_in, change, match):
    path = save(tally_net(), tmp_path / "model.npz")
    rewrite(path, change)
    with pytest.raises(ValueError, match=match) as caught:
        load(path)
    assert str(path) in str(caught.value)

# -- bounded loading: sizes checked against the file before anything is allocated -------------
import io as _io
import math
import time
import tracemalloc
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnscratch.commands.sanity_check_cases import builtin_cases
from nnscratch.io import MAX_HEADER_CHARS, MAX_LAYERS


def npy(array) -> bytes:
    buffer = _io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    return buffer.getvalue()


def npy_claiming(shape, dtype="<f4") -> bytes:
    """Only the .npy header of an array of ``shape``: a member that claims data it does not hold."""
    buffer = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def header_for(architecture, parameters, **extra):
    header = {"format": "nnscratch-checkpoint", "version": 1, "architecture": architecture,
              "parameters": parameters, "optimizer": None, "epoch": None, "metadata": {}, **extra}
    return npy(np.array(json.dumps(header)))


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            if callable(data):  # a member too big to hold in memory: written in pieces
                with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                    data(f)
            else:
                archive.writestr(f"{name}.npy", data)
    return path


def linear_file(path, n_in, n_out, member=None):
    """A file asking for Linear(n_in, n_out) without a bias, its weight member ``member``."""
    architecture = {"class": "Sequential", "layers": [
        {"class": "Linear", "config": {"in_features": n_in, "out_features": n_out, "bias": False}}]}
    parameters = [{"shape": [n_in, n_out], "dtype": "float32"}]
    return write_zip(path, {"header": header_for(architecture, parameters),
                            "param.0": npy_claiming((n_in, n_out)) if member is None else member})


def peak_of(call):
    """(the exception raised by call(), peak traced bytes, seconds)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
    except Exception as error:  # noqa: BLE001 - returned for the test to check
        raised = error
    else:
        raised = None
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return raised, peak, seconds


def test_parameter_specs_match_what_every_builtin_layer_builds():
    """The arithmetic the loader checks sizes with agrees with the constructors, for every case of
    nnscratch sanity-check (every built-in layer) and every Linear/Conv2D option."""
    layers = [case.build()[0] for case in builtin_cases()]
    layers += [nn.Linear(3, 5, bias=False, dtype=np.float64), nn.Conv2D(2, 3, (3, 1), stride=2, padding=(1, 0), bias=False)]
    seen = set()
    for layer in layers:
        if not isinstance(layer, nn.Layer):
            continue
        seen.add(type(layer).__name__)
        specs = getattr(type(layer), "parameter_specs", lambda **_: [])(**layer.config())
        assert [(tuple(s), np.dtype(d)) for s, d in specs] == [(p.shape, p.dtype) for p in layer.parameters], layer
    assert {"Linear", "Conv2D"} <= seen


@pytest.mark.parametrize("n", [12000, 10**9])
def test_a_small_file_asking_for_a_huge_layer_allocates_nothing(tmp_path, n):
    path = linear_file(tmp_path / "huge.npz", n, n)
    assert path.stat().st_size < 8192
    raised, peak, _ = peak_of(lambda: load(path))
    assert isinstance(raised, ValueError) and "huge.npz: " in str(raised)
    assert f"its .npy header announces ({n}, {n}) float32" in str(raised)
    assert peak < 1 << 20  # Linear(12000, 12000) used to allocate 2.2 GB here


def test_a_deflated_member_is_refused_before_it_is_decompressed(tmp_path):
    def zeros(f):  # 64 MiB of zeros deflate to 64 kB
        f.write(npy_claiming((4096, 4096)))
        block = bytes(1 << 20)
        for _ in range(64):
            f.write(block)

    path = tmp_path / "bomb.npz"
    architecture = {"class": "Sequential", "layers": [
        {"class": "Linear", "config": {"in_features": 4096, "out_features": 4096, "bias": False}}]}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.npy", header_for(architecture, [{"shape": [4096, 4096], "dtype": "float32"}]),
                         compress_type=zipfile.ZIP_STORED)
        with archive.open("param.0.npy", "w") as f:
            zeros(f)
    assert path.stat().st_size < 1 << 20
    raised, peak, _ = peak_of(lambda: load(path))
    assert isinstance(raised, ValueError)
    assert "bomb.npz: the member 'param.0' is compressed; checkpoints are stored uncompressed" in str(raised)
    assert peak < 1 << 20


def test_members_the_header_does_not_name_are_never_read(tmp_path, checkpoint_path):
    with zipfile.ZipFile(checkpoint_path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("junk.npy", bytes(10 << 20))
    raised, peak, _ = peak_of(lambda: load(checkpoint_path))
    assert isinstance(raised, ValueError) and "unexpected arrays in the checkpoint: junk" in str(raised)
    assert peak < 1 << 20


def test_a_header_too_big_too_many_layers_or_too_deep_fails_at_once(tmp_path):
    relu = {"class": "ReLU", "config": {}}
    too_many = {"class": "Sequential", "layers": [relu] * (MAX_LAYERS + 1)}
    path = write_zip(tmp_path / "many.npz", {"header": header_for(too_many, [])})
    with pytest.raises(ValueError, match=rf"many\.npz: the architecture has more than {MAX_LAYERS} layers"):
        load(path)
    deep = relu
    for _ in range(40):
        deep = {"class": "Sequential", "layers": [deep]}
    path = write_zip(tmp_path / "deep.npz", {"header": header_for(deep, [])})
    with pytest.raises(ValueError, match=r"deep\.npz: model(\[0\])+: containers nested more than 32 deep"):
        load(path)
    path = write_zip(tmp_path / "big.npz", {"header": npy(np.array(" " * (MAX_HEADER_CHARS + 1)))})
    raised, peak, _ = peak_of(lambda: load(path))
    assert isinstance(raised, ValueError) and f"the header has {MAX_HEADER_CHARS + 1} characters, more than {MAX_HEADER_CHARS}" in str(raised)
    assert peak < 1 << 20  # refused from the zip directory, before the 4 MB member is read
    path = write_zip(tmp_path / "nested.npz", {"header": npy(np.array("[" * 100000 + "]" * 100000))})
    with pytest.raises(ValueError, match=r"nested\.npz: the checkpoint header is not valid JSON"):
        load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_or_a_directory_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(ValueError, match=r"pipe\.npz: not a regular file \(a FIFO"):
        load(tmp_path / "pipe.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(ValueError, match=r"dir\.npz: not a regular file \(a directory\)"):
        load(tmp_path / "dir.npz")


def test_duplicate_and_fortran_order_members(tmp_path, checkpoint_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(checkpoint_path, "a") as archive:
            archive.writestr("param.0.npy", npy(np.zeros((3, 4), np.float32)))
    with pytest.raises(ValueError, match=r"good\.npz: not an nnscratch checkpoint: the member 'param\.0' appears twice"):
        load(checkpoint_path)
    net = small_net()
    perturb(net)
    with np.load(save(net, tmp_path / "f.npz")) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["param.0"] = np.asfortranarray(arrays["param.0"])
    with open(tmp_path / "f.npz", "wb") as f:
        np.savez(f, **arrays)
    np.testing.assert_array_equal(load(tmp_path / "f.npz").parameters[0], net.parameters[0])


# -- every failure a ValueError naming the file: fuzzing header and members -------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
layer_names = st.sampled_from(["Sequential", "Linear", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Mean", "os.system"])
layer_descriptions = st.recursive(
    st.fixed_dictionaries({"class": layer_names}, optional={"config": st.dictionaries(
        st.sampled_from(["in_features", "out_features", "bias", "dtype", "in_channels", "out_channels",
                         "kernel_size", "stride", "padding"]), json_values, max_size=5)}),
    lambda children: st.fixed_dictionaries({"class": layer_names}, optional={"layers": st.lists(children, max_size=3) | json_values}),
    max_leaves=6,
)
header_fields = st.fixed_dictionaries({}, optional={
    "format": st.just("nnscratch-checkpoint") | json_values, "version": st.just(1) | json_values,
    "architecture": layer_descriptions | json_values, "parameters": st.lists(json_values, max_size=3) | json_values,
    "optimizer": st.none() | st.fixed_dictionaries({}, optional={
        "class": st.sampled_from(["SGD", "Adam"]) | json_values, "config": json_values,
        "steps": json_values, "state": st.lists(st.text(max_size=10), max_size=3) | json_values}),
    "epoch": st.none() | json_values, "metadata": json_values,
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=header_fields | json_values)
def test_fuzzed_headers_load_or_fail_with_a_value_error(tmp_path, header):
    path = tmp_path / "fuzz.npz"
    write_zip(path, {"header": npy(np.array(json.dumps(header)))})
    try:
        load_checkpoint(path)
    except ValueError as error:
        assert str(error).startswith(f"{path}: ")


member_data = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda a: npy(a), st.sampled_from([
        np.zeros((3, 4), np.float64), np.zeros((4, 3), np.float32), np.zeros((3, 4), ">f4"), np.zeros((3, 4), np.int32),
        np.array([1, "x"], dtype=object), np.zeros(3, [("a", "f4")]), np.array("text"), np.zeros((3, 4, 1), np.float32),
        np.zeros((), np.float32)])),
    st.builds(lambda shape, dtype: npy_claiming(shape, dtype), st.lists(st.integers(0, 2**40), max_size=9),
              st.sampled_from(["<f4", "<U5", "|O", "<f8", "V8"])),
    st.builds(lambda data, cut: data[:cut], st.just(npy(np.ones((3, 4), np.float32))), st.integers(0, 200)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["header", "param.0", "param.1", "optimizer.m.0", "optimizer.v.2"]), data=member_data)
def test_fuzzed_members_load_or_fail_with_a_value_error(checkpoint_path, name, data):
    good = checkpoint_path.read_bytes()
    with np.load(checkpoint_path) as archive:
        members = {k: npy(archive[k]) for k in archive.files}
    members[name] = data
    path = write_zip(checkpoint_path.with_name("fuzz.npz"), members)
    try:
        load_checkpoint(path)
    except ValueError as error:
        assert str(error).startswith(f"{path}: ")
    else:  # only a member equal in shape, dtype and validity could load
        assert name != "header"
    assert checkpoint_path.read_bytes() == good


# -- save checks with load's rules, and never replaces a good file with a bad one -------------
def test_save_refuses_what_load_would_refuse_before_writing(tmp_path, checkpoint_path):
    good = checkpoint_path.read_bytes()
    net = small_net()
    with pytest.raises(ValueError, match=r"save: the checkpoint's epoch must be a non-negative int, got -5"):
        save(net, checkpoint_path, epoch=-5)
    with pytest.raises(ValueError, match=r"save: the checkpoint's epoch must be a non-negative int, got True"):
        save(net, checkpoint_path, epoch=True)
    swapped = small_net()
    swapped[0].parameters[0] = np.zeros((5, 5), np.float32)
    with pytest.raises(ValueError, match=r"save: parameter 0: the architecture gives \(3, 4\) float32, the header says .*\(model\[0\], Linear\)"):
        save(swapped, checkpoint_path)
    optimizer = nn.Adam(net)
    train_steps(net, optimizer, 1)
    optimizer.steps = -1
    with pytest.raises(ValueError, match=r"save: the Adam optimizer's steps must be a non-negative int, got -1"):
        save(net, checkpoint_path, optimizer=optimizer)
    assert checkpoint_path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]


def test_save_loads_the_file_back_before_replacing(tmp_path, checkpoint_path, monkeypatch):
    good = checkpoint_path.read_bytes()
    real_savez = np.savez
    monkeypatch.setattr(np, "savez", lambda f, **arrays: real_savez(f, **{**arrays, "extra": np.zeros(1)}))
    with pytest.raises(RuntimeError, match="save: the file written does not load back .*unexpected arrays"):
        save(small_net(), checkpoint_path)
    assert checkpoint_path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]


def test_a_checkpoint_bias_must_be_a_real_bool(checkpoint_path):
    rewrite(checkpoint_path, lambda a, h: h["architecture"]["layers"][0]["config"].update(bias="no"))
    with pytest.raises(ValueError, match=r"good\.npz: model\[0\] \(Linear\): cannot rebuild it .*bias must be True or False, got str 'no'"):
        load(checkpoint_path)
