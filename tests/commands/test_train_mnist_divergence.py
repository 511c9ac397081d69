"""train-mnist when the numbers stop being finite (issue 25, point 5): a divergence in an epoch's
last batch is one line and exit 1, never "test loss nan" and exit 0; diverged weights are never
saved (a resumed checkpoint holding them is refused); --metrics is standard JSON."""

import json
import math
import re

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import train_mnist_main
from nnscratch.commands.train_mnist import _write_json

from helpers.train_mnist_runs import options


def refuse_constant(name):
    raise ValueError(f"{name} is not standard JSON")


def one_line_divergence(captured, code):
    assert code == 1 and captured.out == "" and "Traceback" not in captured.err and "Warning" not in captured.err
    return captured.err


@pytest.mark.parametrize("lr", ["1e30", "1e308"])
def test_a_divergence_in_the_only_batch_is_one_line_and_exit_1(synthetic_mnist, tmp_path, capsys, lr):
    # --limit 128 with batch 128: one batch, whose loss is finite; its update is what diverges.
    metrics, save = tmp_path / "metrics.json", tmp_path / "m.npz"
    code = train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--lr", lr, "--epochs", "1", "--limit", "128",
                                    "--batch-size", "128", "--metrics", str(metrics), "--save", str(save)))
    err = one_line_divergence(capsys.readouterr(), code)
    first, second = err.splitlines()
    assert re.fullmatch(rf"train-mnist: training diverged: (the validation loss is nan|[\d,]+ weight values are NaN or "
                        rf"infinite) at the end of epoch 1; the learning rate \(lr={lr[:2]}\+{lr[2:]}\) is probably "
                        rf"too high, try a lower one, e\.g\. --lr 1e\+{int(lr[2:]) - 1}", first)
    assert second == f"train-mnist: {save} was not written (no epoch ended before the divergence)"
    assert not save.exists() and not metrics.exists()


def test_a_divergence_at_the_end_of_epoch_2_keeps_epoch_1s_checkpoint(synthetic_mnist, tmp_path, monkeypatch, capsys):
    real_step, steps = nn.Adam.step, []

    def step(self):
        real_step(self)
        steps.append(1)
        if len(steps) == 10:  # epoch 2's last batch (5 an epoch): no loss sees the weights it leaves
            self.layers[0].parameters[0][0, 0] = np.inf

    monkeypatch.setattr(nn.Adam, "step", step)
    save = tmp_path / "m.npz"
    code = train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--epochs", "3", "--save", str(save)))
    err = one_line_divergence(capsys.readouterr(), code)
    first, second = err.splitlines()
    assert re.fullmatch(r"train-mnist: training diverged: 1 weight value is NaN or infinite at the end of epoch 2; the "
                        r"learning rate \(lr=[\d.e-]+\) is probably too high, try a lower one, e\.g\. --lr 0\.0003", first)
    assert second == f"train-mnist: {save} holds the state after epoch 1"
    checkpoint = nn.load_checkpoint(save)
    assert checkpoint.epoch == 1 and all(np.isfinite(p).all() for p in checkpoint.model.parameters)


def test_a_checkpoint_with_nan_weights_is_not_resumed(synthetic_mnist, tmp_path, capsys):
    save = tmp_path / "m.npz"
    assert train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--epochs", "1", "--save", str(save))) == 0
    checkpoint = nn.load_checkpoint(save)
    checkpoint.model.parameters[1][:3] = np.nan
    nn.save(checkpoint.model, save, optimizer=checkpoint.optimizer, epoch=1, metadata=checkpoint.metadata)
    capsys.readouterr()
    requests = len(synthetic_mnist.url.requests)
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(save), "--epochs", "2")) == 2
    assert capsys.readouterr().err == (f"train-mnist: error: --resume {save}: 3 weight values in 1 of its 6 parameter "
                                       "arrays are NaN or infinite (did the training diverge?): training cannot go on "
                                       "from them\n")
    assert len(synthetic_mnist.url.requests) == requests  # refused before any work


def test_metrics_are_standard_json(synthetic_mnist, tmp_path):
    metrics = tmp_path / "metrics.json"
    assert train_mnist_main(options(synthetic_mnist, "--model", "softmax", "--epochs", "1",
                                    "--metrics", str(metrics))) == 0
    data = json.loads(metrics.read_text(), parse_constant=refuse_constant)
    assert 0 <= data["test_accuracy"] <= 1 and math.isfinite(data["test_loss"])


def test_a_figure_that_is_not_finite_is_written_as_null(tmp_path):
    path = tmp_path / "m.json"
    _write_json({"a": [1.5, math.nan, {"b": -math.inf, "c": (math.inf, 2)}], "d": None, "e": "nan"}, path)
    assert json.loads(path.read_text(), parse_constant=refuse_constant) == {
        "a": [1.5, None, {"b": None, "c": [None, 2]}], "d": None, "e": "nan"}
