"""Small models, one per built-in layer (and a few configurations each), for the hand-off tests:
tests/export/test_onnx_layers.py runs them through ONNX Runtime, tests/export/test_torch.py and
test_from_pytorch.py through PyTorch, both ways.

``CASES``: name -> (build(dtype) -> Sequential with non-trivial weights, one sample's shape). The
shape of a model starting with Embedding is an ``Ids`` (a tuple that also says how many ids there
are): ``sample_input`` draws int64 ids for it.
A layer added to ``nnscratch.export.onnx_layers.CONVERTERS`` or ``nnscratch.export.torch.TO_TORCH``
without a case here fails ``test_every_converted_layer_has_a_case`` in those test modules.
"""

from __future__ import annotations

import numpy as np

import nnscratch as nn


class Scale:
    """A user's layer that neither ONNX nor PyTorch has a converter for: y = 2x."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        return 2 * x

    def backward(self, delta):
        return 2 * delta


class Ids(tuple):
    """One sample's shape of integer ids in [0, count): ``sample_input`` draws int64 ids for it."""

    def __new__(cls, shape, count: int):
        ids = super().__new__(cls, shape)
        ids.count = count
        return ids


def perturb(model, seed: int = 0):
    """Give every parameter (biases included) and buffer (BatchNorm's running statistics, kept
    positive for the variances) values no freshly built layer has; return ``model``."""
    rng = np.random.default_rng(seed)
    for p in model.parameters:
        p[...] = rng.normal(0.0, 0.5, size=p.shape)
    for b in getattr(model, "buffers", []):
        b[...] = rng.uniform(0.5, 2.0, size=b.shape)
    return model


def _built(*makers):
    """build(dtype) -> Sequential of each ``maker(dtype, rng)``, its weights perturbed."""

    def build(dtype=np.float32):
        rng = np.random.default_rng(0)
        return perturb(nn.Sequential(*[make(dtype, rng) for make in makers]))

    return build


def _fresh(cls, *args, **kwargs):
    """A builder of a new ``cls(*args, **kwargs)`` per model (layers hold state: never share one)."""

    def make(dtype, rng):
        recurrent = (nn.RNN, nn.LSTM, nn.GRU, nn.reference.RNN, nn.reference.LSTM, nn.reference.GRU)
        extra = {"dtype": dtype, "rng": rng} if cls in (nn.Linear, nn.Conv2D, nn.reference.Conv2D, nn.Embedding,
                                                       nn.PositionalEmbedding, *recurrent, nn.MultiHeadAttention,
                                                       nn.reference.MultiHeadAttention, nn.TransformerBlock) else {}
        if cls in (nn.BatchNorm1D, nn.BatchNorm2D, nn.LayerNorm, nn.reference.BatchNorm1D, nn.reference.BatchNorm2D):
            extra = {"dtype": dtype}
        return cls(*args, **kwargs, **extra)

    return make


