"""The sequence layers together, as a language model stacks them: ids -> Embedding + positions ->
LayerNorm -> GELU MLP -> logits -> cross-entropy over the tokens, padding ignored. The whole model
against PyTorch (outputs, loss and every gradient), clip_grad_norm across its layers, and no NaN at
padded positions, forward or backward."""

import numpy as np
import pytest

import nnscratch as nn

from helpers.dtypes import each_dtype

V, D, T_MAX = 11, 8, 7


def token_model(positions="learned", dtype=np.float64, seed=0):
    """Embedding (id 0 is padding) + positions, then LayerNorm, Linear-GELU-Linear to logits over V."""
    position = (nn.PositionalEmbedding(T_MAX, D, dtype=dtype, rng=seed + 1) if positions == "learned"
                else nn.SinusoidalPositionalEncoding(D, max_len=T_MAX))
    model = nn.Sequential(nn.Embedding(V, D, padding_idx=0, dtype=dtype, rng=seed), position,
                          nn.LayerNorm(D, dtype=dtype), nn.Linear(D, 2 * D, dtype=dtype, rng=seed + 2), nn.GELU(),
                          nn.Linear(2 * D, V, dtype=dtype, rng=seed + 3))
    rng = np.random.default_rng(seed)
    model[2].weight[...] = rng.uniform(0.5, 1.5, D)  # LayerNorm not at 1 and 0, which would hide a swapped term
    model[2].bias[...] = rng.uniform(-0.5, 0.5, D)
    return model


