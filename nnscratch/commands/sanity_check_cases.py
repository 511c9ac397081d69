"""What ``nnscratch sanity-check`` checks the built-in layers on: each configuration as a ``Case``.

The inputs are seeded and kept away from the points where a layer is not differentiable (ReLU's
kink, max-pooling ties, log of a probability near 0), so a central difference with eps = 1e-6 is
a fair reference. ``make_input`` and ``make_targets`` also build the input and targets of a
user's layer given with ``--layer``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import numpy as np

import nnscratch

# the kinds of loss targets: integer labels (N,), one-hot rows (N, C), soft rows (N, C) summing to 1
TARGET_KINDS = ("integer", "one-hot", "soft")
# the kinds of input for a user's layer (--input): see make_input
INPUT_KINDS = ("normal", "away-from-zero", "positive", "probabilities", "ids:V")


class ConvConfig(NamedTuple):
    """A Conv2D configuration: the constructor's arguments and an input shape (batch axis first)."""

    name: str
    in_channels: int
    out_channels: int
    kernel_size: int | tuple
    stride: int | tuple
    padding: int | tuple
    bias: bool
    shape: tuple


class PoolConfig(NamedTuple):
    """A MaxPool2D configuration: kernel, stride (None: the kernel's) and an input shape."""

    name: str
    kernel_size: int | tuple
    stride: int | tuple | None
    shape: tuple


# The Conv2D and MaxPool2D configurations, one table for the command's cases and for the tests
# (tests/layer_configs.py: reference layers against the loop twins, fast layers against reference).
CONV_CONFIGS = [ConvConfig(*config) for config in [
    ("4x4 input, 3x3 kernel", 1, 1, 3, 1, 0, False, (1, 1, 4, 4)),
    ("padding 1", 1, 1, 3, 1, 1, False, (1, 1, 4, 4)),
    ("stride 2 on 7x7", 1, 1, 3, 2, 0, False, (1, 1, 7, 7)),
    ("padding 1 + stride 2 on 7x7", 1, 1, 3, 2, 1, False, (1, 1, 7, 7)),
    ("3 input channels", 3, 1, 3, 1, 0, False, (1, 3, 5, 5)),
    ("3 channels + bias", 3, 1, 3, 1, 0, True, (1, 3, 5, 5)),
    ("4 filters", 3, 4, 3, 1, 0, False, (1, 3, 5, 5)),
    ("4 filters + bias", 3, 4, 3, 1, 0, True, (1, 3, 5, 5)),
    ("mini-batch of 3", 3, 4, 3, 1, 0, True, (3, 3, 5, 5)),
    ("RGB batch 3x3x7x7, 4 filters, stride 2, padding 1", 3, 4, 3, 2, 1, True, (3, 3, 7, 7)),
    ("kernel (3, 2), stride (2, 1), padding (1, 0)", 2, 3, (3, 2), (2, 1), (1, 0), True, (2, 2, 7, 6)),
    ("kernel (2, 3), stride (1, 2), 1x1 padding", 2, 2, (2, 3), (1, 2), 1, True, (1, 2, 5, 7)),
    ("kernel (3, 2), stride (1, 2), padding (0, 1)", 2, 3, (3, 2), (1, 2), (0, 1), True, (2, 2, 6, 7)),
    ("kernel (2, 3), stride (2, 1), padding (2, 0)", 2, 3, (2, 3), (2, 1), (2, 0), True, (2, 2, 5, 6)),
    ("rectangular input 5x9, kernel (1, 4), stride 3", 2, 2, (1, 4), 3, 0, True, (2, 2, 5, 9)),
    ("1x1 kernel", 3, 2, 1, 1, 0, True, (2, 3, 4, 5)),
    ("padding larger than the kernel reach", 1, 2, 2, 1, 3, True, (2, 1, 3, 3)),
]]
MAXPOOL_CONFIGS = [PoolConfig(*config) for config in [
    ("2x2, stride 2 (default)", 2, None, (2, 2, 6, 6)),
    ("2x2, default stride, 3 channels", 2, None, (2, 3, 4, 4)),
    ("2x2 stride 2 on odd 7x7: floor drops the last row and column", 2, 2, (2, 2, 7, 7)),
    ("3x3 default stride", 3, None, (1, 2, 9, 7)),
    ("2x2, stride 1 (overlapping)", 2, 1, (2, 2, 5, 5)),
    ("3x3, stride 2 (overlapping)", 3, 2, (1, 3, 7, 7)),
    ("3x3, stride 2 (overlapping) on 7x8", 3, 2, (2, 2, 7, 8)),
    ("gaps: 2x2 stride 3", 2, 3, (1, 2, 8, 8)),
    ("kernel (2, 3), stride (1, 2)", (2, 3), (1, 2), (2, 1, 5, 7)),
    ("kernel (2, 3), stride (1, 2), 2 channels", (2, 3), (1, 2), (2, 2, 5, 7)),
    ("kernel (3, 1), stride (3, 1)", (3, 1), (3, 1), (2, 1, 6, 4)),
    ("kernel the size of the input", (4, 5), None, (2, 2, 4, 5)),
    ("1x1 kernel stride 2", 1, 2, (1, 2, 5, 4)),
]]


