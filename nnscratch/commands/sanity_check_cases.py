"""What ``nnscratch sanity-check`` checks the built-in layers on: each configuration as a ``Case``.

This module holds the layers of the first half of the course (Linear, the convolution and pooling
layers with their one table of configurations, the activations, losses, normalization, Dropout and
the containers); ``sanity_check_sequences`` holds the sequence layers. The inputs and targets come
from ``sanity_check_inputs``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import nnscratch

from .sanity_check_inputs import (TARGET_KINDS, Case, away_from_zero, distributions, make_targets, normal_input, separated,
                                  with_statistics)
from .sanity_check_sequences import attention_cases, recurrent_cases, sequence_cases

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
# (tests/helpers/layer_configs.py: reference layers against the loop twins, fast layers against reference).
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
            n.MaxPool2D(k, stride=s), separated(shape, 30 + i), ())))
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
            n.reference.MaxPool2D(3, stride=2), separated((1, 3, 7, 7), 92), ())),
        ("reference.MaxPool2D", "kernel (2, 3), stride (1, 2)", lambda: (
            n.reference.MaxPool2D((2, 3), stride=(1, 2)), separated((2, 1, 5, 7), 93), ())),
    ]
    cases += [Case(layer, config, build) for layer, config, build in references]
    cases += [
        Case("Sigmoid", "N(0, 2^2) inputs", lambda: (n.Sigmoid(), normal_input((4, 5), 40, 2.0), ())),
        Case("Tanh", "N(0, 1) inputs", lambda: (n.Tanh(), normal_input((4, 5), 41), ())),
        Case("ReLU", "inputs with |x| >= 0.1", lambda: (n.ReLU(), away_from_zero((4, 5), 42), ())),
        Case("LeakyReLU", "slope 0.01, inputs with |x| >= 0.1", lambda: (n.LeakyReLU(), away_from_zero((4, 5), 48), ())),
        Case("LeakyReLU", "slope 0.3, inputs with |x| >= 0.1", lambda: (n.LeakyReLU(0.3), away_from_zero((4, 5), 49), ())),
        Case("ELU", "alpha 1, N(0, 2^2) inputs", lambda: (n.ELU(), normal_input((4, 5), 80, 2.0), ())),
        Case("ELU", "alpha 0.5, inputs with |x| >= 0.1", lambda: (n.ELU(0.5), away_from_zero((4, 5), 81), ())),
        Case("GELU", "N(0, 2^2) inputs", lambda: (n.GELU(), normal_input((4, 5), 82, 2.0), ())),
        Case("SiLU", "N(0, 2^2) inputs", lambda: (n.SiLU(), normal_input((4, 5), 83, 2.0), ())),
        Case("Softplus", "beta 1, threshold 20, N(0, 3^2) inputs", lambda: (n.Softplus(), normal_input((4, 5), 84, 3.0), ())),
        Case("Softplus", "beta 2, threshold 1 (linear above x = 0.5), |x| >= 0.1",
             lambda: (n.Softplus(2.0, 1.0), away_from_zero((4, 5), 85) + 0.5, ())),
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
                    with_statistics(make(affine), seed, training), normal_input(shape, seed, 1.5, 0.5), ())))
    layer_norms = [  # (config, normalized_shape, affine, input shape)
        ("over the last axis, (4, 6)", 6, True, (4, 6)),
        ("over the last axis, no affine", 6, False, (4, 6)),
        ("over the last two axes, (2, 3, 3, 4)", (3, 4), True, (2, 3, 3, 4)),
        ("over the last two axes, no affine", (3, 4), False, (2, 3, 4)),
    ]
    for i, (config, normalized, affine, shape) in enumerate(layer_norms):
        cases.append(Case("LayerNorm", config, lambda normalized=normalized, affine=affine, shape=shape, i=i: (
            with_statistics(n.LayerNorm(normalized, elementwise_affine=affine), 110 + i),
            normal_input(shape, 110 + i, 2.0, 1.0), ())))
    for i, kind in enumerate(TARGET_KINDS):
        cases.append(Case("CrossEntropy", f"{kind} targets", lambda kind=kind, i=i: (
            n.CrossEntropy(), distributions((4, 5), 50 + i), (make_targets(kind, 4, 5, 50 + i),))))
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
            n.Hinge(), separated((4, 5), 98) * 3.7, (make_targets("integer", 4, 5, 98),))),
        Case("Hinge", "margin 0.25, integer targets", lambda: (
            n.Hinge(0.25), separated((4, 5), 99) * 3.7, (make_targets("integer", 4, 5, 99),))),
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
            n.Sequential(n.Conv2D(2, 3, 3, padding=1, rng=76), with_statistics(n.BatchNorm2D(3), 76), n.ReLU(),
                         n.Flatten(), n.Linear(48, 6, rng=77), with_statistics(n.BatchNorm1D(6), 77), n.Tanh(),
                         n.Dropout(0.3, rng=78), with_statistics(n.LayerNorm(6), 78), n.Linear(6, 4, rng=79),
                         n.SoftmaxCrossEntropy(), n.Mean()).train(training),
            away_from_zero((3, 2, 4, 4), 76), (make_targets("integer", 3, 4, 76),))))
    return cases + sequence_cases() + recurrent_cases() + attention_cases()
