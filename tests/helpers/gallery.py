"""A gallery of broken layers, each written the way a learner gets it wrong, each with the diagnosis
it must get (and no other). Plain classes following the layer protocol; the docs page
docs/when-the-check-fails.md shows each one next to its diagnosis.

``GALLERY`` maps a name to (build() -> (layer, x, args), the diagnoses expected per tensor row).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import nnscratch as nn


def normal(shape, seed, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


class Linear:
    """y = x @ W + b, right. (Like helpers/check_layers.py's PlainLinear on purpose: the gallery is
    self-contained, a module the command tests load as a user's own.)"""

    def __init__(self, n_in=4, n_out=4, seed=0):
        rng = np.random.default_rng(seed)
        self.W, self.b = rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out)
        self.parameters = [self.W, self.b]
        self.parameters_deltas = [np.zeros_like(self.W), np.zeros_like(self.b)]

    def forward(self, x, *args):
        self.x = x
        return x @ self.W + self.b

    def backward(self, delta):
        self.parameters_deltas[0][...] = self.x.T @ delta
        self.parameters_deltas[1][...] = delta.sum(axis=0)
        return delta @ self.W.T


class TransposedWeightLinear(Linear):
    """dW = delta.T @ x: of W's shape only because W is square, and transposed."""

    def backward(self, delta):
        delta_x = super().backward(delta)
        self.parameters_deltas[0][...] = delta.T @ self.x
        return delta_x


class ForgetsToStoreLinear(Linear):
    """self.dW = ... binds a new array; parameters_deltas still holds the zeros it started with."""

    def backward(self, delta):
        self.dW = self.x.T @ delta
        self.db = delta.sum(axis=0)
        return delta @ self.W.T


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class MeanSoftmaxCrossEntropy:
    """The mean over the batch of -log softmax(x)[label]; backward forgets the mean's 1/N."""

    parameters, parameters_deltas = [], []

    def forward(self, x, labels):
        self.p, self.labels = _softmax(x), labels
        return -np.mean(np.log(self.p[np.arange(len(labels)), labels]))

    def backward(self, delta):
        grad = self.p.copy()
        grad[np.arange(len(self.labels)), self.labels] -= 1
        return grad * delta  # should be grad * delta / N


class SoftmaxCrossEntropyIgnoringDelta:
    """Per-sample losses (N,); backward returns p - t, right only when delta is all ones."""

    parameters, parameters_deltas = [], []

    def forward(self, x, labels):
        self.p, self.labels = _softmax(x), labels
        return -np.log(self.p[np.arange(len(labels)), labels])

    def backward(self, delta):
        grad = self.p.copy()
        grad[np.arange(len(self.labels)), self.labels] -= 1
        return grad  # should be grad * delta[:, None]


class WrongSignSigmoid:
    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, delta):
        return delta * self.y * (self.y - 1)  # should be y * (1 - y)


class AccumulatingReLU:
    """Keeps its input gradient in a buffer made once, and adds to it."""

    parameters, parameters_deltas = [], []
    grad = None

    def forward(self, x, *args):
        self.mask = x > 0
        return x * self.mask

    def backward(self, delta):
        if self.grad is None:
            self.grad = np.zeros_like(delta)
        self.grad += delta * self.mask  # should be =
        return self.grad


