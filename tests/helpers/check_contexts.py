"""A check's context built by hand, as ``sanity_check`` builds it, so that the diagnoses of
nnscratch/check/ can be called one at a time on a layer (tests/check/test_axes.py, test_kinks.py,
test_samples.py, test_context.py): the float64 working copy, its runner, R, the first output and a
target per tensor (every coordinate checked)."""

from __future__ import annotations

import numpy as np

from nnscratch.check.context import Context, Target
from nnscratch.check.traits import independent_samples
from nnscratch.check.working_copy import Runner, float64_copy, parameters_of


def context_for(layer, x, args=(), eps=1e-6, atol=1e-6, rtol=1e-5, seed=0) -> Context:
    work = float64_copy(layer, "layer")
    run = Runner(work, "layer", np.asarray(x, np.float64), tuple(args))
    y0 = run.forward()
    r = np.random.default_rng(seed).standard_normal(y0.shape)
    targets = [Target(0, "input", run.x, np.arange(run.x.size))]
    targets += [Target(i + 1, f"parameter {i}", p, np.arange(p.size)) for i, p in enumerate(parameters_of(work))]
    return Context(run, r, y0, eps, atol, rtol, seed, targets, independent_samples(layer))


class Dense:
    """y = x @ W, a plain protocol layer; ``mistake`` picks a wrong backward ("transposed-dW":
    dW = delta.T @ x; "untransposed-W": dx = delta @ W; None: right)."""

    def __init__(self, n=3, mistake=None, seed=0):
        self.W = np.random.default_rng(seed).standard_normal((n, n))
        self.parameters, self.parameters_deltas, self.mistake = [self.W], [np.zeros((n, n))], mistake
        self.independent_samples = True

    def forward(self, x, *args):
        self.x = x
        return x @ self.W

    def backward(self, delta):
        dW = delta.T @ self.x if self.mistake == "transposed-dW" else self.x.T @ delta
        self.parameters_deltas[0][...] = dW
        return delta @ self.W if self.mistake == "untransposed-W" else delta @ self.W.T
