"""nnscratch.text_training: a step is nanoGPT's (checked by hand), estimates leave the run alone, the
whole-split loss counts every character once, and a non-finite loss stops before the update."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.data.text import CharCorpus, LineCorpus
from nnscratch.text_presets import constant, recurrent
from nnscratch.text_training import TextTraining, seeded
from nnscratch.train import NonFiniteLossError

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40


def bigram(vocab_size: int, rng) -> nn.Sequential:
    """A model whose logits at a position depend on that position's character only."""
    return nn.Sequential(nn.Embedding(vocab_size, vocab_size, rng=rng), nn.SoftmaxCrossEntropy(), nn.Mean())


def training_of(net, corpus, lr=0.1, block_size=8, batch_size=4, seed=0, max_grad_norm=1.0, optimizer=None):
    optimizer = optimizer or nn.SGD(net, lr=lr)
    return TextTraining(net, optimizer, corpus, seeded(seed)[1], batch_size=batch_size, block_size=block_size,
                        schedule=constant(lr, 10), max_grad_norm=max_grad_norm, seed=seed)


def test_a_step_is_forward_backward_clipping_and_the_update():
    corpus = CharCorpus(TEXT)
    net = bigram(len(corpus.vocabulary), np.random.default_rng(0))
    before = net.parameters[0].astype(np.float64)
    training = training_of(net, corpus, lr=0.5, max_grad_norm=0.01)
    x, y = corpus.batch(seeded(0)[1], 4, 8)  # the windows the step will draw
    loss = training.step(0)
    # by hand, in float64: softmax cross-entropy of the rows, its gradient, clipped to norm 0.01
    logits = before[x]
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    expected_loss = -np.take_along_axis(log_p, y[..., None], -1).mean()
    grad = np.exp(log_p)
    np.put_along_axis(grad, y[..., None], np.take_along_axis(grad, y[..., None], -1) - 1, -1)
    weight_grad = np.zeros_like(before)
    np.add.at(weight_grad, x.ravel(), grad.reshape(-1, grad.shape[-1]) / y.size)
    weight_grad *= min(1.0, 0.01 / (np.linalg.norm(weight_grad) + 1e-6))
    assert math.isclose(loss, expected_loss, rel_tol=1e-5)
    np.testing.assert_allclose(net.parameters[0], before - 0.5 * weight_grad, rtol=1e-5, atol=1e-7)


def test_the_schedule_sets_the_rate_of_each_step():
    corpus = CharCorpus(TEXT)
    net = bigram(len(corpus.vocabulary), np.random.default_rng(0))
    training = training_of(net, corpus)
    training.schedule = lambda step: 0.01 * (step + 1)
    seen = []
    for index in range(3):
        training.step(index)
        seen.append(training.optimizer.lr)
    assert seen == [0.01, 0.02, 0.03]


def test_training_lowers_the_loss_of_a_recurrent_model():
    corpus = CharCorpus(TEXT)
    net = recurrent("gru", len(corpus.vocabulary), 32, 1, rng=np.random.default_rng(0))
    training = training_of(net, corpus, optimizer=nn.Adam(net, lr=1e-2), block_size=16, batch_size=8)
    before = training.validation_loss()
    for index in range(150):
        training.step(index)
    assert before > 2.5 and training.validation_loss() < 0.6 * before


def test_estimates_draw_from_their_own_generator_and_are_the_same_each_time():
    corpus = CharCorpus(TEXT)
    net = bigram(len(corpus.vocabulary), np.random.default_rng(0))
    training = training_of(net, corpus)
    state = training.rng.bit_generator.state
    first = training.estimate()
    assert training.rng.bit_generator.state == state
    assert training.estimate() == first
    assert set(first) == {"train", "val"} and all(math.isfinite(v) for v in first.values())


def test_the_whole_split_loss_predicts_every_validation_character_once():
    corpus = CharCorpus(TEXT)
    net = bigram(len(corpus.vocabulary), np.random.default_rng(0))
    weight = net.parameters[0].astype(np.float64)
    log_p = weight - np.log(np.exp(weight).sum(-1, keepdims=True))
    v = corpus.validation
    expected = -log_p[v[:-1], v[1:]].mean()
    for block_size in (1, 7, 64, len(v) - 1):
        training = training_of(net, corpus, block_size=block_size)
        assert math.isclose(training.validation_loss(), expected, rel_tol=1e-6)


def test_the_whole_split_loss_in_line_mode_counts_each_line_and_its_end():
    corpus = LineCorpus("\n".join(["ab", "ba", "abba", "b", "aab", "bab", "a", "bb", "aba", "ab"] * 3))
    net = bigram(len(corpus.vocabulary), np.random.default_rng(0))
    weight = net.parameters[0].astype(np.float64)
    log_p = weight - np.log(np.exp(weight).sum(-1, keepdims=True))
    ids = [corpus.vocabulary.encode("\n" + line + "\n") for line in corpus.validation_lines]
    expected = -np.mean([log_p[a, b] for line in ids for a, b in zip(line[:-1], line[1:])])
    assert math.isclose(training_of(net, corpus, block_size=5).validation_loss(), expected, rel_tol=1e-6)


def test_a_non_finite_loss_stops_before_the_update():
    corpus = CharCorpus(TEXT)
    net = bigram(len(corpus.vocabulary), np.random.default_rng(0))
    net.parameters[0][corpus.vocabulary.encode("t")[0]] = np.inf
    before = net.parameters[0].copy()
    training = training_of(net, corpus, lr=0.1)
    with pytest.raises(NonFiniteLossError, match=r"training diverged: the loss is nan at iteration 1, with lr 0.1"):
        for index in range(20):
            training.step(index)
    np.testing.assert_array_equal(net.parameters[0], before)


def test_a_non_finite_gradient_norm_stops_before_the_update(monkeypatch):
    corpus = CharCorpus(TEXT)
    net = bigram(len(corpus.vocabulary), np.random.default_rng(0))
    before = net.parameters[0].copy()
    training = training_of(net, corpus)
    real_backward = nn.Embedding.backward

    def backward(self, delta):
        real_backward(self, delta)
        self.parameters_deltas[0][0, 0] = np.inf

    monkeypatch.setattr(nn.Embedding, "backward", backward)
    with pytest.raises(NonFiniteLossError, match=r"the gradient norm is inf at iteration 1 \(the loss was \d"):
        training.step(0)
    np.testing.assert_array_equal(net.parameters[0], before)
