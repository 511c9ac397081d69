"""What scripts/benchmark.py measures of the recurrent layers (issue 22): one layer's forward and
backward (dL/dx included, as in the middle of a network) on (N, T, D) = (32, 64, 256) sequences,
H = 256, float32, nnscratch's LSTM, GRU and RNN beside PyTorch's nn.LSTM, nn.GRU and nn.RNN from the
same weights, alternating run by run; and the resident memory of LSTM steps, step after step.
"""

from __future__ import annotations

import numpy as np

import nnscratch as nn
from benchmark_machine import blas_gflops, cpu_snapshot, others_cpu_share, rss_bytes
from benchmark_networks import _summary, samples_per_second

# The LSTM's target (issue 22): at least 0.75 of PyTorch's speed. GRU and RNN: measured, no target.
SEQUENCE_TARGETS = {"lstm": 0.75, "gru": None, "rnn": None}
SHAPE = {"batch": 32, "length": 64, "input_size": 256, "hidden_size": 256}  # N, T, D, H


def build_recurrent(cell: str, seed: int = 0, shape=None):
    """The nnscratch layer (float32) and a fixed input and upstream gradient for it."""
    shape = shape or SHAPE
    layer = getattr(nn, cell.upper())(shape["input_size"], shape["hidden_size"], rng=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((shape["batch"], shape["length"], shape["input_size"]), dtype=np.float32)
    delta = rng.standard_normal((shape["batch"], shape["length"], shape["hidden_size"]), dtype=np.float32)
    return layer, x, delta


def recurrent_steps(torch, layer, x, delta) -> dict:
    """``{"nnscratch": step, "pytorch": step}``: one forward and backward each, from the same weights
    (PyTorch's twin made by ``nn.to_torch``: nn.LSTM/GRU/RNN with batch_first=True)."""

    def ours(x, delta):
        layer.forward(x)
        return layer.backward(delta)

    steps = {"nnscratch": ours}
    if torch is not None:
        module = nn.to_torch(layer)
        tx = torch.from_numpy(x).requires_grad_(True)
        tdelta = torch.from_numpy(delta)

        def theirs(x, delta):
            module.zero_grad()
            tx.grad = None
            module(tx).backward(tdelta)
            return tx.grad

        steps["pytorch"] = theirs
    return steps


def compare_recurrent(cell: str, torch=None, repeats=7, steps=5, warmup=1, warmup_seconds=0.2, shape=None) -> dict:
    """Alternating runs of nnscratch's and PyTorch's layer (who goes first swaps each repeat);
    sequences per second, medians, and the ratio of each pair of runs."""
    layer, x, delta = build_recurrent(cell, shape=shape)
    runners = recurrent_steps(torch, layer, x, delta)
    data = {"nnscratch": [(x, delta)], "pytorch": [(x, delta)]}
    runs = {name: [] for name in runners}
    probes, before = [], cpu_snapshot()
    for repeat in range(repeats):
        probes.append(blas_gflops())
        order = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for name in order:
            runs[name].append(samples_per_second(runners[name], data[name], steps, warmup, warmup_seconds))
    target = SEQUENCE_TARGETS[cell]
    result = {"target": target, "steps": steps, "repeats": repeats, "shape": dict(shape or SHAPE),
              "nnscratch": _summary(runs["nnscratch"]), "pytorch": None, "ratio": None, "pair_ratios": None,
              "best_ratio": None, "meets_target": None, "others_cpu_share": others_cpu_share(before, cpu_snapshot()),
              "blas_gflops": probes}
    if torch is not None:
        result["pytorch"] = _summary(runs["pytorch"])
        result["ratio"] = result["nnscratch"]["median"] / result["pytorch"]["median"]
        result["best_ratio"] = result["nnscratch"]["best"] / result["pytorch"]["best"]
        result["pair_ratios"] = [a / b for a, b in zip(runs["nnscratch"], runs["pytorch"])]
        result["meets_target"] = None if target is None else result["ratio"] >= target
    return result


def measure_recurrent_memory(steps=1000, every=100, shape=None) -> dict:
    """Resident memory of LSTM forward + backward steps, every ``every`` steps after ``every``
    unmeasured ones (the arrays the layer recycles then exist): a leak grows, a bounded loop is flat."""
    layer, x, delta = build_recurrent("lstm", shape=shape)

    def run(count):
        for _ in range(count):
            layer.forward(x)
            layer.backward(delta)

    run(every)
    rss = [rss_bytes()]
    for _ in range(max(1, steps // every)):
        run(every)
        rss.append(rss_bytes())
    growth = rss[-1] - rss[0]
    return {"steps": every * (len(rss) - 1), "every": every, "rss_mb": [r / 2**20 for r in rss],
            "growth_mb": growth / 2**20, "growth_per_step_bytes": growth / (every * (len(rss) - 1))}