@dataclasses.dataclass
class Case:
    """One configuration to check: ``build()`` returns (layer, x, args)."""

    layer: str
    config: str
    build: Callable[[], tuple]
    hint: str = ""  # added to a failure that is a non-finite output or gradient


# -- inputs kept away from kinks -------------------------------------------------------------
def normal_input(shape, seed, scale=1.0, offset=0.0):
    """Seeded N(offset, scale^2) values of the given shape."""
    return offset + scale * np.random.default_rng(seed).standard_normal(shape)


def _away_from_zero(shape, seed):
    """|x| in [0.1, 2]: far from ReLU's kink at 0 compared with eps = 1e-6."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)


def _separated(shape, seed):
    """A random permutation of values 0.1 apart: no near-ties for max pooling."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size) - size / 2).reshape(shape) * 0.1


def _distributions(shape, seed):
    """Positive values summing to 1 along the last axis, each at least 0.2 / (0.2 + C - 1) (0.048 for
    C = 5), so log and 1/p stay tame under a nudge of eps."""
    p = np.random.default_rng(seed).uniform(0.2, 1.0, shape)
    return p / p.sum(axis=-1, keepdims=True)


def make_input(kind, shape, seed):
    """A seeded input of one of ``INPUT_KINDS`` (a user's layer, ``--input``):

    normal          N(0, 1)
    away-from-zero  |x| in [0.1, 2], either sign: no kink at 0 within reach of eps (ReLU-like layers)
    positive        uniform in [0.5, 2]: for log, sqrt, 1/x
    probabilities   positive and summing to 1 along the last axis: for a loss on probabilities
    ids:V           integers in [0, V): for a layer whose input is integer ids (an embedding)
    """
    if kind.startswith("ids:"):
        return np.random.default_rng(seed).integers(0, int(kind[4:]), shape)
    if kind == "normal":
        return normal_input(shape, seed)
    if kind == "away-from-zero":
        return _away_from_zero(shape, seed)
    if kind == "positive":
        return np.random.default_rng(seed).uniform(0.5, 2.0, shape)
    return _distributions(shape, seed)


def make_targets(kind, n, c, seed):
    """Seeded targets of one of ``TARGET_KINDS`` for n samples and c classes: (n,) or (n, c)."""
    labels = np.random.default_rng(seed).integers(0, c, n)
    if kind == "integer":
        return labels
    if kind == "one-hot":
        return np.eye(c)[labels]
    return _distributions((n, c), seed + 1)  # soft


def _with_statistics(layer, seed, training=True):
    """A normalization layer with seeded weight, bias and running statistics (not the 1, 0, 0, 1 a new
    one starts with, which would hide a swapped term), in train or eval mode."""
    rng = np.random.default_rng(seed)
    ranges = list(zip(layer.parameters, ((0.5, 1.5), (-1.0, 1.0)))) + list(zip(layer.buffers, ((-0.5, 0.5), (0.5, 2.0))))
    for array, (low, high) in ranges:  # weight, bias; running mean, running variance (positive)
        array[...] = rng.uniform(low, high, array.shape)
    return layer.train(training)


