"""The presets of train-text (nnscratch/text_presets.py): nanoGPT's CPU GPT built from the library's
TransformerBlock and MultiHeadAttention, char-rnn's and min-char-rnn's recurrent models, each with its
optimizer and nanoGPT's learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.text_presets import PRESETS, constant, gpt, parameter_count, warmup_cosine


def test_the_transformer_is_nanogpts_cpu_gpt_from_the_librarys_blocks():
    net = gpt(65, 64, rng=0)
    kinds = [type(layer) for layer in net.layers]
    assert kinds == [nn.Embedding, nn.PositionalEmbedding, *[nn.TransformerBlock] * 4, nn.LayerNorm, nn.Linear,
                     nn.SoftmaxCrossEntropy, nn.Mean]
    for block in net.layers[2:6]:
        assert block.config() == {"dim": 128, "num_heads": 4, "mlp_ratio": 4, "dropout": 0.0, "causal": True,
                                  "dtype": "float32"}
        attention = block[0][1]
        assert type(attention) is nn.MultiHeadAttention and attention.causal
    # by hand: embeddings 65*128 + 64*128; a block: 2 LayerNorms, in_proj (3E, E) + 3E, out_proj, the MLP
    block = 2 * 256 + (3 * 128 * 128 + 3 * 128) + (128 * 128 + 128) + (128 * 512 + 512) + (512 * 128 + 128)
    assert parameter_count(net) == 65 * 128 + 64 * 128 + 4 * block + 256 + (128 * 65 + 65) == 818_241


def test_gpt2s_initial_weights_and_float32():
    net = gpt(65, 64, rng=1)
    tokens, head = net.layers[0].weight, net.layers[7].parameters
    assert abs(tokens.std() - 0.02) < 0.002 and abs(head[0].std() - 0.02) < 0.002 and not head[1].any()
    assert {p.dtype for p in net.parameters} == {np.dtype(np.float32)}
    logits = net[:-2].forward(np.zeros((2, 64), np.int64))
    assert logits.shape == (2, 64, 65) and logits.dtype == np.float32


@pytest.mark.parametrize("name, layer, hidden, count", [("lstm", nn.LSTM, 128, 2), ("gru", nn.GRU, 128, 2),
                                                        ("rnn", nn.RNN, 100, 1)])
def test_the_recurrent_presets(name, layer, hidden, count):
    net = PRESETS[name].build(65, PRESETS[name].block_size, rng=0)
    kinds = [type(x) for x in net.layers]
    assert kinds == [nn.Embedding, *[layer] * count, nn.Linear, nn.SoftmaxCrossEntropy, nn.Mean]
    assert all(x.hidden_size == hidden for x in net.layers[1:-3])
    assert net[:-2].forward(np.zeros((3, 7), np.int64)).shape == (3, 7, 65)


def test_each_preset_trains_with_its_recipe():
    net = gpt(10, 8, rng=0)
    adamw = PRESETS["transformer"].optimizer(net, 1e-3)
    assert type(adamw) is nn.AdamW and adamw.betas == (0.9, 0.99) and adamw.weight_decay == 0.1
    assert adamw.decay_matrices_only and PRESETS["transformer"].max_grad_norm == 1.0
    lstm = PRESETS["lstm"].build(10, 8, rng=0)
    rmsprop = PRESETS["lstm"].optimizer(lstm, 2e-3)
    assert type(rmsprop) is nn.RMSprop and rmsprop.alpha == 0.95 and rmsprop.lr == 2e-3
    assert type(PRESETS["rnn"].optimizer(PRESETS["rnn"].build(10, 8, rng=0), 0.1)) is nn.Adagrad
    assert (PRESETS["rnn"].block_size, PRESETS["rnn"].lr) == (25, 0.1) and constant(0.1, 10)(7) == 0.1
    assert (PRESETS["transformer"].batch_size, PRESETS["transformer"].block_size, PRESETS["transformer"].iters) == \
        (12, 64, 2000)


def test_warmup_cosine_is_nanogpts_rate():
    rate = warmup_cosine(1e-3, 2000)
    assert math.isclose(rate(0), 1e-5) and math.isclose(rate(49), 5e-4)  # lr (i + 1) / 100 over the warmup
    assert math.isclose(rate(99), 1e-3)
    middle = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * (1050 - 100) / 1900))
    assert math.isclose(rate(1049), middle)
    assert math.isclose(rate(1999), 1e-4) and math.isclose(rate(5000), 1e-4)
    short = warmup_cosine(1e-3, 20)  # a tenth of a short run warms up
    assert math.isclose(short(0), 5e-4) and math.isclose(short(1), 1e-3) and math.isclose(short(19), 1e-4)
    assert math.isclose(warmup_cosine(1e-3, 5)(0), 1e-3)  # too short to warm up at all