class LastOnTiesMaxPool:
    """2x2 max pooling, stride 2; backward sends each delta to the LAST maximum of its window
    (PyTorch picks the first): a tie is a kink, where either is a fine gradient."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        n, c, h, w = x.shape
        self.windows = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        self.shape = x.shape
        return self.windows.max(axis=-1)

    def backward(self, delta):
        n, c, h, w = self.shape
        last = 3 - np.argmax(self.windows[..., ::-1], axis=-1)
        grad = np.zeros_like(self.windows)
        np.put_along_axis(grad, last[..., None], delta[..., None], axis=-1)
        return grad.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


class ForgetGateLSTM:
    """An LSTM over a sequence (CS231n's step and loop), h0 = c0 = 0, gates [i, f, o, g]; in the
    step's backward the forget gate's gradient uses the new cell state, where the previous one is right."""

    independent_samples = True

    def __init__(self, d=3, h=2, seed=1):
        rng = np.random.default_rng(seed)
        self.Wx, self.Wh = rng.standard_normal((d, 4 * h)) * 0.5, rng.standard_normal((h, 4 * h)) * 0.5
        self.b = rng.standard_normal(4 * h) * 0.5
        self.parameters = [self.Wx, self.Wh, self.b]
        self.parameters_deltas = [np.zeros_like(p) for p in self.parameters]

    def forward(self, x, *args):
        n, t, _ = x.shape
        hidden = self.Wh.shape[0]
        h, c = np.zeros((n, hidden)), np.zeros((n, hidden))
        self.cache, out = [], np.empty((n, t, hidden))
        for step in range(t):
            a = x[:, step] @ self.Wx + h @ self.Wh + self.b
            i, f, o, g = (_sigmoid(a[:, :hidden]), _sigmoid(a[:, hidden:2 * hidden]),
                          _sigmoid(a[:, 2 * hidden:3 * hidden]), np.tanh(a[:, 3 * hidden:]))
            c_next = f * c + i * g
            h_next = o * np.tanh(c_next)
            self.cache.append((x[:, step], h, c, i, f, o, g, c_next))
            h, c = h_next, c_next
            out[:, step] = h
        return out

    def backward(self, delta):
        n, t, hidden = delta.shape
        dx = np.empty((n, t, self.Wx.shape[0]))
        dWx, dWh, db = (np.zeros_like(p) for p in self.parameters)
        dh_next, dc_next = np.zeros((n, hidden)), np.zeros((n, hidden))
        for step in reversed(range(t)):
            x, h_prev, c_prev, i, f, o, g, c = self.cache[step]
            dh = delta[:, step] + dh_next
            dc = dc_next + dh * o * (1 - np.tanh(c) ** 2)
            di, df, do, dg = dc * g, dc * c, dh * np.tanh(c), dc * i  # df should be dc * c_prev
            da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)])
            dx[:, step] = da @ self.Wx.T
            dWx += x.T @ da
            dWh += h_prev.T @ da
            db += da.sum(axis=0)
            dh_next, dc_next = da @ self.Wh.T, dc * f
        for target, value in zip(self.parameters_deltas, (dWx, dWh, db)):
            target[...] = value
        return dx


class MeanForgettingBatchNorm:
    """Batch normalization over (N, D) in training mode; backward forgets that the batch mean depends on x."""

    independent_samples = False  # the batch statistics mix the samples, by design

    def __init__(self, d=4, seed=2):
        rng = np.random.default_rng(seed)
        self.gamma, self.beta = rng.uniform(0.5, 1.5, d), rng.uniform(-1, 1, d)
        self.parameters = [self.gamma, self.beta]
        self.parameters_deltas = [np.zeros(d), np.zeros(d)]

    def forward(self, x, *args):
        self.inv_std = 1 / np.sqrt(x.var(axis=0) + 1e-5)
        self.x_hat = (x - x.mean(axis=0)) * self.inv_std
        return self.gamma * self.x_hat + self.beta

    def backward(self, delta):
        self.parameters_deltas[0][...] = (delta * self.x_hat).sum(axis=0)
        self.parameters_deltas[1][...] = delta.sum(axis=0)
        d_hat = delta * self.gamma
        # right: inv_std * (d_hat - d_hat.mean(0) - x_hat * (d_hat * x_hat).mean(0))
        return self.inv_std * (d_hat - self.x_hat * (d_hat * self.x_hat).mean(axis=0))


class UnflippedConv2D:
    """Cross-correlation, stride 1, no padding; the input gradient is the full correlation of delta
    with the kernel as it is, where the kernel rotated 180 degrees is right."""

    def __init__(self, c_in=2, c_out=3, k=3, seed=3):
        rng = np.random.default_rng(seed)
        self.W, self.b = rng.standard_normal((c_out, c_in, k, k)) * 0.5, rng.standard_normal(c_out)
        self.parameters = [self.W, self.b]
        self.parameters_deltas = [np.zeros_like(self.W), np.zeros_like(self.b)]

    def forward(self, x, *args):
        self.windows = sliding_window_view(x, self.W.shape[2:], axis=(2, 3))  # (N, C, oh, ow, k, k)
        return np.einsum("ncrsij,fcij->nfrs", self.windows, self.W) + self.b[:, None, None]

    def backward(self, delta):
        k = self.W.shape[2]
        self.parameters_deltas[0][...] = np.einsum("nfrs,ncrsij->fcij", delta, self.windows)
        self.parameters_deltas[1][...] = delta.sum(axis=(0, 2, 3))
        padded = np.pad(delta, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
        windows = sliding_window_view(padded, (k, k), axis=(2, 3))
        return np.einsum("nfrsij,fcij->ncrs", windows, self.W)  # should be self.W[:, :, ::-1, ::-1]


class BatchSumSoftmax:
    """Softmax over the classes; backward sums over axis 0 (the batch) where axis 1 is right."""

    independent_samples = True
    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        self.y = _softmax(x)
        return self.y

    def backward(self, delta):
        return self.y * (delta - (delta * self.y).sum(axis=0, keepdims=True))  # should be axis=1


class AssigningEmbedding:
    """Rows of a table picked by integer ids; backward assigns dW[ids] = delta, so an id that
    occurs twice keeps only its last delta (np.add.at(dW, ids, delta) sums them)."""

    integer_input = True

    def __init__(self, vocab=10, dim=3, seed=4):
        self.W = np.random.default_rng(seed).standard_normal((vocab, dim))
        self.parameters, self.parameters_deltas = [self.W], [np.zeros((vocab, dim))]

    def forward(self, ids, *args):
        self.ids = ids
        return self.W[ids]

    def backward(self, delta):
        self.parameters_deltas[0][...] = 0
        self.parameters_deltas[0][self.ids] = delta
        return None


class Embedding(AssigningEmbedding):
    def backward(self, delta):
        self.parameters_deltas[0][...] = 0
        np.add.at(self.parameters_deltas[0], self.ids, delta)
        return None


class OverflowingSoftmax:
    """Softmax without subtracting the max first: fine in float64 up to exp(709), inf in float32 past exp(88)."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        e = np.exp(x)
        self.y = e / e.sum(axis=1, keepdims=True)
        return self.y

    def backward(self, delta):
        return self.y * (delta - (delta * self.y).sum(axis=1, keepdims=True))


class Float32Tanh:
    """tanh computed in float32 "to be fast", written into an output of the input's dtype."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        self.y = np.empty_like(x)
        self.y[...] = np.tanh(x.astype(np.float32))
        return self.y

    def backward(self, delta):
        return delta * (1 - self.y**2)


class Float32GradientTanh:
    """Right, but its input gradient comes back as float32 whatever it is given."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        self.y = np.tanh(x)
        return self.y

    def backward(self, delta):
        return (delta * (1 - self.y**2)).astype(np.float32)


class TimeMeanPool:
    """The mean over time of a sequence (N, T, D) -> (N, D); backward forgets the 1/T."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        self.t = x.shape[1]
        return x.mean(axis=1)

    def backward(self, delta):
        return np.repeat(delta[:, None], self.t, axis=1)  # should be divided by T


class NoisyScale:
    """y = 2x; backward adds noise: different on every call."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        return 2 * x

    def backward(self, delta):
        return 2 * delta + np.random.default_rng().normal(0, 1e-3, delta.shape)


def _ties(shape, seed):
    return np.random.default_rng(seed).integers(0, 3, shape).astype(float)


LABELS = np.array([0, 2, 1, 4])
IDS = np.array([[1, 3, 3, 7], [0, 1, 9, 2], [5, 5, 5, 8]])

# name -> (build, {row: expected kinds}) ; rows not named must pass with no diagnosis
GALLERY = {
    "transposed weight gradient": (lambda: (TransposedWeightLinear(), normal((5, 4), 0), ()),
                                   {"parameter 0": {"transposed"}}),
    "cross-entropy missing its 1/N": (lambda: (MeanSoftmaxCrossEntropy(), normal((4, 5), 1), (LABELS,)),
                                      {"input": {"scaled"}}),
    "sigmoid with the wrong sign": (lambda: (WrongSignSigmoid(), normal((4, 5), 2), ()), {"input": {"wrong-sign"}}),
    "ReLU gradient that accumulates": (lambda: (AccumulatingReLU(), normal((4, 5), 3), ()),
                                       {"input": {"accumulates"}}),
    "max-pool routing ties to the last": (lambda: (LastOnTiesMaxPool(), _ties((2, 1, 4, 4), 4), ()),
                                          {"input": {"kink"}}),
    "LSTM forget gate on the new cell": (lambda: (ForgetGateLSTM(), normal((2, 3, 3), 5), ()),
                                         {row: {"wrong-elements"} for row in
                                          ("input", "parameter 0", "parameter 1", "parameter 2")}),
    "batch norm forgetting the mean": (lambda: (MeanForgettingBatchNorm(), normal((5, 4), 6, 1.5), ()),
                                       {"input": {"batch-constant"}}),
    "conv without the kernel flip": (lambda: (UnflippedConv2D(), normal((2, 2, 5, 5), 7), ()),
                                     {"input": {"transposed"}}),
    "weight gradient never stored": (lambda: (ForgetsToStoreLinear(), normal((5, 4), 8), ()),
                                     {"parameter 0": {"zero"}, "parameter 1": {"zero"}}),
    "loss ignoring delta": (lambda: (SoftmaxCrossEntropyIgnoringDelta(), normal((4, 5), 9), (LABELS,)),
                            {"input": {"ignores-upstream"}}),
    "softmax summing over the batch": (lambda: (BatchSumSoftmax(), normal((4, 5), 10), ()),
                                       {"input": {"leaks-across-batch"}}),
    "embedding assigning repeated ids": (lambda: (AssigningEmbedding(), IDS, ()), {"parameter 0": {"wrong-elements"}}),
    "softmax overflowing in float32": (lambda: (OverflowingSoftmax(), normal((4, 5), 11, 60.0), ()),
                                       {"input": {"precision"}}),
    "tanh computed in float32": (lambda: (Float32Tanh(), normal((4, 5), 12), ()), {"input": {"precision"}}),
    "tanh gradient returned as float32": (lambda: (Float32GradientTanh(), normal((4, 5), 13), ()),
                                          {"input": {"precision"}}),
    "time mean missing its 1/T": (lambda: (TimeMeanPool(), normal((2, 7, 3), 14), ()), {"input": {"scaled"}}),
    "noisy backward": (lambda: (NoisyScale(), normal((4, 5), 15), ()), {"input": {"not-repeatable"}}),
}

# Right layers in the same configurations: no diagnosis at all.
RIGHT = {
    "linear": lambda: (Linear(), normal((5, 4), 0), ()),
    "embedding": lambda: (Embedding(), IDS, ()),
    "softmax": lambda: (nn.Softmax(), normal((4, 5), 10), ()),
}