def builtin_cases() -> list[Case]:
    """Every built-in layer in the configurations the issue asks for (and a few more)."""
    n = nnscratch
    cases = [
        Case("Linear", "with bias, 5 -> 3, batch 4", lambda: (n.Linear(5, 3, rng=1), normal_input((4, 5), 1), ())),
        Case("Linear", "no bias, 6 -> 2, batch 3", lambda: (
            n.Linear(6, 2, bias=False, rng=2), normal_input((3, 6), 2), ())),
    ]
    for i, (config, c_in, c_out, k, s, p, bias, shape) in enumerate(CONV_CONFIGS):
        cases.append(Case("Conv2D", config, lambda c_in=c_in, c_out=c_out, k=k, s=s, p=p, bias=bias, shape=shape, i=i: (
            n.Conv2D(c_in, c_out, k, stride=s, padding=p, bias=bias, rng=10 + i), normal_input(shape, 10 + i), ())))
    for i, (config, k, s, shape) in enumerate(MAXPOOL_CONFIGS):
        cases.append(Case("MaxPool2D", config, lambda k=k, s=s, shape=shape, i=i: (
            n.MaxPool2D(k, stride=s), _separated(shape, 30 + i), ())))
    avg_pools = [  # (config, kernel, stride, padding, input shape)
        ("2x2, stride 2 (default)", 2, None, 0, (2, 2, 6, 6)),
        ("3x3, stride 1, padding 1 (zeros counted)", 3, 1, 1, (2, 2, 5, 5)),
        ("3x3, stride 2, padding 1 (overlapping)", 3, 2, 1, (1, 3, 7, 7)),
        ("kernel (2, 3), stride (1, 2), padding (1, 1)", (2, 3), (1, 2), (1, 1), (2, 1, 5, 7)),
    ]
    for i, (config, k, s, p, shape) in enumerate(avg_pools):
        cases.append(Case("AvgPool2D", config, lambda k=k, s=s, p=p, shape=shape, i=i: (
            n.AvgPool2D(k, stride=s, padding=p), normal_input(shape, 34 + i), ())))
    cases.append(Case("GlobalAvgPool2D", "(2, 3, 4, 5) -> (2, 3)", lambda: (
        n.GlobalAvgPool2D(), normal_input((2, 3, 4, 5), 38), ())))

    references = [  # the textbook twins (nnscratch.reference), in the fast layers' harder configurations
        ("reference.Conv2D", "RGB batch 3x3x7x7, 4 filters, stride 2, padding 1", lambda: (
            n.reference.Conv2D(3, 4, 3, stride=2, padding=1, rng=90), normal_input((3, 3, 7, 7), 90), ())),
        ("reference.Conv2D", "kernel (3, 2), stride (2, 1), padding (1, 0), no bias", lambda: (
            n.reference.Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), bias=False, rng=91),
            normal_input((2, 2, 7, 6), 91), ())),
        ("reference.MaxPool2D", "3x3, stride 2 (overlapping)", lambda: (
            n.reference.MaxPool2D(3, stride=2), _separated((1, 3, 7, 7), 92), ())),
        ("reference.MaxPool2D", "kernel (2, 3), stride (1, 2)", lambda: (
            n.reference.MaxPool2D((2, 3), stride=(1, 2)), _separated((2, 1, 5, 7), 93), ())),
    ]
    cases += [Case(layer, config, build) for layer, config, build in references]
    cases += [
        Case("Sigmoid", "N(0, 2^2) inputs", lambda: (n.Sigmoid(), normal_input((4, 5), 40, 2.0), ())),
        Case("Tanh", "N(0, 1) inputs", lambda: (n.Tanh(), normal_input((4, 5), 41), ())),
        Case("ReLU", "inputs with |x| >= 0.1", lambda: (n.ReLU(), _away_from_zero((4, 5), 42), ())),
        Case("LeakyReLU", "slope 0.01, inputs with |x| >= 0.1", lambda: (n.LeakyReLU(), _away_from_zero((4, 5), 48), ())),
        Case("LeakyReLU", "slope 0.3, inputs with |x| >= 0.1", lambda: (n.LeakyReLU(0.3), _away_from_zero((4, 5), 49), ())),
        Case("ELU", "alpha 1, N(0, 2^2) inputs", lambda: (n.ELU(), normal_input((4, 5), 80, 2.0), ())),
        Case("ELU", "alpha 0.5, inputs with |x| >= 0.1", lambda: (n.ELU(0.5), _away_from_zero((4, 5), 81), ())),
        Case("GELU", "N(0, 2^2) inputs", lambda: (n.GELU(), normal_input((4, 5), 82, 2.0), ())),
        Case("SiLU", "N(0, 2^2) inputs", lambda: (n.SiLU(), normal_input((4, 5), 83, 2.0), ())),
        Case("Softplus", "beta 1, threshold 20, N(0, 3^2) inputs", lambda: (n.Softplus(), normal_input((4, 5), 84, 3.0), ())),
        Case("Softplus", "beta 2, threshold 1 (linear above x = 0.5), |x| >= 0.1",
             lambda: (n.Softplus(2.0, 1.0), _away_from_zero((4, 5), 85) + 0.5, ())),
        Case("Softmax", "N(0, 1) inputs", lambda: (n.Softmax(), normal_input((4, 5), 43), ())),
        Case("Softmax", "large inputs, 1e4 + N(0, 1)", lambda: (n.Softmax(), normal_input((4, 5), 44, offset=1e4), ())),
        Case("Softmax", "spread inputs, N(0, 30^2)", lambda: (n.Softmax(), normal_input((4, 5), 45, 30.0), ())),
        Case("Flatten", "(2, 3, 4, 5) -> (2, 60)", lambda: (n.Flatten(), normal_input((2, 3, 4, 5), 46), ())),
        Case("Mean", "(4, 3) -> scalar", lambda: (n.Mean(), normal_input((4, 3), 47), ())),
    ]
    for i, p in enumerate((0.0, 0.2, 0.5, 0.9)):
        cases.append(Case("Dropout", f"p={p}, training (the same mask in every forward)", lambda p=p, i=i: (
            n.Dropout(p, rng=80 + i), normal_input((4, 6), 80 + i), ())))
    cases.append(Case("Dropout", "p=0.5, eval mode (the identity)", lambda: (
        n.Dropout(0.5, rng=84).eval(), normal_input((4, 6), 84), ())))
    batch_norms = [  # (layer, config, make, input shape)
        ("BatchNorm1D", "(N, D) = (5, 4)", lambda affine: n.BatchNorm1D(4, affine=affine), (5, 4)),
        ("BatchNorm1D", "(N, C, L) = (3, 3, 2)", lambda affine: n.BatchNorm1D(3, affine=affine), (3, 3, 2)),
        ("BatchNorm2D", "(N, C, H, W) = (2, 3, 3, 3)", lambda affine: n.BatchNorm2D(3, affine=affine), (2, 3, 3, 3)),
    ]
    batch_norms += [  # the textbook twins (nnscratch.reference)
        ("reference.BatchNorm1D", "(N, C, L) = (3, 3, 2)", lambda affine: n.reference.BatchNorm1D(3, affine=affine),
         (3, 3, 2)),
        ("reference.BatchNorm2D", "(N, C, H, W) = (2, 3, 3, 3)",
         lambda affine: n.reference.BatchNorm2D(3, affine=affine), (2, 3, 3, 3)),
    ]
    for i, (name, shape_text, make, shape) in enumerate(batch_norms):
        for training in (True, False):
            for affine in (True, False):
                config = f"{shape_text}, {'training' if training else 'eval'}{'' if affine else ', affine=False'}"
                seed = 90 + 4 * i + 2 * training + affine
                cases.append(Case(name, config, lambda make=make, shape=shape, training=training, affine=affine, seed=seed: (
                    _with_statistics(make(affine), seed, training), normal_input(shape, seed, 1.5, 0.5), ())))
    layer_norms = [  # (config, normalized_shape, affine, input shape)
        ("over the last axis, (4, 6)", 6, True, (4, 6)),
        ("over the last axis, no affine", 6, False, (4, 6)),
        ("over the last two axes, (2, 3, 3, 4)", (3, 4), True, (2, 3, 3, 4)),
        ("over the last two axes, no affine", (3, 4), False, (2, 3, 4)),
    ]
    for i, (config, normalized, affine, shape) in enumerate(layer_norms):
        cases.append(Case("LayerNorm", config, lambda normalized=normalized, affine=affine, shape=shape, i=i: (
            _with_statistics(n.LayerNorm(normalized, elementwise_affine=affine), 110 + i),
            normal_input(shape, 110 + i, 2.0, 1.0), ())))
    for i, kind in enumerate(TARGET_KINDS):
        cases.append(Case("CrossEntropy", f"{kind} targets", lambda kind=kind, i=i: (
            n.CrossEntropy(), _distributions((4, 5), 50 + i), (make_targets(kind, 4, 5, 50 + i),))))
    for i, kind in enumerate(TARGET_KINDS):
        cases.append(Case("SoftmaxCrossEntropy", f"{kind} targets", lambda kind=kind, i=i: (
            n.SoftmaxCrossEntropy(), normal_input((4, 5), 60 + i, 3.0), (make_targets(kind, 4, 5, 60 + i),))))
    cases.append(Case("SoftmaxCrossEntropy", "large logits N(0, 1e3^2), integer targets", lambda: (
        n.SoftmaxCrossEntropy(), normal_input((4, 5), 63, 1e3), (make_targets("integer", 4, 5, 63),))))
    cases += [
        Case("MeanSquaredError", "(4, 5), N(0, 1) targets", lambda: (
            n.MeanSquaredError(), normal_input((4, 5), 86), (normal_input((4, 5), 87),))),
        Case("MeanSquaredError", "(3, 2, 4), N(0, 1) targets", lambda: (
            n.MeanSquaredError(), normal_input((3, 2, 4), 88), (normal_input((3, 2, 4), 89),))),
        Case("BinaryCrossEntropy", "probabilities in [0.1, 0.9], 0/1 targets", lambda: (
            n.BinaryCrossEntropy(), np.random.default_rng(90).uniform(0.1, 0.9, (4, 5)),
            (np.random.default_rng(91).integers(0, 2, (4, 5)).astype(float),))),
        Case("BinaryCrossEntropy", "probabilities in [0.1, 0.9], soft targets", lambda: (
            n.BinaryCrossEntropy(), np.random.default_rng(92).uniform(0.1, 0.9, (4, 5)),
            (np.random.default_rng(93).uniform(0, 1, (4, 5)),))),
        Case("SigmoidBinaryCrossEntropy", "logits N(0, 3^2), soft targets", lambda: (
            n.SigmoidBinaryCrossEntropy(), normal_input((4, 5), 94, 3.0), (np.random.default_rng(95).uniform(0, 1, (4, 5)),))),
        Case("SigmoidBinaryCrossEntropy", "large logits N(0, 1e3^2), 0/1 targets", lambda: (
            n.SigmoidBinaryCrossEntropy(), normal_input((4, 5), 96, 1e3),
            (np.random.default_rng(97).integers(0, 2, (4, 5)).astype(float),))),
        # scores 0.37 apart with margins 1 and 0.25: no term within eps of its kink
        Case("Hinge", "margin 1, integer targets", lambda: (
            n.Hinge(), _separated((4, 5), 98) * 3.7, (make_targets("integer", 4, 5, 98),))),
        Case("Hinge", "margin 0.25, integer targets", lambda: (
            n.Hinge(0.25), _separated((4, 5), 99) * 3.7, (make_targets("integer", 4, 5, 99),))),
        Case("Sequential", "Linear-Tanh-Linear-SoftmaxCE-Mean, integer targets", lambda: (
            n.Sequential(n.Linear(6, 5, rng=70), n.Tanh(), n.Linear(5, 3, rng=71), n.SoftmaxCrossEntropy(), n.Mean()),
            normal_input((4, 6), 70), (make_targets("integer", 4, 3, 70),))),
        Case("Sequential", "Linear-Softmax-CrossEntropy-Mean, soft targets", lambda: (
            n.Sequential(n.Linear(5, 4, rng=72), n.Softmax(), n.CrossEntropy(), n.Mean()),
            normal_input((3, 5), 72), (make_targets("soft", 3, 4, 72),))),
        Case("Residual", "x + Linear-Tanh-Linear(x), 5 -> 3 -> 5", lambda: (
            n.Residual(n.Linear(5, 3, rng=100), n.Tanh(), n.Linear(3, 5, rng=101)), normal_input((4, 5), 100), ())),
        Case("Residual", "x + Conv2D-Tanh-Conv2D(x), 3x3 padding 1, 2 channels", lambda: (
            n.Residual(n.Conv2D(2, 2, 3, padding=1, rng=102), n.Tanh(), n.Conv2D(2, 2, 3, padding=1, rng=103)),
            normal_input((2, 2, 4, 4), 102), ())),
        Case("Residual", "nested: Linear, Residual(Linear-GELU-Linear), SiLU", lambda: (
            n.Residual(n.Linear(4, 4, rng=104), n.Residual(n.Linear(4, 3, rng=105), n.GELU(), n.Linear(3, 4, rng=106)),
                       n.SiLU()), normal_input((3, 4), 104), ())),
        Case("Sequential", "Conv2D-Sigmoid-Flatten-Linear-SoftmaxCE-Mean, one-hot", lambda: (
            n.Sequential(n.Conv2D(2, 3, 3, padding=1, rng=74), n.Sigmoid(), n.Flatten(), n.Linear(48, 4, rng=75),
                         n.SoftmaxCrossEntropy(), n.Mean()),
            normal_input((2, 2, 4, 4), 74), (make_targets("one-hot", 2, 4, 74),))),
    ]
    for training in (True, False):
        mode = "training" if training else "eval"
        cases.append(Case("Sequential", f"Conv2D-BatchNorm2D-ReLU-..-BatchNorm1D-Tanh-Dropout-LayerNorm-..-Mean, {mode}",
                          lambda training=training: (
            n.Sequential(n.Conv2D(2, 3, 3, padding=1, rng=76), _with_statistics(n.BatchNorm2D(3), 76), n.ReLU(),
                         n.Flatten(), n.Linear(48, 6, rng=77), _with_statistics(n.BatchNorm1D(6), 77), n.Tanh(),
                         n.Dropout(0.3, rng=78), _with_statistics(n.LayerNorm(6), 78), n.Linear(6, 4, rng=79),
                         n.SoftmaxCrossEntropy(), n.Mean()).train(training),
            _away_from_zero((3, 2, 4, 4), 76), (make_targets("integer", 3, 4, 76),))))
    return cases + sequence_cases() + recurrent_cases() + attention_cases()


