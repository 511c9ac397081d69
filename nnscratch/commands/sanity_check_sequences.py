"""What ``nnscratch sanity-check`` checks the sequence layers on: Embedding and the positions, the
layers of a Transformer on (N, T, D), the losses over tokens, RNN, LSTM and GRU from a given or a
carried state, MultiHeadAttention with its masks, and the Transformer block."""

from __future__ import annotations

import numpy as np

import nnscratch

from .sanity_check_inputs import Case, distributions, make_input, normal_input, with_statistics

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
                                   with_statistics(n.LayerNorm(4), 117), n.Linear(4, 7, rng=117),
                                   n.SoftmaxCrossEntropy(), n.Mean()),
                      make_input("ids:7", (2, 4), 117), (_token_targets(2, 4, 7, 117, ignored=((1, 3),)),))),
        Case("PositionalEmbedding", "(N, T, D) = (2, 4, 3), max_len 5 (one row unused)", lambda: (
            n.PositionalEmbedding(5, 3, rng=120), normal_input((2, 4, 3), 120), ())),
        Case("SinusoidalPositionalEncoding", "(N, T, D) = (2, 5, 6)", lambda: (
            n.SinusoidalPositionalEncoding(6), normal_input((2, 5, 6), 121), ())),
        Case("LayerNorm", "on a sequence (N, T, D) = (2, 3, 4)", lambda: (
            with_statistics(n.LayerNorm(4), 122), normal_input((2, 3, 4), 122, 2.0, 1.0), ())),
        Case("GELU", "on a sequence (N, T, D) = (2, 3, 4)", lambda: (n.GELU(), normal_input((2, 3, 4), 123, 2.0), ())),
        Case("Softmax", "on a sequence (N, T, D) = (2, 3, 4)", lambda: (n.Softmax(), normal_input((2, 3, 4), 124), ())),
        Case("SoftmaxCrossEntropy", "logits (N, T, V) = (2, 3, 5), two tokens ignored (-100)", lambda: (
            n.SoftmaxCrossEntropy(), normal_input((2, 3, 5), 125, 3.0), (_token_targets(2, 3, 5, 125),))),
        Case("CrossEntropy", "probabilities (N, T, V) = (2, 3, 5), two tokens ignored (-100)", lambda: (
            n.CrossEntropy(), distributions((2, 3, 5), 126), (_token_targets(2, 3, 5, 126),))),
        Case("Sequential", "Linear-SoftmaxCE-Mean over tokens (2, 3, 4) -> (2, 3, 5), two ignored", lambda: (
            n.Sequential(n.Linear(4, 5, rng=127), n.SoftmaxCrossEntropy(), n.Mean()),
            normal_input((2, 3, 4), 127), (_token_targets(2, 3, 5, 127),))),
        Case("Sequential", "PositionalEmbedding-LayerNorm-Linear-GELU-Linear-SoftmaxCE(ignore_index=0)-Mean",
             lambda: (n.Sequential(n.PositionalEmbedding(4, 3, rng=128), with_statistics(n.LayerNorm(3), 128),
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
