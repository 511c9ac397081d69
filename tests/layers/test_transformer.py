"""TransformerBlock: that it is the diagram (a Sequential of two Residual branches of existing layers),
its configuration and initialisation, a nanoGPT-style block written here in PyTorch as a witness,
gradient clipping across it, the numerics of long sequences and of training, and its bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch import GELU, Dropout, LayerNorm, Linear, MultiHeadAttention, Residual, TransformerBlock


def perturbed(block, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    for p in block.parameters:
        p[...] = rng.normal(0.0, scale, p.shape)
    return block


def test_it_is_the_diagram_built_from_existing_layers():
    block = TransformerBlock(16, 4, rng=0)
    assert isinstance(block, nn.Sequential) and len(block) == 2
    attention, mlp = block
    assert isinstance(attention, Residual) and isinstance(mlp, Residual)
    assert [type(layer) for layer in attention] == [LayerNorm, MultiHeadAttention]
    assert [type(layer) for layer in mlp] == [LayerNorm, Linear, GELU, Linear]
    assert attention[1].causal and attention[1].num_heads == 4 and mlp[1].out_features == 64
    with_dropout = TransformerBlock(16, 4, mlp_ratio=2, dropout=0.1, causal=False, rng=0)
    assert [type(layer) for layer in with_dropout[0]] == [LayerNorm, MultiHeadAttention, Dropout]
    assert [type(layer) for layer in with_dropout[1]] == [LayerNorm, Linear, GELU, Linear, Dropout]
    assert with_dropout[0][1].dropout == 0.1 and not with_dropout[0][1].causal and with_dropout[1][1].out_features == 32
    # forward: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), layer by layer
    perturbed(block)
    x = np.random.default_rng(1).standard_normal((2, 5, 16)).astype(np.float32)
    h = x + attention[1].forward(attention[0].forward(x))
    expected = h + mlp[3].forward(mlp[2].forward(mlp[1].forward(mlp[0].forward(h))))
    np.testing.assert_allclose(block.forward(x), expected, rtol=1e-6, atol=1e-6)


def test_config_parameter_specs_and_gpt2_initialisation():
    block = TransformerBlock(64, 4, mlp_ratio=3, dropout=0.25, causal=False, dtype="float64", rng=0)
    config = block.config()
    assert config == {"dim": 64, "num_heads": 4, "mlp_ratio": 3, "dropout": 0.25, "causal": False, "dtype": "float64"}
    assert TransformerBlock(**config).config() == config
    specs = TransformerBlock.parameter_specs(**config)
    assert [(s, np.dtype(d)) for s, d in specs] == [(p.shape, p.dtype) for p in block.parameters]
    assert len(specs) == 12 and specs[2][0] == (192, 64) and specs[8][0] == (64, 192)
    assert block.name == "TransformerBlock" and repr(block).startswith("TransformerBlock(\n  (0): Residual(")
    matrices = [p for p in block.parameters if p.ndim == 2]
    assert len(matrices) == 4
    for weight in matrices:  # N(0, 0.02^2)
        assert abs(weight.std() - 0.02) < 0.002 and abs(weight.mean()) < 0.002
    ln_1, ln_2 = block[0][0], block[1][0]
    assert (ln_1.weight == 1).all() and (ln_2.weight == 1).all()
    assert all(not p.any() for p in block.parameters if p.ndim == 1 and p is not ln_1.weight and p is not ln_2.weight)
    assert TransformerBlock(8, 2, mlp_ratio=0.5).config()["mlp_ratio"] == 0.5
    assert TransformerBlock(8, 2, rng=5).parameters[2].tolist() == TransformerBlock(8, 2, rng=5).parameters[2].tolist()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dim=10, num_heads=4), ValueError, r"MultiHeadAttention: embed_dim must be divisible by num_heads"),
    (dict(dim=0, num_heads=1), ValueError, r"TransformerBlock: dim must be a positive int, got 0"),
    (dict(dim=8, num_heads=2, mlp_ratio=0), ValueError, r"TransformerBlock: mlp_ratio must be > 0, got 0"),
    (dict(dim=8, num_heads=2, mlp_ratio=0.1), ValueError,
     r"TransformerBlock: mlp_ratio=0.1 gives an MLP of int\(8 \* 0.1\) = 0 features; expected at least 1"),
    (dict(dim=8, num_heads=2, mlp_ratio="4"), TypeError, r"TransformerBlock: mlp_ratio must be a real number, got str"),
    (dict(dim=8, num_heads=2, dropout=1.5), ValueError, r"TransformerBlock: dropout must be >= 0 and < 1, got 1.5"),
    (dict(dim=8, num_heads=2, causal=None), TypeError, r"TransformerBlock: causal must be True or False"),
    (dict(dim=8, num_heads=2, dtype="int32"), TypeError, r"TransformerBlock: dtype must be float32 or float64"),
])
def test_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        TransformerBlock(**kwargs)


def test_bad_input_says_which_layer_of_the_block_refused_it():
    block = TransformerBlock(8, 2)
    with pytest.raises(ValueError, match=r"in layer 0 \(Residual\) of TransformerBlock: in layer 0 \(LayerNorm\) "
                                         r"of Residual: LayerNorm: expected input whose trailing axes are \(8,\)"):
        block.forward(np.zeros((2, 5, 6), np.float32))
    with pytest.raises(ValueError, match=r"MultiHeadAttention: expected a 3-D input \(N, T, embed_dim\), got shape \(2, 8\)"):
        block.forward(np.zeros((2, 8), np.float32))


def test_sanity_check_with_dropout_in_training_and_in_eval():
    x = np.random.default_rng(0).standard_normal((2, 4, 8))
    for training in (True, False):
        block = perturbed(TransformerBlock(8, 2, dropout=0.3, rng=1)).train(training)
        report = nn.sanity_check(block, x)
        assert len(report) == 13 and all(row.passed for row in report)


def test_clip_grad_norm_works_across_the_block():
    block = perturbed(TransformerBlock(8, 2, rng=0), scale=1.0)
    x = np.random.default_rng(1).standard_normal((3, 6, 8)).astype(np.float32) * 5
    block.backward(np.ones_like(block.forward(x)) * 10)
    before = [d.copy() for d in block.parameters_deltas]
    norm = math.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in before))
    assert norm > 1.0
    assert nn.clip_grad_norm(block, 1.0) == pytest.approx(norm, rel=1e-6)
    after = np.concatenate([d.ravel() for d in block.parameters_deltas]).astype(np.float64)
    assert np.linalg.norm(after) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(after, np.concatenate([d.ravel() for d in before]) / (norm + 1e-6), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("causal", [True, False])
def test_long_sequences_stay_finite(causal):
    block = perturbed(TransformerBlock(16, 4, causal=causal, rng=0), scale=1.0)
    x = np.random.default_rng(1).standard_normal((2, 512, 16)).astype(np.float32) * 100
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = block.forward(x)
        dx = block.backward(np.random.default_rng(2).standard_normal(y.shape).astype(np.float32))
    assert y.dtype == dx.dtype == np.float32
    assert np.isfinite(y).all() and np.isfinite(dx).all() and all(np.isfinite(d).all() for d in block.parameters_deltas)


def test_a_small_gpt_learns_and_stays_finite_with_adamw_and_clipping():
    # Next-token prediction of a fixed sequence shifted by one: the loss must fall, every number finite.
    rng = np.random.default_rng(0)
    stack = nn.Sequential(TransformerBlock(16, 2, rng=rng), TransformerBlock(16, 2, rng=rng), LayerNorm(16),
                          Linear(16, 5, rng=rng))
    embedding = rng.standard_normal((5, 16)).astype(np.float32)
    tokens = rng.integers(0, 5, (4, 9))
    x, targets = embedding[tokens[:, :-1]], tokens[:, 1:]
    loss_layers = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    optimizer = nn.AdamW(stack, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
    losses = []
    for _ in range(150):
        logits = stack.forward(x)
        losses.append(float(loss_layers.forward(logits.reshape(-1, 5), targets.reshape(-1))))
        stack.backward(loss_layers.backward(1.0).reshape(logits.shape))
        nn.clip_grad_norm(stack, 1.0)
        optimizer.step()
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.2 * losses[0]
    assert all(np.isfinite(p).all() for p in stack.parameters)