# -- sequences (issue 22): positions, the layers of a Transformer on (N, T, D), losses over tokens ---------
def _token_targets(n, t, v, seed, ignored=((0, 0), (1, 2))):
    """Seeded labels (n, t) in [0, v), with the positions ``ignored`` set to -100 (padding)."""
    labels = np.random.default_rng(seed).integers(0, v, (n, t))
    for index in ignored:
        labels[index] = -100
    return labels


def sequence_cases() -> list[Case]:
    """The sequence layers, and the layers a sequence model stacks checked on (N, T, D)."""
    n = nnscratch
    return [
        Case("Embedding", "ids (N, T) = (3, 4) of 6, embedding_dim 3 (the ids skipped: no gradient)", lambda: (
            n.Embedding(6, 3, rng=119), make_input("ids:6", (3, 4), 119), ())),
        Case("Embedding", "padding_idx 0, float64, ids (2, 5) of 5 without padding (its row's gradient is 0 by rule)",
             lambda: (n.Embedding(5, 4, padding_idx=0, dtype=np.float64, rng=118),
                      1 + make_input("ids:4", (2, 5), 118), ())),
        Case("Sequential", "Embedding-PositionalEmbedding-LayerNorm-Linear-SoftmaxCE-Mean, ids (2, 4), one ignored",
             lambda: (n.Sequential(n.Embedding(7, 4, rng=117), n.PositionalEmbedding(4, 4, rng=117),
                                   _with_statistics(n.LayerNorm(4), 117), n.Linear(4, 7, rng=117),
                                   n.SoftmaxCrossEntropy(), n.Mean()),
                      make_input("ids:7", (2, 4), 117), (_token_targets(2, 4, 7, 117, ignored=((1, 3),)),))),
        Case("PositionalEmbedding", "(N, T, D) = (2, 4, 3), max_len 5 (one row unused)", lambda: (
            n.PositionalEmbedding(5, 3, rng=120), normal_input((2, 4, 3), 120), ())),
        Case("SinusoidalPositionalEncoding", "(N, T, D) = (2, 5, 6)", lambda: (
            n.SinusoidalPositionalEncoding(6), normal_input((2, 5, 6), 121), ())),
        Case("LayerNorm", "on a sequence (N, T, D) = (2, 3, 4)", lambda: (
            _with_statistics(n.LayerNorm(4), 122), normal_input((2, 3, 4), 122, 2.0, 1.0), ())),
        Case("GELU", "on a sequence (N, T, D) = (2, 3, 4)", lambda: (n.GELU(), normal_input((2, 3, 4), 123, 2.0), ())),
        Case("Softmax", "on a sequence (N, T, D) = (2, 3, 4)", lambda: (n.Softmax(), normal_input((2, 3, 4), 124), ())),
        Case("SoftmaxCrossEntropy", "logits (N, T, V) = (2, 3, 5), two tokens ignored (-100)", lambda: (
            n.SoftmaxCrossEntropy(), normal_input((2, 3, 5), 125, 3.0), (_token_targets(2, 3, 5, 125),))),
        Case("CrossEntropy", "probabilities (N, T, V) = (2, 3, 5), two tokens ignored (-100)", lambda: (
            n.CrossEntropy(), _distributions((2, 3, 5), 126), (_token_targets(2, 3, 5, 126),))),
        Case("Sequential", "Linear-SoftmaxCE-Mean over tokens (2, 3, 4) -> (2, 3, 5), two ignored", lambda: (
            n.Sequential(n.Linear(4, 5, rng=127), n.SoftmaxCrossEntropy(), n.Mean()),
            normal_input((2, 3, 4), 127), (_token_targets(2, 3, 5, 127),))),
        Case("Sequential", "PositionalEmbedding-LayerNorm-Linear-GELU-Linear-SoftmaxCE(ignore_index=0)-Mean",
             lambda: (n.Sequential(n.PositionalEmbedding(4, 3, rng=128), _with_statistics(n.LayerNorm(3), 128),
                                   n.Linear(3, 6, rng=129), n.GELU(), n.Linear(6, 4, rng=130),
                                   n.SoftmaxCrossEntropy(ignore_index=0), n.Mean()),
                      normal_input((2, 4, 3), 128), (_token_targets(2, 4, 4, 128, ignored=()),))),
    ]


