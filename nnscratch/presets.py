"""The MNIST presets of ``train-mnist``: network builders and their default training options.

Every preset network is one ``Sequential`` ending in its loss and ``Mean``, so ``net[:-2]`` is the
model (scores) and ``net[-2:]`` the loss, which is how ``fit`` takes them:

- ``softmax``: Linear(784, 10) -> Softmax -> CrossEntropy -> Mean, one-hot targets, plain SGD
  lr 0.5, batch 100, 2 epochs: the classic computation-graph recipe (91.4-92.0%).
- ``mlp``: 784 -> 512 -> 256 -> 10 with ReLU, SoftmaxCrossEntropy; Adam lr 3e-3 decayed by a
  per-batch cosine, batch 128, 6 epochs (98.4-98.7% for seeds 0-2; 97.3-97.5% for a 1-epoch run).
- ``cnn``: a 5x5 convolution to 16 channels and a 3x3 one to 64 (no bias), each followed by 2x2
  max pooling, BatchNorm2D and ReLU, then Linear 3136 -> 128 (no bias) -> BatchNorm1D -> ReLU ->
  Dropout(0.25) -> 10; Adam lr 2e-3 with the cosine, batch 64, 10 epochs, each training image
  shifted by up to 2 pixels (see the README for seeds 0-2; under 4 minutes on the project's
  2-core machine).

The ranges are MNIST test accuracy over seeds 0, 1 and 2 (the default seed is 0); see the README.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layers import (
    BatchNorm1D, BatchNorm2D, Conv2D, CrossEntropy, Dropout, Flatten, Linear, MaxPool2D, Mean, ReLU, Softmax,
    SoftmaxCrossEntropy,
)
from .seeding import get_rng
from . import schedules
from .optim import SGD, Adagrad, Adam, AdamW, RMSprop
from .containers import Sequential

OPTIMIZER_CLASSES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
OPTIMIZERS = tuple(OPTIMIZER_CLASSES)
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")  # the ones with a momentum option (Adam's beta1 is its own)
# name -> what it does with the base learning rate lr over the run's E epochs (train-mnist --help)
SCHEDULES = {
    "constant": "lr throughout",
    "step": "lr, times 0.1 after each third of the epochs",
    "exponential": "lr times a constant factor per epoch, down to lr/100 at the end",
    "cosine": "cosine decay per batch from lr towards 0 at the last epoch",
    "warmup-cosine": "linear warmup from 0 over min(1, E/10) epochs, then the cosine decay",
    "one-cycle": "PyTorch's OneCycleLR shape: from lr/25 up to lr over 30% of the epochs, then down to lr/25e4",
}


@dataclass(frozen=True)
class Preset:
    """A network builder and the default options it was tuned with.

    ``input_shape`` is one sample's shape as the network takes it (the batch axis excluded);
    ``one_hot`` says whether the targets are one-hot rows (True) or integer labels (False).
    """

    name: str
    build: object  # callable(rng=None) -> Sequential ending in the loss and Mean
    input_shape: tuple
    one_hot: bool
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    epochs: int
    batch_size: int
    schedule: str
    shift: int  # augmentation: random translations of up to this many pixels (0: none)
    summary: str  # the architecture in one line, for --help


def softmax_net(rng=None) -> Sequential:
    """Multinomial logistic regression: y = softmax(x W + b), L = mean(-sum t log y).

    Shape:
        x: (N, 784); targets: (N, 10) one-hot
    """
    rng = get_rng(rng)
    return Sequential(Linear(784, 10, rng=rng), Softmax(), CrossEntropy(), Mean())


def mlp_net(rng=None, hidden=(512, 256)) -> Sequential:
    """A multilayer perceptron: Linear -> ReLU for each hidden width, then Linear to 10 logits.

    Shape:
        x: (N, 784); targets: (N,) labels
    """
    rng = get_rng(rng)
    layers, width = [], 784
    for size in hidden:
        layers += [Linear(width, size, rng=rng), ReLU()]
        width = size
    layers += [Linear(width, 10, rng=rng), SoftmaxCrossEntropy(), Mean()]
    return Sequential(*layers)


def cnn_net(rng=None) -> Sequential:
    """A small LeNet-style network with batch normalization:
    Conv 5x5 -> MaxPool 2 -> BatchNorm2D -> ReLU -> Conv 3x3 -> MaxPool 2 -> BatchNorm2D -> ReLU ->
    Linear -> BatchNorm1D -> ReLU -> Dropout(0.25) -> Linear.

    Padding keeps each convolution's output the size of its input, and each pooling halves the
    side: (1, 28, 28) -> (16, 14, 14) -> (64, 7, 7) -> 3136 -> 128 -> 10.

    Two choices make it fast on a CPU without costing accuracy:

    - Pooling comes straight after each convolution, before BatchNorm and ReLU, so they work on a
      quarter of the values. Max pooling commutes with ReLU (both keep the larger of two values
      larger), so only BatchNorm sees something different: the statistics of the pooled maxima.
    - The second convolution is 3x3 with 64 channels rather than 5x5 with 32: twice the channels
      for 0.72x the multiply-adds (16*9*64 against 16*25*32 per position).

    The layers in front of a BatchNorm have no bias: the normalization subtracts the batch mean,
    which would cancel it, and BatchNorm's own beta takes its place.

    Shape:
        x: (N, 1, 28, 28); targets: (N,) labels
    """
    rng = get_rng(rng)
    return Sequential(
        Conv2D(1, 16, 5, padding=2, bias=False, rng=rng), MaxPool2D(2), BatchNorm2D(16), ReLU(),
        Conv2D(16, 64, 3, padding=1, bias=False, rng=rng), MaxPool2D(2), BatchNorm2D(64), ReLU(),
        Flatten(), Linear(64 * 7 * 7, 128, bias=False, rng=rng), BatchNorm1D(128), ReLU(),
        Dropout(0.25, rng=rng), Linear(128, 10, rng=rng),
        SoftmaxCrossEntropy(), Mean(),
    )  # fmt: skip


PRESETS = {
    "softmax": Preset(
        name="softmax", build=softmax_net, input_shape=(784,), one_hot=True,
        optimizer="sgd", lr=0.5, momentum=0.0, weight_decay=0.0, epochs=2, batch_size=100,
        schedule="constant", shift=0,
        summary="Linear(784, 10) -> Softmax -> CrossEntropy -> Mean, one-hot targets",
    ),
    "mlp": Preset(
        name="mlp", build=mlp_net, input_shape=(784,), one_hot=False,
        optimizer="adam", lr=3e-3, momentum=0.0, weight_decay=0.0, epochs=6, batch_size=128,
        schedule="cosine", shift=0,
        summary="784 -> 512 -> 256 -> 10, ReLU, SoftmaxCrossEntropy",
    ),
    "cnn": Preset(
        name="cnn", build=cnn_net, input_shape=(1, 28, 28), one_hot=False,
        optimizer="adam", lr=2e-3, momentum=0.0, weight_decay=0.0, epochs=10, batch_size=64,
        schedule="cosine", shift=2,
        summary="Conv5x5(16) -> pool -> BN -> Conv3x3(64) -> pool -> BN -> 128 -> BN -> dropout 0.25 -> 10, "
                "ReLU, SoftmaxCrossEntropy",
    ),
}  # fmt: skip


def random_shift(x, rng, max_shift: int = 2):
    """Translate each image by its own random (dy, dx) in [-max_shift, max_shift]^2, zero-filled.

    A cheap data augmentation for digits: out[n, c, i, j] = x[n, c, i - dy_n, j - dx_n], or 0 where
    that falls outside the image. Done as one padded copy and one gather, no loop over images.

    Shape:
        x: (N, C, H, W) -> (N, C, H, W), same dtype
    """
    n, channels, height, width = x.shape
    s = max_shift
    padded = np.zeros((n, channels, height + 2 * s, width + 2 * s), dtype=x.dtype)
    padded[:, :, s : s + height, s : s + width] = x
    top = rng.integers(0, 2 * s + 1, size=n)  # where each crop starts in the padded image
    left = rng.integers(0, 2 * s + 1, size=n)
    rows = (top[:, None] + np.arange(height))[:, None, :, None]  # (N, 1, H, 1)
    cols = (left[:, None] + np.arange(width))[:, None, None, :]  # (N, 1, 1, W)
    return padded[np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None], rows, cols]


def make_augment(shift: int):
    """``augment(x_batch, rng)`` for ``fit``: ``random_shift`` by up to ``shift`` pixels of MNIST
    images, flat (N, 784) or (N, 1, 28, 28); None when ``shift`` is 0.
    """
    if not shift:
        return None

    def augment(x, rng):
        return random_shift(x.reshape(len(x), 1, 28, 28), rng, shift).reshape(x.shape)

    return augment


def make_optimizer(name: str, source, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    """The optimizer called ``name`` (one of ``OPTIMIZERS``) on ``source``, with lr and weight decay
    (L2 for sgd, adam, rmsprop and adagrad; decoupled for adamw) and the other settings at their
    defaults.

    ``momentum`` applies to sgd and rmsprop only (Adam's beta1 plays that part): non-zero with
    another optimizer is a ValueError rather than silently ignored.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}, expected one of {', '.join(OPTIMIZERS)}")
    if momentum and name not in MOMENTUM_OPTIMIZERS:
        raise ValueError(
            f"momentum applies to the {' and '.join(MOMENTUM_OPTIMIZERS)} optimizers only, "
            f"got momentum={momentum:g} with {name}"
        )
    if name in MOMENTUM_OPTIMIZERS:
        return OPTIMIZER_CLASSES[name](source, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return OPTIMIZER_CLASSES[name](source, lr=lr, weight_decay=weight_decay)


def make_schedule(name: str, lr: float, epochs: int):
    """The learning rate as a function of training progress t (epochs done, a float), or None for
    a constant rate: the schedule ``name`` (one of ``SCHEDULES``, which says what each does) from
    ``nnscratch.schedules``, its settings derived from lr and the run's ``epochs``. ``fit`` calls
    it before every batch.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}, expected one of {', '.join(SCHEDULES)}")
    epochs = max(epochs, 1)  # a run of 0 epochs calls no schedule; this keeps the formulas defined
    if name == "constant":
        return None
    if name == "step":
        return schedules.step_decay(lr, step_size=epochs / 3, gamma=0.1)
    if name == "exponential":
        return schedules.exponential(lr, gamma=0.01 ** (1.0 / epochs))
    if name == "cosine":
        return schedules.cosine(lr, epochs)
    if name == "warmup-cosine":
        return schedules.cosine(lr, epochs, warmup=min(1.0, epochs / 10))
    return schedules.one_cycle(lr, epochs)
