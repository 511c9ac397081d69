"""Losses: CrossEntropy on probabilities, the fused SoftmaxCrossEntropy on logits, MeanSquaredError,
BinaryCrossEntropy and its fused SigmoidBinaryCrossEntropy, the multiclass Hinge, and Mean.

The per-sample losses return one value per example, shape (N,); ``Mean`` reduces them to the scalar
that training minimises. Keeping the two apart lets a user weight, sum or inspect the per-sample
values, and is the classic computation-graph recipe: ... -> Softmax -> CrossEntropy -> Mean.

Targets come in two kinds, accepted by both cross-entropies:
- integer class labels, shape (N,), each in [0, C);
- one-hot or soft distributions, shape (N, C), float.
Hinge takes integer labels only; MeanSquaredError and the binary cross-entropies take targets of
the predictions' own shape (N, ...), and average over every axis but the batch axis, so that
``Sequential(Loss(), Mean())`` is PyTorch's default mean reduction.
"""

from .classification import CrossEntropy, Hinge, SoftmaxCrossEntropy
from .elementwise import BinaryCrossEntropy, MeanSquaredError, SigmoidBinaryCrossEntropy
from .mean import Mean

__all__ = ["CrossEntropy", "SoftmaxCrossEntropy", "Hinge", "MeanSquaredError", "BinaryCrossEntropy",
           "SigmoidBinaryCrossEntropy", "Mean"]
