"""What the checkpoint tests share: small networks, a layer with buffers, and tools that write
checkpoint files by hand (good, tampered or hostile) and measure what loading them costs."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile

import numpy as np

import nnscratch as nn


def small_net():
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1), nn.SoftmaxCrossEntropy(), nn.Mean())


def perturb(net):
    """Give every parameter (biases too) values no fresh layer would have."""
    rng = np.random.default_rng(1)
    for p in net.parameters:
        p[...] = rng.normal(size=p.shape)


def train_steps(net, optimizer, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.normal(size=(5, 3)).astype(np.float32)
        net.forward(x, rng.integers(0, 2, 5))
        net.backward()
        optimizer.step()


def header_of(path) -> dict:
    """A checkpoint's header, read with NumPy alone."""
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["header"]))


def rewrite(path, change):
    """Load an .npz's arrays and header, let ``change(arrays, header)`` edit them, write it back."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(str(arrays["header"]))
    change(arrays, header)
    arrays["header"] = np.array(json.dumps(header))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


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


def tally_net():
    return nn.Sequential(nn.Linear(2, 3, rng=0), Tally(3), nn.Sequential(nn.ReLU(), Tally(3)))


def built_in(monkeypatch, *classes):
    """Let save/load treat ``classes`` as built-in layers for the rest of one test."""
    for cls in classes:
        monkeypatch.setattr(nn.layers, cls.__name__, cls, raising=False)
    monkeypatch.setattr(nn.layers, "__all__", [*nn.layers.__all__, *(cls.__name__ for cls in classes)])


# -- files written by hand ---------------------------------------------------------------------
def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    return buffer.getvalue()


def npy_claiming(shape, dtype="<f4") -> bytes:
    """Only the .npy header of an array of ``shape``: a member that claims data it does not hold."""
    buffer = io.BytesIO()
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


def zeros_after(start: bytes, size: int):
    """A member writer: ``start``, then zero bytes up to ``size`` bytes in all, a MiB at a time."""

    def write(f):
        f.write(start)
        left = size - len(start)
        block = bytes(1 << 20)
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)

    return write


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