CASES = {
    "Linear": (_built(_fresh(nn.Linear, 5, 4)), (5,)),
    "Linear-no-bias": (_built(_fresh(nn.Linear, 6, 3, bias=False)), (6,)),
    "Conv2D": (_built(_fresh(nn.Conv2D, 2, 3, 3)), (2, 6, 7)),
    "Conv2D-stride-padding": (_built(_fresh(nn.Conv2D, 2, 4, 3, stride=2, padding=1)), (2, 7, 8)),
    "Conv2D-rectangular-no-bias": (
        _built(_fresh(nn.Conv2D, 3, 2, (3, 2), stride=(1, 2), padding=(1, 0), bias=False)), (3, 5, 6)),
    "MaxPool2D": (_built(_fresh(nn.MaxPool2D, 2)), (3, 6, 8)),
    "MaxPool2D-overlapping-odd": (_built(_fresh(nn.MaxPool2D, 3, stride=2)), (2, 7, 9)),
    "MaxPool2D-rectangular": (_built(_fresh(nn.MaxPool2D, (2, 3), stride=(1, 2))), (2, 5, 7)),
    "AvgPool2D": (_built(_fresh(nn.AvgPool2D, 2)), (3, 6, 8)),
    "AvgPool2D-stride-padding-odd": (_built(_fresh(nn.AvgPool2D, 3, stride=2, padding=1)), (2, 7, 9)),
    "AvgPool2D-rectangular": (_built(_fresh(nn.AvgPool2D, (2, 3), stride=(1, 2), padding=(1, 0))), (2, 5, 7)),
    "GlobalAvgPool2D": (_built(_fresh(nn.Conv2D, 2, 4, 3), _fresh(nn.GlobalAvgPool2D), _fresh(nn.Linear, 4, 3)),
                        (2, 6, 5)),
    "BatchNorm1D": (_built(_fresh(nn.Linear, 5, 4), _fresh(nn.BatchNorm1D, 4, momentum=0.3)), (5,)),
    "BatchNorm1D-3d-no-affine": (_built(_fresh(nn.BatchNorm1D, 3, eps=1e-3, affine=False)), (3, 5)),
    "BatchNorm2D": (_built(_fresh(nn.Conv2D, 2, 3, 3, padding=1), _fresh(nn.BatchNorm2D, 3), _fresh(nn.ReLU)),
                    (2, 5, 4)),  # after Conv2D: channel-major memory
    "BatchNorm2D-no-affine": (_built(_fresh(nn.BatchNorm2D, 2, eps=0.1, momentum=0.5, affine=False)), (2, 3, 4)),
    "LayerNorm": (_built(_fresh(nn.Linear, 5, 6), _fresh(nn.LayerNorm, 6)), (5,)),
    "LayerNorm-two-axes-no-affine": (_built(_fresh(nn.LayerNorm, (3, 4), eps=1e-3, elementwise_affine=False)),
                                     (2, 3, 4)),
    "Residual": (_built(_fresh(nn.Linear, 5, 5), lambda dtype, rng: nn.Residual(
        nn.Linear(5, 5, dtype=dtype, rng=rng), nn.Tanh(), nn.Linear(5, 5, dtype=dtype, rng=rng)), _fresh(nn.ReLU)), (5,)),
    "Residual-conv-nested": (
        _built(_fresh(nn.Conv2D, 2, 3, 3, padding=1),
               lambda dtype, rng: nn.Residual(
                   nn.Conv2D(3, 3, 3, padding=1, dtype=dtype, rng=rng), nn.BatchNorm2D(3, dtype=dtype), nn.ReLU(),
                   nn.Residual(nn.Conv2D(3, 3, 1, dtype=dtype, rng=rng))),
               _fresh(nn.GlobalAvgPool2D), _fresh(nn.Linear, 3, 2)),
        (2, 5, 6)),
    "Flatten": (_built(_fresh(nn.Flatten)), (3, 4, 5)),
    "Sigmoid": (_built(_fresh(nn.Sigmoid)), (7,)),
    "Tanh": (_built(_fresh(nn.Tanh)), (2, 3, 4)),
    "ReLU": (_built(_fresh(nn.ReLU)), (2, 5, 3)),
    "LeakyReLU": (_built(_fresh(nn.LeakyReLU, 0.2)), (2, 3, 4)),
    "ELU": (_built(_fresh(nn.ELU, 0.7)), (9,)),
    "GELU": (_built(_fresh(nn.GELU)), (3, 5)),
    "SiLU": (_built(_fresh(nn.SiLU)), (8,)),
    "Softplus": (_built(_fresh(nn.Softplus)), (8,)),
    "Softplus-beta-threshold": (_built(_fresh(nn.Softplus, beta=2.0, threshold=3.0)), (2, 8)),
    "Dropout": (_built(_fresh(nn.Linear, 5, 6), _fresh(nn.Dropout, 0.3), _fresh(nn.Linear, 6, 2)), (5,)),
    "reference-Conv2D": (_built(_fresh(nn.reference.Conv2D, 2, 3, (3, 2), stride=(2, 1), padding=1)), (2, 7, 6)),
    "reference-MaxPool2D": (_built(_fresh(nn.reference.MaxPool2D, 3, stride=2)), (2, 7, 9)),
    "reference-BatchNorm1D": (_built(_fresh(nn.Linear, 5, 4), _fresh(nn.reference.BatchNorm1D, 4, momentum=0.3)), (5,)),
    "reference-BatchNorm2D-no-affine": (
        _built(_fresh(nn.Conv2D, 2, 3, 3, padding=1), _fresh(nn.reference.BatchNorm2D, 3, eps=0.1, affine=False)),
        (2, 5, 4)),
    "Softmax": (_built(_fresh(nn.Softmax)), (6,)),
    "Softmax-last-of-three-axes": (_built(_fresh(nn.Softmax)), (2, 3, 4)),
    "nested-Sequential": (
        _built(_fresh(nn.Conv2D, 1, 2, 3, padding=1), _fresh(nn.ReLU),
               lambda dtype, rng: nn.Sequential(nn.MaxPool2D(2), nn.Flatten(),
                                                nn.Sequential(nn.Linear(18, 4, dtype=dtype, rng=rng), nn.Tanh())),
               _fresh(nn.Linear, 4, 3), _fresh(nn.Softmax)),
        (1, 6, 6)),
    # sequences (N, T, D): ids to vectors, and positions
    "Embedding": (_built(_fresh(nn.Embedding, 9, 4)), Ids((5,), 9)),
    "Embedding-padding-positions": (
        _built(_fresh(nn.Embedding, 9, 4, padding_idx=0), _fresh(nn.PositionalEmbedding, 8, 4),
               _fresh(nn.SinusoidalPositionalEncoding, 4, max_len=8), _fresh(nn.LayerNorm, 4), _fresh(nn.GELU)),
        Ids((6,), 9)),
    "PositionalEmbedding": (_built(_fresh(nn.PositionalEmbedding, 8, 3)), (8, 3)),
    "SinusoidalPositionalEncoding-odd-dim": (_built(_fresh(nn.SinusoidalPositionalEncoding, 5, max_len=9)), (7, 5)),
    # recurrent layers: sequences (N, T, D) to (N, T, H)
    "RNN": (_built(_fresh(nn.RNN, 3, 5)), (6, 3)),
    "RNN-relu-no-bias": (_built(_fresh(nn.RNN, 3, 4, nonlinearity="relu", bias=False)), (5, 3)),
    "LSTM": (_built(_fresh(nn.LSTM, 3, 5)), (6, 3)),
    "LSTM-no-bias-one-step": (_built(_fresh(nn.LSTM, 4, 3, bias=False)), (1, 4)),
    "GRU": (_built(_fresh(nn.GRU, 3, 5)), (6, 3)),
    "GRU-no-bias": (_built(_fresh(nn.GRU, 2, 4, bias=False)), (5, 2)),
    "recurrent-stack": (_built(_fresh(nn.Linear, 3, 4), _fresh(nn.LSTM, 4, 6), _fresh(nn.GRU, 6, 5),
                               _fresh(nn.RNN, 5, 4), _fresh(nn.Linear, 4, 2)), (7, 3)),
    "reference-RNN": (_built(_fresh(nn.reference.RNN, 3, 4, nonlinearity="relu")), (5, 3)),
    "reference-LSTM": (_built(_fresh(nn.reference.LSTM, 3, 4)), (5, 3)),
    "reference-GRU": (_built(_fresh(nn.reference.GRU, 3, 4)), (5, 3)),
    # sequences (N, T, E): attention and the Transformer block
    "MultiHeadAttention": (_built(_fresh(nn.Linear, 5, 8), _fresh(nn.MultiHeadAttention, 8, 2)), (6, 5)),
    "MultiHeadAttention-causal-no-bias": (_built(_fresh(nn.MultiHeadAttention, 6, 3, causal=True, bias=False)), (5, 6)),
    "MultiHeadAttention-dropout": (_built(_fresh(nn.MultiHeadAttention, 4, 1, causal=True, dropout=0.3)), (3, 4)),
    "reference-MultiHeadAttention-causal": (_built(_fresh(nn.reference.MultiHeadAttention, 8, 4, causal=True)), (4, 8)),
    "TransformerBlock": (_built(_fresh(nn.TransformerBlock, 8, 2), _fresh(nn.TransformerBlock, 8, 4)), (5, 8)),
    "TransformerBlock-dropout-not-causal-mlp-ratio-2": (
        _built(_fresh(nn.TransformerBlock, 6, 3, mlp_ratio=2, dropout=0.2, causal=False), _fresh(nn.LayerNorm, 6),
               _fresh(nn.Linear, 6, 3)), (4, 6)),
}  # fmt: skip
# Cases whose training-mode output is random (Dropout's masks): compared in eval mode only.
RANDOM_IN_TRAINING = {"Dropout", "MultiHeadAttention-dropout", "TransformerBlock-dropout-not-causal-mlp-ratio-2"}


