"""scripts/benchmark_text.py: correctness only, no timing assertions.

The comparison is only worth something if both sides do the same work: from the same weights, on the
same windows, with the same recipe, PyTorch's twin must follow nnscratch's training step for step.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nnscratch.data.text import CharCorpus, LineCorpus

from helpers.script_modules import load_script

TEXT = ("When shall we three meet again\nIn thunder, lightning, or in rain?\nWhen the hurlyburly's done,\n"
        "When the battle's lost and won.\n") * 20


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_text.py")


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.mark.parametrize("model", ["transformer", "lstm", "gru", "rnn"])
def test_both_sides_train_the_same_network_to_the_same_loss(bench, torch, model):
    corpus = CharCorpus(TEXT)
    config = dict(bench.recipe(model, corpus, iters=12), batch_size=3, block_size=10)
    training, weights = bench.nnscratch_run(model, corpus, config, seed=1)
    module = bench.torch_twin(torch, model, training.net, weights)
    # before training: the same logits from the same weights
    x, _ = corpus.batch(np.random.default_rng(0), 2, 10)
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), training.model.forward(x),
                               rtol=1e-4, atol=1e-5)
    ours = bench.train_nnscratch(training, config["iters"], threads=1)
    theirs = bench.train_torch(torch, model, module, corpus, config, seed=1)
    assert math.isfinite(ours["val_loss"]) and ours["val_loss"] < math.log(len(corpus.vocabulary))
    assert abs(ours["val_loss"] - theirs["val_loss"]) < 2e-3 * ours["val_loss"]
    assert abs(ours["last_losses"] - theirs["last_losses"]) < 2e-3 * ours["last_losses"]
    trained = [p.detach().numpy() for p in module.parameters()]
    # Adam's and Adagrad's steps move a weight by up to about lr whatever the size of its gradient, so
    # the float32 rounding of two frameworks shows at a small fraction of the rate
    assert max(float(np.abs(a - (b.T if a.shape != b.shape else b)).max())
               for a, b in zip(trained, training.net.parameters)) < max(1e-3, config["lr"] / 20)


def test_the_line_mode_recipe_and_the_validation_losses_agree(bench, torch):
    corpus = LineCorpus("\n".join(["macbeth", "banquo", "duncan", "malcolm", "fleance", "lennox", "ross", "angus"]
                                  * 6))
    config = dict(bench.recipe("gru", corpus, iters=3, lines=True), batch_size=4)
    assert config["block_size"] == len("fleance") + 1 and config["lr"] == 2e-3
    training, weights = bench.nnscratch_run("gru", corpus, config, seed=0)
    module = bench.torch_twin(torch, "gru", training.net, weights)
    ours = training.validation_loss()
    theirs = bench.torch_validation_loss(torch, module, corpus, config["block_size"])
    assert math.isclose(ours, theirs, rel_tol=1e-5)


def test_the_command_prints_both_times_the_ratio_and_both_losses(bench, torch, tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    assert bench.main([str(path), "--model", "rnn", "--iters", "5", "--threads", "1", "--json",
                       str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "rnn, seed 0: 5 iterations of batch 32 x 25 characters" in out
    assert "time ratio nnscratch / PyTorch:" in out and out.count("nats/char over the whole split") == 2
    data = json.loads((tmp_path / "r.json").read_text())
    assert math.isclose(data["ratio"], data["nnscratch"]["seconds"] / data["pytorch"]["seconds"])


def test_bad_orders_are_refused(bench, torch, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--order", "pytorch,pytorch"])
    assert "--order must name nnscratch or pytorch or both, once each, got 'pytorch,pytorch'" in capsys.readouterr().err


def test_one_side_alone_is_timed_without_a_ratio(bench, torch, tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    assert bench.main([str(path), "--model", "rnn", "--iters", "3", "--threads", "1", "--order", "pytorch", "--json",
                       str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.count("nats/char over the whole split") == 1 and "PyTorch:" in out and "nnscratch:" not in out
    assert "time ratio" not in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert "nnscratch" not in data and "ratio" not in data and data["pytorch"]["val_loss"] > 0
