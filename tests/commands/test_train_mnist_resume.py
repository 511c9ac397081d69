"""train-mnist's --resume and interrupts (Ctrl-C, SIGTERM): a resumed run continues exactly where the
saved one stopped, an interrupted run saves what it has."""

import json
import os

import numpy as np

import nnscratch as nn
from nnscratch.cli import train_mnist_main

from helpers.train_mnist_runs import FIXED_THREADS, options, run_to_params, without_timings


def test_resume_continues_from_the_saved_epoch(synthetic_mnist, tmp_path, capsys):
    # a constant rate, so that a 1-epoch plan extended to 3 epochs is the same as a 3-epoch plan
    common = ("--schedule", "constant")
    _, straight = run_to_params(synthetic_mnist, tmp_path, "straight", *common, "--epochs", "3")
    one, _ = run_to_params(synthetic_mnist, tmp_path, "one", *common, "--epochs", "1")
    assert nn.load_checkpoint(one).epoch == 1
    _, resumed = run_to_params(synthetic_mnist, tmp_path, "resumed", "--resume", str(one), "--epochs", "3")
    assert nn.load_checkpoint(tmp_path / "resumed.npz").epoch == 3
    history = json.loads((tmp_path / "resumed.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[0] == json.loads((tmp_path / "one.json").read_text())["history"][0]  # carried over
    # epochs 2-3 after the resume are epochs 2-3 of the straight run: same shuffles, same optimizer state
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    # resuming a finished plan trains nothing and reports the same model
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(tmp_path / "resumed.npz"),
                                    "--metrics", str(tmp_path / "again.json"))) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert len(again["history"]) == 3
    assert again["test_accuracy"] == json.loads((tmp_path / "resumed.json").read_text())["test_accuracy"]


def test_resume_continues_an_rmsprop_run_exactly(synthetic_mnist, tmp_path):
    common = ("--schedule", "constant", "--optimizer", "rmsprop", "--momentum", "0.9", "--lr", "1e-3")
    _, straight = run_to_params(synthetic_mnist, tmp_path, "straight", *common, "--epochs", "2")
    one, _ = run_to_params(synthetic_mnist, tmp_path, "one", *common, "--epochs", "1")
    _, resumed = run_to_params(synthetic_mnist, tmp_path, "resumed", "--resume", str(one), "--epochs", "2")
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_resume_of_the_cnn_preset_continues_its_dropout_masks_exactly(synthetic_mnist, tmp_path):
    # The cnn preset has Dropout (and BatchNorm, and shifts): its masks come from the run's one
    # training generator, whose state the checkpoint keeps, so a resumed run is the straight run.
    def run(name, *extra):
        path = tmp_path / f"{name}.npz"
        assert train_mnist_main(options(synthetic_mnist, "--model", "cnn", "--schedule", "constant", *extra,
                                        *FIXED_THREADS, "--save", str(path))) == 0
        return path, nn.load(path)

    _, straight = run("straight", "--epochs", "2")
    assert any(type(layer).__name__ == "Dropout" for layer in straight)
    one, _ = run("one", "--epochs", "1")
    _, resumed = run("resumed", "--resume", str(one), "--epochs", "2")
    for a, b in zip(straight.parameters + straight.buffers, resumed.parameters + resumed.buffers):
        np.testing.assert_array_equal(a, b)


def test_resume_after_interrupt_equals_an_uninterrupted_run(synthetic_mnist, tmp_path, monkeypatch, capsys):
    common = ("--model", "mlp", "--batch-size", "100", "--epochs", "3")
    _, straight = run_to_params(synthetic_mnist, tmp_path, "straight", *common)
    straight_metrics = without_timings(json.loads((tmp_path / "straight.json").read_text()))

    # Ctrl-C in the middle of epoch 2 (6 batches per epoch: step 9)
    real_step, calls = nn.Adam.step, []

    def interrupting_step(self):
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(nn.Adam, "step", interrupting_step)
    path = tmp_path / "interrupted.npz"
    code = train_mnist_main(options(synthetic_mnist, *common, *FIXED_THREADS, "--save", str(path)))
    err = capsys.readouterr().err
    assert code == 130
    assert f"saved the state after epoch 1 to {path}" in err and "Traceback" not in err
    checkpoint = nn.load_checkpoint(path)
    assert checkpoint.epoch == 1 and checkpoint.optimizer.steps == 6
    monkeypatch.setattr(nn.Adam, "step", real_step)

    # resuming with no other option finishes the original 3-epoch plan, bit for bit
    resumed_path = tmp_path / "resumed.npz"
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(path), "--save", str(resumed_path),
                                    "--metrics", str(tmp_path / "resumed.json"), *FIXED_THREADS)) == 0
    for a, b in zip(straight, nn.load(resumed_path).parameters):
        np.testing.assert_array_equal(a, b)
    assert without_timings(json.loads((tmp_path / "resumed.json").read_text())) == straight_metrics


def test_interrupt_without_save(synthetic_mnist, monkeypatch, capsys):
    def interrupting_step(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(nn.SGD, "step", interrupting_step)
    assert train_mnist_main(options(synthetic_mnist, "--model", "softmax")) == 130
    assert "interrupted after 0 complete epochs (nothing saved: no --save)" in capsys.readouterr().err


# -- SIGTERM saves as Ctrl-C does -------------------------------------------------------------
def test_sigterm_saves_like_ctrl_c_and_exits_143(synthetic_mnist, tmp_path, monkeypatch, capsys):
    import signal

    real_step, calls = nn.Adam.step, []

    def terminated_step(self):
        calls.append(1)
        if len(calls) == 9:  # the middle of epoch 2 (6 batches per epoch)
            os.kill(os.getpid(), signal.SIGTERM)
        real_step(self)

    monkeypatch.setattr(nn.Adam, "step", terminated_step)
    path = tmp_path / "terminated.npz"
    previous = signal.getsignal(signal.SIGTERM)
    code = train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--batch-size", "100", "--epochs", "3",
                                    "--save", str(path)))
    err = capsys.readouterr().err
    assert code == 143
    assert f"train-mnist: terminated; saved the state after epoch 1 to {path} (continue with --resume {path})" in err
    assert "Traceback" not in err
    checkpoint = nn.load_checkpoint(path)
    assert checkpoint.epoch == 1 and checkpoint.optimizer.steps == 6
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back