# -- recurrent layers (issue 22) -------------------------------------------------------------------
class StartingFrom:
    """A recurrent layer run from a given initial state, which the check sees as parameters after the
    layer's own, so that it checks dL/dh0 (and dL/dc0) too. ``stateful``: the state is set as the one
    the layer carries (``reset_state(state)``) before every forward, instead of passed as
    ``initial_state``."""

    def __init__(self, layer, state: tuple, stateful: bool = False):
        self.layer, self.state, self.stateful = layer, list(state), stateful
        self.name = layer.name  # what the check's messages call it

    @property
    def parameters(self) -> list:
        return self.layer.parameters + self.state

    @property
    def parameters_deltas(self) -> list:
        delta = self.layer.initial_state_delta
        return self.layer.parameters_deltas + list(delta if isinstance(delta, tuple) else (delta,))

    def forward(self, x, *args):
        state = tuple(self.state) if len(self.state) == 2 else self.state[0]
        if self.stateful:
            self.layer.reset_state(state)
            return self.layer.forward(x)
        return self.layer.forward(x, initial_state=state)

    def backward(self, delta):
        return self.layer.backward(delta)


def recurrent_cases() -> list[Case]:
    """RNN (tanh, relu), LSTM and GRU, fast and textbook: from a given initial state (checked as the
    last parameters), as a stateful layer's carried state, and from zeros in eval mode."""
    cells = [("RNN", {}, "tanh, "), ("RNN", {"nonlinearity": "relu"}, "relu, "), ("LSTM", {}, ""), ("GRU", {}, "")]
    cases = []
    for seed, (kind, prefix, (cell, extra, label), mode) in enumerate(
            (kind, prefix, cell, mode) for kind, prefix in ((nnscratch, ""), (nnscratch.reference, "reference."))
            for cell in cells for mode in (("given", "stateful", "eval") if kind is nnscratch else ("given",))):
        names = "h0 and c0 as parameters 4 and 5" if cell == "LSTM" else "h0 as parameter 4"
        config = {"given": f"{label}3 -> 4, batch 3, 5 steps, {names}",
                  "stateful": f"{label}stateful, the carried {names}",
                  "eval": f"{label}eval mode, from zeros"}[mode]

        def build(kind=kind, cell=cell, extra=extra, mode=mode, seed=200 + seed):
            layer = getattr(kind, cell)(3, 4, stateful=mode == "stateful", rng=seed, **extra)
            x = normal_input((3, 5, 3), seed)
            if mode == "eval":
                return layer.eval(), x, ()
            state = tuple(normal_input((3, 4), seed + 1 + i, 0.7) for i in range(1 + (cell == "LSTM")))
            return StartingFrom(layer, state, stateful=mode == "stateful"), x, ()

        cases.append(Case(prefix + cell, config, build))
    return cases