def padded_batch(n, t, seed):
    """Ids (n, t) with each sequence ending in padding (id 0) after a random length, and the next-id
    targets, -100 where the target is padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, V, (n, t + 1))
    lengths = rng.integers(1, t + 2, n)
    ids[np.arange(t + 1) >= lengths[:, None]] = 0
    targets = ids[:, 1:].copy()
    targets[targets == 0] = -100
    return ids[:, :-1], targets


def torch_twin(torch, model, positions):
    """The same model in PyTorch, weights copied (nnscratch's Linear keeps W as (in, out))."""
    emb, pos, norm, first, _, last = model.layers
    tensor = torch.tensor
    params = {"wte": tensor(emb.weight.copy()), "ln_w": tensor(norm.weight.copy()), "ln_b": tensor(norm.bias.copy()),
              "w1": tensor(first.weight.copy()), "b1": tensor(first.bias.copy()),
              "w2": tensor(last.weight.copy()), "b2": tensor(last.bias.copy())}
    if positions == "learned":
        params["wpe"] = tensor(pos.weight.copy())
    for p in params.values():
        p.requires_grad_(True)

    def forward(ids, targets):
        t = ids.shape[1]
        x = torch.nn.functional.embedding(ids, params["wte"], padding_idx=0)
        x = x + (params["wpe"][:t] if positions == "learned" else tensor(pos.table(t)).to(x.dtype))
        x = torch.nn.functional.layer_norm(x, (D,), params["ln_w"], params["ln_b"])
        x = torch.nn.functional.gelu(x @ params["w1"] + params["b1"], approximate="tanh") @ params["w2"] + params["b2"]
        loss = torch.nn.functional.cross_entropy(x.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
        return x, loss

    return params, forward


@pytest.mark.torch
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
@each_dtype(float64=1e-10, float32=2e-5)
def test_the_whole_model_matches_pytorch(torch, positions, dtype, tolerance):
    for seed, (n, t) in enumerate([(4, 7), (3, 5), (1, 1)]):
        model = token_model(positions, dtype, seed)
        loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
        ids, targets = padded_batch(n, t, seed)
        targets[0, -1] = 3  # at least one token counts
        logits = model.forward(ids)
        value = loss.forward(logits, targets)
        assert model.backward(loss.backward()) is None
        params, forward = torch_twin(torch, model, positions)
        t_logits, t_loss = forward(torch.tensor(ids), torch.tensor(targets))
        t_loss.backward()
        np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=tolerance, atol=tolerance)
        assert float(value) == pytest.approx(t_loss.item(), rel=tolerance)
        names = ["wte", *(["wpe"] if positions == "learned" else []), "ln_w", "ln_b", "w1", "b1", "w2", "b2"]
        for name, delta in zip(names, model.parameters_deltas, strict=True):
            np.testing.assert_allclose(delta, params[name].grad.numpy(), rtol=tolerance, atol=tolerance, err_msg=name)


@pytest.mark.torch
def test_clip_grad_norm_across_the_sequence_layers_matches_pytorch(torch):
    model = token_model()
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    ids, targets = padded_batch(4, 7, 9)
    loss.forward(model.forward(ids), targets)
    model.backward(loss.backward(50.0))  # the gradient of 50 L: large enough to be clipped
    params, forward = torch_twin(torch, model, "learned")
    (forward(torch.tensor(ids), torch.tensor(targets))[1] * 50.0).backward()
    t_norm = torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
    norm = nn.clip_grad_norm([model, loss], 1.0)
    assert norm == pytest.approx(t_norm.item(), rel=1e-10) and norm > 1.0
    for name, delta in zip(["wte", "wpe", "ln_w", "ln_b", "w1", "b1", "w2", "b2"], model.parameters_deltas, strict=True):
        np.testing.assert_allclose(delta, params[name].grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)
    after = np.sqrt(sum(float((d * d).sum()) for d in model.parameters_deltas))
    assert after == pytest.approx(1.0, rel=1e-5)
    assert not model.parameters_deltas[0][0].any()  # the padding row's gradient: still exactly 0


def test_padded_positions_never_give_nan_and_fit_with_clipping_trains():
    model = token_model(dtype=np.float32)
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    ids, targets = padded_batch(48, 7, 10)
    targets[:6] = -100  # whole sequences of padding: a batch may hold nothing but
    with np.errstate(all="raise"):  # no overflow, no invalid value anywhere
        logits = model.forward(ids)
        loss.forward(logits, targets)
        model.backward(loss.backward())
    assert np.isfinite(logits).all() and all(np.isfinite(d).all() for d in model.parameters_deltas)
    history = nn.fit(model, loss, nn.Adam(model, lr=0.02), ids, targets, epochs=30, batch_size=6, rng=0,
                     progress=False, max_grad_norm=1.0)
    assert all(np.isfinite(record["loss"]) for record in history)
    # random ids: it can only learn them by heart, and does so, slowly
    assert history[-1]["loss"] < 0.5 * history[0]["loss"] and history[-1]["accuracy"] > 2 * history[0]["accuracy"]
    assert not model[0].weight[0].any()  # the padding vector never moved


def test_gradient_check_of_the_model_and_its_loss_over_padded_tokens():
    model = token_model()
    ids, targets = padded_batch(3, 5, 11)
    ids[ids == 0] = 5  # the padding row's gradient is 0 by rule: keep padding ids out of this check
    net = nn.Sequential(*model.layers, nn.SoftmaxCrossEntropy(), nn.Mean())
    report = nn.sanity_check(net, ids, args=(targets,), max_coords=40)
    assert report.passed and len(report) == 1 + len(net.parameters) and report[0].result == "SKIP"


def test_a_512_token_sequence_with_huge_weights_stays_finite():
    model = nn.Sequential(nn.Embedding(V, D, rng=0), nn.PositionalEmbedding(512, D, rng=1),
                          nn.SinusoidalPositionalEncoding(D, max_len=512), nn.LayerNorm(D), nn.Linear(D, V, rng=2))
    model[0].weight *= 1e6  # exploding embeddings: LayerNorm takes them back to unit scale
    model[4].weight *= 1e3  # and logits of thousands: the cross-entropy works from log-sum-exp
    ids, targets = padded_batch(2, 512, 12)
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    with np.errstate(over="raise", invalid="raise"):
        value = loss.forward(model.forward(ids), targets)
        model.backward(loss.backward())
    assert np.isfinite(value) and value > 10  # confidently wrong on random ids: large, not inf
    assert all(np.isfinite(d).all() for d in model.parameters_deltas)
    assert model[2].table(512).shape == (512, D) and np.abs(model[2].table(512)).max() <= 1.0