def layer_classes(model) -> set:
    """The classes of every layer in ``model``, nested ones included."""
    found = set()
    for layer in model.layers:
        if isinstance(layer, (nn.Sequential, nn.Residual)):
            found |= layer_classes(layer)
        found.add(type(layer))
    return found


def covered_classes() -> set:
    """The layer classes the cases exercise, for the coverage check against the converter tables."""
    covered = set()
    for build, _ in CASES.values():
        covered |= layer_classes(build())
    return covered


def sample_input(input_shape, batch: int, dtype=np.float32, seed: int = 1) -> np.ndarray:
    """N(0, 1) samples, scaled so that Softmax and Sigmoid see large values too; int64 ids for ``Ids``."""
    if isinstance(input_shape, Ids):
        return np.random.default_rng(seed).integers(0, input_shape.count, (batch, *input_shape))
    return (np.random.default_rng(seed).normal(0.0, 2.0, size=(batch, *input_shape))).astype(dtype)


def builtin_inference_layers() -> set:
    """Every built-in layer class a model can hold at inference: nnscratch.layers' and the reference
    twins, the losses excluded (dropped at the end of a model). The containers, which the converters
    open rather than convert, are not layers of nnscratch.layers."""
    from nnscratch import layers, reference
    from nnscratch.inference import LOSS_LAYERS

    classes = {getattr(layers, name) for name in layers.__all__} | {getattr(reference, n) for n in reference.__all__}
    return {cls for cls in classes if cls is not nn.Layer and cls not in LOSS_LAYERS}
