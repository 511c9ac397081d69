"""The character-level language models of ``train-text``: network builders and their training recipes.

Every preset network is one ``Sequential`` from character ids to ``SoftmaxCrossEntropy`` and
``Mean``, so ``net[:-2]`` is the model (logits over the vocabulary at every position) and
``net[-2:]`` the loss over the tokens not ignored:

- ``transformer``: nanoGPT's CPU configuration of its character-level GPT ("baby GPT" on tiny
  shakespeare): token and learned position embeddings, 4 pre-LayerNorm Transformer blocks, 128
  wide with 4 heads, a final LayerNorm and a linear head; context 64, batch 12, no dropout, 2000
  iterations of AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices only), 100 warmup
  steps then a cosine decay to lr / 10, gradients clipped at norm 1.0. Initialised as GPT-2 (every
  weight N(0, 0.02^2)). It differs from nanoGPT's in two details: its Linear and LayerNorm layers
  have biases (nanoGPT's config turns them off), and the head is not tied to the token embedding.
- ``lstm``: char-rnn's model, two LSTM layers of 128 over sequences of 50 characters, batch 50,
  RMSprop lr 2e-3 (alpha 0.95), gradients clipped at norm 5 (char-rnn clamps each value at 5).
- ``gru``: the same with GRU layers (char-rnn's ``-model gru``).
- ``rnn``: min-char-rnn's: one tanh RNN layer of 100 over sequences of 25 characters, Adagrad
  lr 0.1, gradients clipped at norm 5 (min-char-rnn clips each value at 5); batch 32 instead of 1,
  so that a few minutes see many more characters.

The recurrent presets train on windows drawn at random, each starting from a zero state, as the
transformer's do (one data pipeline for all); generation then carries the state from character to
character. Each preset's run takes a few minutes on a 2-core laptop CPU: see the README's table.

In line mode (``--lines``: each line one example, names for instance), the context is the longest
line and its end marker, and the presets take their ``lines_`` settings: more examples a batch (they
are short) and, for the transformer, twice the rate: on makemore's names, 3000 iterations of batch 64
at 2e-3 reach 2.01 nats per character in about 3 minutes, 3000 of batch 32 at 1e-3 only 2.06.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import schedules
from .containers import Sequential
from .optim import AdamW, Adagrad, RMSprop
from .seeding import get_rng

# GPT-2's initial weights: N(0, 0.02^2), as nanoGPT's _init_weights
INIT_STD = 0.02


@dataclass(frozen=True)
class TextPreset:
    """A network builder and the recipe it was tuned with (the defaults of ``train-text``).

    ``build(vocab_size, block_size, rng)`` returns the network; ``optimizer(net, lr)`` its optimizer;
    ``schedule(lr, iters)`` the learning rate as a function of the step index (0-based).
    """

    name: str
    summary: str  # the architecture and recipe, for --help
    build: object
    optimizer: object
    schedule: object
    lr: float
    batch_size: int
    block_size: int
    iters: int
    eval_interval: int
    max_grad_norm: float
    lines_batch_size: int  # --lines: the batch size, iterations and lr instead of the ones above
    lines_iters: int
    lines_lr: float

    @property
    def recurrent(self) -> bool:
        return self.name != "transformer"


# -- networks ---------------------------------------------------------------------------------------
def gpt(vocab_size, block_size, rng=None, dim=128, num_heads=4, num_layers=4) -> Sequential:
    """nanoGPT's model: x = wte[ids] + wpe[:T]; x = block(x) for each block; logits = head(ln_f(x)).

    Shape:
        ids (N, T) int, T <= block_size -> logits (N, T, vocab_size); the loss takes targets (N, T)
    """
    from .layers import (Embedding, LayerNorm, Linear, Mean, PositionalEmbedding, SoftmaxCrossEntropy,
                         TransformerBlock)

    rng = get_rng(rng)
    tokens = Embedding(vocab_size, dim, rng=rng)
    tokens.weight[...] = rng.normal(0.0, INIT_STD, tokens.weight.shape)
    blocks = [TransformerBlock(dim, num_heads, rng=rng) for _ in range(num_layers)]
    head = Linear(dim, vocab_size, rng=rng)
    head.parameters[0][...] = rng.normal(0.0, INIT_STD, head.parameters[0].shape)
    head.parameters[1][...] = 0.0
    return Sequential(tokens, PositionalEmbedding(block_size, dim, rng=rng), *blocks, LayerNorm(dim), head,
                      SoftmaxCrossEntropy(), Mean())


def recurrent(kind: str, vocab_size, hidden_size, num_layers, rng=None) -> Sequential:
    """Embedding -> ``num_layers`` recurrent layers of ``kind`` ("lstm", "gru" or "rnn") -> Linear.

    The embedding is the one-hot input of char-rnn and min-char-rnn times a learned matrix,
    computed by indexing; each recurrent layer starts from a zero state (PyTorch's initial weights).

    Shape:
        ids (N, T) int -> logits (N, T, vocab_size); the loss takes targets (N, T)
    """
    from .layers import GRU, LSTM, RNN, Embedding, Linear, Mean, SoftmaxCrossEntropy

    layer = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[kind]
    rng = get_rng(rng)
    stack = [layer(hidden_size, hidden_size, rng=rng) for _ in range(num_layers)]
    return Sequential(Embedding(vocab_size, hidden_size, rng=rng), *stack, Linear(hidden_size, vocab_size, rng=rng),
                      SoftmaxCrossEntropy(), Mean())


# -- recipes ----------------------------------------------------------------------------------------
WARMUP = 100  # nanoGPT's warmup_iters


def warmup_cosine(lr: float, iters: int):
    """nanoGPT's rate for step i (0-based): lr * (i + 1) / W over the warmup (W = 100 steps, or a
    tenth of a shorter run), then a cosine from lr down to lr / 10 at the last step."""
    iters = max(int(iters), 1)
    warmup = min(WARMUP, iters // 10)
    if warmup == 0:
        rule = schedules.cosine(lr, iters, min_lr=lr / 10)
        return lambda step: rule(step)
    rule = schedules.cosine(lr, iters, warmup=warmup, min_lr=lr / 10)
    return lambda step: rule(step + 1)


def constant(lr: float, iters: int):
    """lr at every step."""
    return lambda step: lr


def _adamw(net, lr):
    return AdamW(net, lr=lr, betas=(0.9, 0.99), weight_decay=0.1, decay_matrices_only=True)


def _rmsprop(net, lr):
    return RMSprop(net, lr=lr, alpha=0.95)


def _adagrad(net, lr):
    return Adagrad(net, lr=lr)


PRESETS = {
    "transformer": TextPreset(
        name="transformer", build=gpt, optimizer=_adamw, schedule=warmup_cosine, lr=1e-3,
        batch_size=12, block_size=64, iters=2000, eval_interval=250, max_grad_norm=1.0,
        lines_batch_size=64, lines_iters=3000, lines_lr=2e-3,
        summary="nanoGPT's CPU GPT: 4 Transformer blocks, 128 wide, 4 heads, context 64, no dropout; "
                "AdamW lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices, 100 warmup steps then "
                "cosine to 1e-4, clipping at 1.0",
    ),
    "lstm": TextPreset(
        name="lstm", build=lambda v, t, rng=None: recurrent("lstm", v, 128, 2, rng), optimizer=_rmsprop,
        schedule=constant, lr=2e-3, batch_size=50, block_size=50, iters=2000, eval_interval=250,
        max_grad_norm=5.0, lines_batch_size=50, lines_iters=3000, lines_lr=2e-3,
        summary="char-rnn's LSTM: 2 layers of 128, sequences of 50, batch 50; RMSprop lr 2e-3, clipping at 5",
    ),
    "gru": TextPreset(
        name="gru", build=lambda v, t, rng=None: recurrent("gru", v, 128, 2, rng), optimizer=_rmsprop,
        schedule=constant, lr=2e-3, batch_size=50, block_size=50, iters=2000, eval_interval=250,
        max_grad_norm=5.0, lines_batch_size=50, lines_iters=3000, lines_lr=2e-3,
        summary="char-rnn's model with GRU layers: 2 of 128, sequences of 50, batch 50; RMSprop lr 2e-3, "
                "clipping at 5",
    ),
    "rnn": TextPreset(
        name="rnn", build=lambda v, t, rng=None: recurrent("rnn", v, 100, 1, rng), optimizer=_adagrad,
        schedule=constant, lr=0.1, batch_size=32, block_size=25, iters=20000, eval_interval=2000,
        max_grad_norm=5.0, lines_batch_size=32, lines_iters=20000, lines_lr=0.1,
        summary="min-char-rnn's: one tanh RNN layer of 100, sequences of 25 (batch 32, not 1); "
                "Adagrad lr 0.1, clipping at 5",
    ),
}  # fmt: skip
DEFAULT_MODEL = "transformer"


def parameter_count(net) -> int:
    return sum(int(np.size(p)) for p in net.parameters)
