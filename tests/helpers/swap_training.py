"""The same network built from the reference layers and from the fast ones, each trained by fit: what
the reference layers' tests use to show a twin is a stand-in for its fast layer (tests/reference/)."""

from __future__ import annotations

import numpy as np

import nnscratch as nn


def assert_same_training(build, batch_size):
    """``build(kind)`` from the reference layers and from the fast ones, each trained by fit: the same
    losses, parameters and buffers (running statistics), and the same predict (eval mode)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 1, 6, 6)), rng.integers(0, 3, 24)
    runs = []
    for kind in (nn.reference, nn):
        model = build(kind)
        loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
        history = nn.fit(model, loss, nn.SGD(model, lr=0.1, momentum=0.9), x, y, epochs=3, batch_size=batch_size,
                         rng=0, progress=False)
        runs.append(([h["loss"] for h in history], model.parameters + model.buffers, nn.predict(model, x)))
    (loss_ref, state_ref, out_ref), (loss_fast, state_fast, out_fast) = runs
    np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-10)
    assert loss_ref[-1] < loss_ref[0]  # it trained
    for a, b in zip(state_fast, state_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out_fast, out_ref, rtol=1e-9, atol=1e-12)
