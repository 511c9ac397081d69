"""What the tests of fit, evaluate and predict share (tests/test_train.py, test_evaluation.py): seeded
blobs to learn, the loss, an independent float64 cross-entropy, and plain protocol layers that
record their modes and their release_memory() calls."""

import numpy as np

import nnscratch as nn


def blobs(n=200, seed=0, dtype=np.float32):
    """Three well-separated Gaussian blobs in 2-D, labels 0-2."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[3.0, 0.0], [-3.0, 3.0], [0.0, -3.0]])
    x = (centres[y] + rng.normal(size=(n, 2))).astype(dtype)
    return x, y


def ce_loss():
    return nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())


def reference_loss(logits, labels):
    """Mean softmax cross-entropy in float64, written out."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


# -- modes -------------------------------------------------------------------------------------
class ModeSpy(nn.Layer):
    """Identity that records the mode it ran forward in, and can be told to fail."""

    def __init__(self, fail_after=None):
        super().__init__()
        self.seen, self.fail_after = [], fail_after

    def forward(self, x, *args):
        self.seen.append(self.training)
        if self.fail_after is not None and len(self.seen) > self.fail_after:
            raise RuntimeError("boom")
        return x

    def backward(self, delta):
        return delta


def spy_model(**kwargs):
    spy = ModeSpy(**kwargs)
    return spy, nn.Sequential(nn.Linear(2, 3, rng=0), spy)


# -- memory handed back --------------------------------------------------------------------------
class ReleaseSpy:
    """A plain protocol class that counts its release_memory() calls and when they came."""

    def __init__(self):
        self.parameters, self.parameters_deltas, self.releases, self.forwards = [], [], [], 0

    def forward(self, x, *args):
        self.forwards += 1
        return x

    def backward(self, delta):
        return delta

    def release_memory(self):
        self.releases.append(self.forwards)