# -- attention and the Transformer block (issue 22) ------------------------------------------------
class KeyPaddingMasked:
    """A ``MultiHeadAttention`` run with a fixed ``key_padding_mask`` (keyword-only in the layer, and
    ``sanity_check`` passes positional arguments only); the layer's parameters are its own."""

    def __init__(self, layer, key_padding_mask):
        self.layer, self.key_padding_mask = layer, key_padding_mask
        self.parameters, self.parameters_deltas = layer.parameters, layer.parameters_deltas

    @property
    def name(self) -> str:
        return self.layer.name

    def forward(self, x, *args):
        return self.layer.forward(x, key_padding_mask=self.key_padding_mask)

    def backward(self, delta):
        return self.layer.backward(delta)


def _perturbed(layer, seed, scale=0.5):
    """Every parameter (biases included, which start at 0) drawn from N(0, scale^2), seeded."""
    rng = np.random.default_rng(seed)
    for p in layer.parameters:
        p[...] = rng.normal(0.0, scale, p.shape)
    return layer


# (sequence 0: its last two keys padded; sequence 1: its first two, so with causality its queries
# 0 and 1 see no key at all, and their output is the bias)
_PADDING = np.array([[False, False, False, True, True], [True, True, False, False, False]])


def attention_cases() -> list[Case]:
    """MultiHeadAttention (both levels) and TransformerBlock: causal and not, with a key padding mask
    (rows that see no key included), without biases, dropout in training and in eval mode."""
    n = nnscratch
    attention = [  # (config, causal, bias, dropout, training, masked)
        ("E=6, 2 heads, (2, 5, 6)", False, True, 0.0, True, False),
        ("causal, 3 heads", True, True, 0.0, True, False),
        ("no bias, causal", True, False, 0.0, True, False),
        ("key padding mask", False, True, 0.0, True, True),
        ("causal + key padding mask (queries that see no key)", True, True, 0.0, True, True),
        ("dropout 0.3, training (the same mask in every forward)", True, True, 0.3, True, False),
        ("dropout 0.3, eval mode", True, True, 0.3, False, True),
    ]
    cases = []
    for i, (config, causal, bias, dropout, training, masked) in enumerate(attention):
        heads = 3 if "3 heads" in config else 2

        def build(cls, causal=causal, bias=bias, dropout=dropout, training=training, masked=masked, heads=heads, i=i):
            layer = _perturbed(cls(6, heads, causal=causal, dropout=dropout, bias=bias, rng=120 + i), 120 + i)
            layer.train(training)
            return (KeyPaddingMasked(layer, _PADDING) if masked else layer), normal_input((2, 5, 6), 120 + i), ()

        cases.append(Case("MultiHeadAttention", config, lambda build=build: build(n.MultiHeadAttention)))
        if masked or dropout:
            cases.append(Case("reference.MultiHeadAttention", config,
                              lambda build=build: build(n.reference.MultiHeadAttention)))
    blocks = [  # (config, make, training)
        ("dim 8, 2 heads, causal, (2, 5, 8)", lambda: n.TransformerBlock(8, 2, rng=130), True),
        ("not causal, mlp_ratio 2", lambda: n.TransformerBlock(8, 4, mlp_ratio=2, causal=False, rng=131), True),
        ("dropout 0.2, training", lambda: n.TransformerBlock(8, 2, dropout=0.2, rng=132), True),
        ("dropout 0.2, eval mode", lambda: n.TransformerBlock(8, 2, dropout=0.2, rng=133), False),
    ]
    for i, (config, make, training) in enumerate(blocks):
        cases.append(Case("TransformerBlock", config, lambda make=make, training=training, i=i: (
            _perturbed(make(), 130 + i, 0.3).train(training), normal_input((2, 5, 8), 130 + i), ())))
    return cases
