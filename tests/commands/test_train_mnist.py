"""The train-mnist command end to end, in-process on synthetic MNIST served from a loopback mirror.

In-process because ``synthetic_mnist`` patches the pinned checksums in this interpreter only.
"""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import main, train_mnist_main
from nnscratch.data import scale_images
from nnscratch.data.download import STALE_AFTER
from nnscratch.presets import PRESETS
from helpers.aged_files import aged, near_misses, snapshot

ROOT = Path(__file__).resolve().parents[2]
METRIC_KEYS = {"config", "history", "test_accuracy", "test_loss", "train_seconds", "samples_per_second",
               "confusion_matrix", "per_class_accuracy"}
HISTORY_KEYS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}


def options(data, *extra):
    return ["--data-dir", str(data.data_dir), "--mirror", data.url, "--quiet", *extra]


def without_timings(metrics):
    metrics = json.loads(json.dumps(metrics))
    for key in ("train_seconds", "samples_per_second"):
        metrics.pop(key)
    for record in metrics["history"]:
        record.pop("seconds")
    return metrics


def test_mlp_end_to_end_metrics_and_checkpoint(synthetic_mnist, tmp_path, capsys):
    metrics_path, save_path = tmp_path / "metrics.json", tmp_path / "model.npz"
    code = train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--epochs", "3", "--batch-size", "50",
                                    "--metrics", str(metrics_path), "--save", str(save_path)))
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1  # --quiet: the one final line, nothing else on stdout
    metrics = json.loads(metrics_path.read_text())
    assert set(metrics) == METRIC_KEYS
    lr = PRESETS["mlp"].lr
    assert metrics["config"] == {"model": "mlp", "epochs": 3, "batch_size": 50, "lr": lr, "optimizer": "adam",
                                 "momentum": 0.0, "weight_decay": 0.0, "schedule": "cosine", "shift": 0, "seed": 0,
                                 "limit": None}
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3]
    assert all(set(r) == HISTORY_KEYS for r in metrics["history"])
    # cosine: each epoch starts at lr (1 + cos(pi e / 3)) / 2
    assert [r["lr"] for r in metrics["history"]] == pytest.approx([lr, 0.75 * lr, 0.25 * lr])
    assert metrics["train_seconds"] == pytest.approx(sum(r["seconds"] for r in metrics["history"]))
    assert metrics["samples_per_second"] == pytest.approx(600 * 3 / metrics["train_seconds"])
    # the reported accuracy and loss, recomputed independently from the saved model
    net = nn.load(save_path)
    logits = net[:-2].forward(scale_images(synthetic_mnist.x_test).reshape(100, 784))
    accuracy = np.mean(logits.argmax(axis=1) == synthetic_mnist.y_test)
    assert metrics["test_accuracy"] == accuracy > 0.9  # the synthetic classes are easy to learn
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert metrics["test_loss"] == pytest.approx(-log_probs[np.arange(100), synthetic_mnist.y_test].mean(), rel=1e-3, abs=1e-6)
    assert metrics["history"][-1]["val_accuracy"] == accuracy
    # the confusion matrix, counted here one sample at a time from the saved model's answers
    expected = np.zeros((10, 10), dtype=int)
    for true, guess in zip(synthetic_mnist.y_test, logits.argmax(axis=1)):
        expected[true, guess] += 1
    assert metrics["confusion_matrix"] == expected.tolist()
    assert metrics["per_class_accuracy"] == [expected[c, c] / expected[c].sum() for c in range(10)]
    assert re.fullmatch(rf"test accuracy: {100 * accuracy:.2f}% \({round(accuracy * 100)}/100\), .*\n", out)
    checkpoint = nn.load_checkpoint(save_path)
    assert checkpoint.epoch == 3 and type(checkpoint.optimizer).__name__ == "Adam"


def test_softmax_preset_and_the_nnscratch_dispatch(synthetic_mnist, capsys):
    code = main(["train-mnist", "--model", "softmax", *options(synthetic_mnist)])
    out = capsys.readouterr().out
    assert code == 0
    accuracy = float(re.match(r"test accuracy: ([\d.]+)%", out).group(1))
    assert accuracy >= 90


def test_cnn_preset_runs_on_a_limit(synthetic_mnist, tmp_path, monkeypatch, capsys):
    from nnscratch import presets as models

    shifted = []
    real_shift = models.random_shift
    monkeypatch.setattr(models, "random_shift", lambda x, rng, s: shifted.append((len(x), s)) or real_shift(x, rng, s))
    metrics_path = tmp_path / "m.json"
    code = train_mnist_main(options(synthetic_mnist, "--epochs", "1", "--limit", "128", "--metrics", str(metrics_path)))
    assert code == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["config"]["model"] == "cnn" and metrics["config"]["limit"] == 128
    assert metrics["config"]["shift"] == PRESETS["cnn"].shift > 0
    assert shifted == [(64, PRESETS["cnn"].shift)] * 2  # every training batch, and no test batch
    assert metrics["samples_per_second"] == pytest.approx(128 / metrics["train_seconds"])


def test_progress_output_without_quiet(synthetic_mnist, capsys):
    code = train_mnist_main(["--data-dir", str(synthetic_mnist.data_dir), "--mirror", synthetic_mnist.url,
                             "--model", "softmax", "--epochs", "1"])
    captured = capsys.readouterr()
    assert code == 0
    assert "train-mnist: softmax (7,850 parameters)" in captured.err
    assert "epoch 1/1: loss" in captured.err
    lines = captured.out.splitlines()
    assert lines[0] == "confusion matrix (rows: true class, columns: predicted class)"
    assert lines[1].split() == ["true\\pred", *map(str, range(10)), "accuracy"]
    # one row per true class: its label, ten counts (or dots), its accuracy; the counts add up to the test set
    rows = [line.split() for line in lines[2:12]]
    assert [row[0] for row in rows] == [str(c) for c in range(10)]
    counts = [[0 if cell == "." else int(cell) for cell in row[1:11]] for row in rows]
    assert sum(map(sum, counts)) == 100
    correct = sum(counts[c][c] for c in range(10))
    assert lines[12].startswith(f"test accuracy: {correct:.2f}% ({correct}/100)")
    assert len(lines) == 13


# Bit for bit needs one BLAS thread count throughout: OpenBLAS rounds some products differently
# at another count, and --threads auto (the default) may change it as the machine's load changes.
FIXED_THREADS = ("--threads", "1")


def test_same_seed_same_metrics_other_seed_different(synthetic_mnist, tmp_path, capsys):
    runs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        path = tmp_path / f"{name}.json"
        assert train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--epochs", "2", "--seed", seed,
                                        "--metrics", str(path), *FIXED_THREADS)) == 0
        runs[name] = without_timings(json.loads(path.read_text()))
    assert runs["a"] == runs["b"]
    assert runs["a"]["history"] != runs["c"]["history"]


def run_to_params(synthetic_mnist, tmp_path, name, *extra):
    path = tmp_path / f"{name}.npz"
    assert train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--batch-size", "64", *extra, *FIXED_THREADS,
                                    "--save", str(path), "--metrics", str(tmp_path / f"{name}.json"))) == 0
    return path, [p.copy() for p in nn.load(path).parameters]


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


@pytest.mark.parametrize(
    "optimizer, schedule, extra, weight_decay, momentum",
    [("adamw", "one-cycle", (), 0.01, 0.0),  # AdamW's own default decay, not the preset's 0
     ("adamw", "step", ("--weight-decay", "0"), 0.0, 0.0),
     ("rmsprop", "warmup-cosine", ("--momentum", "0.5", "--lr", "1e-3"), 0.0, 0.5),
     ("adagrad", "exponential", ("--weight-decay", "1e-3", "--lr", "0.05"), 1e-3, 0.0),
     ("sgd", "cosine", ("--momentum", "0.9", "--lr", "0.05"), 0.0, 0.9)],
)
def test_every_optimizer_and_schedule_trains_and_is_saved(synthetic_mnist, tmp_path, optimizer, schedule, extra,
                                                            weight_decay, momentum):
    from nnscratch.presets import make_schedule

    path, _ = run_to_params(synthetic_mnist, tmp_path, "run", "--epochs", "2", "--optimizer", optimizer,
                            "--schedule", schedule, *extra)
    metrics = json.loads((tmp_path / "run.json").read_text())
    config = metrics["config"]
    assert (config["optimizer"], config["schedule"], config["weight_decay"], config["momentum"]) == (
        optimizer, schedule, weight_decay, momentum)
    rates = make_schedule(schedule, config["lr"], 2)
    assert [r["lr"] for r in metrics["history"]] == [rates(0.0), rates(1.0)]
    assert metrics["test_accuracy"] > 0.5  # it learned (ten easy synthetic classes)
    loaded = nn.load_checkpoint(path).optimizer
    assert type(loaded).__name__ == {"adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad", "sgd": "SGD"}[optimizer]
    assert loaded.weight_decay == weight_decay and getattr(loaded, "momentum", 0.0) == momentum
    assert loaded.steps == 2 * 10  # 600 samples in batches of 64


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


def test_resume_refuses_a_contradicting_configuration(synthetic_mnist, tmp_path, capsys):
    path, _ = run_to_params(synthetic_mnist, tmp_path, "a", "--epochs", "1")
    capsys.readouterr()
    synthetic_mnist.url.requests.clear()
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(path), "--model", "cnn")) == 2
    assert "--model cnn contradicts the checkpoint" in capsys.readouterr().err
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(path), "--lr", "0.5")) == 2
    assert "--lr 0.5 contradicts the checkpoint" in capsys.readouterr().err
    foreign = tmp_path / "foreign.npz"
    nn.save(nn.Sequential(nn.Linear(784, 10), nn.SoftmaxCrossEntropy(), nn.Mean()), foreign)
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(foreign))) == 2
    assert "was not written by train-mnist --save" in capsys.readouterr().err
    assert synthetic_mnist.url.requests == []


def test_non_finite_loss_stops_with_a_clear_message(synthetic_mnist, tmp_path, capsys):
    path = tmp_path / "m.npz"
    code = train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--optimizer", "sgd", "--lr", "1e30", "--schedule", "constant",
                                    "--save", str(path)))
    captured = capsys.readouterr()
    assert code == 1
    assert re.search(r"train-mnist: training diverged: the loss is (nan|inf) at epoch 1, batch \d+/5; "
                     r"the learning rate \(lr=1e\+30\) is probably too high, try a lower one, e\.g\. --lr 1e\+29\n",
                     captured.err)
    assert "Traceback" not in captured.err and captured.out == ""
    assert not path.exists()  # no epoch completed: nothing to save


def test_divergence_after_a_saved_epoch_keeps_that_checkpoint(synthetic_mnist, tmp_path, monkeypatch, capsys):
    real_forward, calls = nn.SoftmaxCrossEntropy.forward, []

    def forward(self, x, targets=None, *args):
        calls.append(1)
        loss = real_forward(self, x, targets, *args)
        return loss * np.nan if len(calls) == 8 else loss  # calls: 5 batches, 1 validation, then epoch 2

    monkeypatch.setattr(nn.SoftmaxCrossEntropy, "forward", forward)
    path = tmp_path / "m.npz"
    assert train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--save", str(path))) == 1
    err = capsys.readouterr().err
    assert "the loss is nan at epoch 2, batch 2/5" in err
    assert f"{path} holds the state after epoch 1" in err
    assert nn.load_checkpoint(path).epoch == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "-1"], "--epochs must be >= 0, got -1"),
        (["--lr", "0"], "--lr must be a finite number > 0, got 0"),
        (["--lr", "-0.1"], "--lr must be a finite number > 0, got -0.1"),
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--momentum", "1"], r"--momentum must be in \[0, 1\), got 1"),
        (["--momentum", "0.9"], "--momentum applies to --optimizer sgd or rmsprop only, got --optimizer adam"),
        (["--momentum", "0.9", "--optimizer", "adagrad"], "--momentum applies to --optimizer sgd or rmsprop only"),
        (["--momentum", "0.9", "--optimizer", "adamw"], "--momentum applies to --optimizer sgd or rmsprop only"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
        (["--limit", "0"], "--limit must be >= 1, got 0"),
        (["--shift", "-1"], "--shift must be between 0 and 8 pixels, got -1"),
        (["--epochs", "x"], "--epochs must be an int, got 'x'"),
        (["--batch-size", "2.5"], r"--batch-size must be an int, got '2\.5'"),
        (["--lr", "fast"], "--lr must be a number, got 'fast'"),
        (["--momentum", "high"], "--momentum must be a number, got 'high'"),
        (["--weight-decay", "1e-4x"], "--weight-decay must be a number, got '1e-4x'"),
        (["--shift", "1.0"], r"--shift must be an int, got '1\.0'"),
        (["--seed", "x"], "--seed must be an int, got 'x'"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--limit", ""], "--limit must be an int, got ''"),
        (["--threads", "0"], "--threads must be auto or an int from 1 to 1024, got 0"),
        (["--threads", "many"], "--threads must be auto or an int >= 1, got 'many'"),
        (["--save", "{tmp}/no/such/dir/m.npz"], "--save .*m.npz: the directory .*dir does not exist"),
        (["--save", "{tmp}"], "--save .*: is a directory, expected a file path"),
        (["--metrics", "{tmp}/missing/m.json"], "--metrics .*does not exist"),
        (["--resume", "{tmp}/none.npz"], "--resume .*none.npz: no such file"),
        (["--resume", "{tmp}/junk.npz"], r"--resume: .*junk\.npz: not a readable nnscratch checkpoint"),
    ],
)
def test_invalid_options_fail_before_any_work(synthetic_mnist, tmp_path, capsys, argv, message):
    (tmp_path / "junk.npz").write_bytes(b"junk" * 100)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert train_mnist_main(options(synthetic_mnist, *argv)) == 2
    err = capsys.readouterr().err
    assert re.search(f"train-mnist: error: {message}", err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1  # one line, no usage block
    assert synthetic_mnist.url.requests == []  # nothing downloaded: the check came first
    assert not synthetic_mnist.data_dir.exists()


@pytest.mark.parametrize("argv, expected", [([], "auto"), (["--threads", "auto"], "auto"), (["--threads", "2"], 2)])
def test_threads_option_reaches_fit(synthetic_mnist, monkeypatch, argv, expected):
    import nnscratch.train

    real_fit, seen = nnscratch.train.fit, []

    def spy(*args, threads, **kwargs):
        seen.append(threads)
        return real_fit(*args, threads=threads, **kwargs)

    monkeypatch.setattr(nnscratch.train, "fit", spy)
    assert train_mnist_main(options(synthetic_mnist, "--model", "softmax", "--epochs", "1", *argv)) == 0
    assert seen == [expected]


def test_save_into_a_file_that_is_not_a_directory(synthetic_mnist, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert train_mnist_main(options(synthetic_mnist, "--save", str(tmp_path / "file" / "m.npz"))) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_model_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        train_mnist_main(["--model", "resnet"])
    assert info.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_plot_without_matplotlib_fails_before_training(synthetic_mnist, tmp_path, monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
    assert train_mnist_main(options(synthetic_mnist, "--plot", str(tmp_path / "p.png"))) == 2
    assert "--plot needs matplotlib, which is not installed: pip install 'nnscratch[plot]'" in capsys.readouterr().err
    assert synthetic_mnist.url.requests == []


def test_plot_writes_a_png(synthetic_mnist, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    assert train_mnist_main(options(synthetic_mnist, "--model", "softmax", "--plot", str(path))) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("option, name", [("--metrics", "run.json"), ("--plot", "run.png")])
def test_outputs_get_the_permissions_the_umask_gives_a_new_file(synthetic_mnist, tmp_path, umask, option, name):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    out.mkdir()
    umask(0o027)  # written through a 0o600 temporary file, which the output must not stay
    argv = options(synthetic_mnist, "--model", "softmax", "--epochs", "1", option, str(out / name))
    assert train_mnist_main([*argv, "--save", str(out / "run.npz")]) == 0
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in out.iterdir()} == {name: 0o640, "run.npz": 0o640}


# -- leftovers of runs killed while writing --metrics or --plot -------------------------------------
@pytest.mark.parametrize("option, name", [("--metrics", "run.json"), ("--plot", "run.png")])
def test_stale_temporaries_of_killed_runs_are_removed_before_the_output_is_written(
        synthetic_mnist, tmp_path, option, name):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    out.mkdir()
    hour = STALE_AFTER
    stale = [aged(out / f".{name}.x7k_2q9a.part", 2 * hour), aged(out / f".{name}.0abc1def.part", 30 * 24 * hour)]
    kept = {
        aged(out / f".{name}.fr3sh0ne.part", hour - 60, b"another run writing now"),
        # not this output's temporaries: other names, other shapes of name, a directory
        aged(out / "notes.txt", 2 * hour, b"mine"),
        *near_misses(out, name, "part", 2 * hour, other_suffix="download"),
    }
    before = snapshot(kept)
    argv = options(synthetic_mnist, "--model", "softmax", "--epochs", "1", option, str(out / name))
    assert train_mnist_main(argv) == 0
    assert not any(path.exists() for path in stale)
    assert snapshot(kept) == before
    assert sorted(os.listdir(out)) == sorted([name, *(path.name for path in kept)])


def test_a_stale_temporary_that_cannot_be_removed_does_not_stop_the_metrics(synthetic_mnist, tmp_path, monkeypatch):
    stuck = aged(tmp_path / ".run.json.x7k_2q9a.part", 2 * STALE_AFTER)
    real_unlink, refused = os.unlink, []

    def unlink(path, *args, **kwargs):
        if os.fspath(path) == os.fspath(stuck):
            refused.append(path)
            raise PermissionError(13, "Permission denied")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    argv = options(synthetic_mnist, "--model", "softmax", "--epochs", "1", "--metrics", str(tmp_path / "run.json"))
    assert train_mnist_main(argv) == 0
    assert refused and stuck.exists()
    assert json.loads((tmp_path / "run.json").read_text())["config"]["model"] == "softmax"


def test_a_dead_mirror_exits_1_with_the_download_message(dead_url, tmp_path, capsys):
    code = train_mnist_main(["--data-dir", str(tmp_path / "d"), "--mirror", dead_url, "--quiet", "--model", "softmax"])
    err = capsys.readouterr().err
    assert code == 1
    assert dead_url in err and "--mirror" in err and "Traceback" not in err


def test_help_says_what_each_schedule_does_and_lists_every_optimizer(capsys):
    from nnscratch.presets import OPTIMIZERS, SCHEDULES

    with pytest.raises(SystemExit) as exit_info:
        main(["train-mnist", "--help"])
    assert exit_info.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even after a hyphen
    assert "{" + ",".join(OPTIMIZERS) + "}" in text and "{" + ",".join(SCHEDULES) + "}" in text
    for name, what in SCHEDULES.items():
        assert "".join(f"{name}: {what}".split()) in text


def test_script_wrapper_help():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_mnist.py"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for option in ("--model", "--epochs", "--batch-size", "--lr", "--optimizer", "--momentum", "--weight-decay",
                   "--seed", "--data-dir", "--mirror", "--limit", "--save", "--resume", "--metrics", "--plot",
                   "--quiet"):
        assert option in result.stdout


@pytest.mark.slow
def test_mlp_one_epoch_on_real_mnist(mnist_mirror, tmp_path, capsys):
    metrics_path = tmp_path / "m.json"
    code = train_mnist_main(["--data-dir", str(tmp_path / "mnist"), "--mirror", mnist_mirror, "--quiet",
                             "--model", "mlp", "--epochs", "1", "--metrics", str(metrics_path)])
    assert code == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["test_accuracy"] >= 0.97
    assert len(metrics["history"]) == 1


# -- no output over another file of the run ----------------------------------------------------
@pytest.mark.parametrize("first, second, spelling", [
    ("--save", "--metrics", "same"), ("--resume", "--metrics", "same"), ("--resume", "--save", "relative"),
    ("--metrics", "--plot", "symlink"), ("--save", "--plot", "dotdot"), ("--resume", "--plot", "hardlink"),
])
def test_two_options_naming_one_file_are_refused_before_any_work(synthetic_mnist, tmp_path, monkeypatch, capsys,
                                                                 first, second, spelling):
    if second == "--plot":
        pytest.importorskip("matplotlib")
    target = tmp_path / "run.out"
    if first == "--resume":
        run_to_params(synthetic_mnist, tmp_path, "run", "--model", "softmax", "--epochs", "1")
        os.replace(tmp_path / "run.npz", target)
        capsys.readouterr()
        synthetic_mnist.url.requests.clear()
    before = target.read_bytes() if target.exists() else None
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    other = {"same": str(target), "relative": "../run.out", "dotdot": str(tmp_path / "sub" / ".." / "run.out")}.get(spelling)
    if spelling == "symlink":
        other = str(tmp_path / "link.out")
        os.symlink(target, other)
    if spelling == "hardlink":
        other = str(tmp_path / "hard.out")
        os.link(target, other)
    assert train_mnist_main(options(synthetic_mnist, first, str(target), second, other)) == 2
    err = capsys.readouterr().err
    assert f"train-mnist: error: {first} {target} and {second} {other} name the same file; give each its own path" in err
    assert len(err.strip().splitlines()) == 1
    assert synthetic_mnist.url.requests == []
    assert (target.read_bytes() if target.exists() else None) == before


# -- a full disk: one line, the old file intact, the result still printed ----------------------
@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(name, after=0)``: writing a file named ``name`` fails with ENOSPC from its
    (after+1)-th write on, at the fsync that makes it durable, as a full file system fails."""
    import errno

    import nnscratch.atomic_file as atomic_file

    real_fsync, writes, limits = os.fsync, {}, {}

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        for name, after in limits.items():
            if f"/.{name}." in target:  # atomic_write's temporary .NAME.<random>.part
                writes[name] = writes.get(name, 0) + 1
                if writes[name] > after:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    def install(name, after=0):
        if not os.path.exists("/proc/self/fd"):
            pytest.skip("needs /proc/self/fd to tell the files apart")
        limits[name] = after
        monkeypatch.setattr(atomic_file.os, "fsync", fsync)
        return writes

    return install


def test_a_full_disk_is_one_line_and_the_run_still_reports(synthetic_mnist, tmp_path, capsys, full_disk):
    save_path, metrics_path = tmp_path / "m.npz", tmp_path / "metrics.json"
    metrics_path.write_text("old metrics")
    full_disk("m.npz", after=1)  # the first epoch's checkpoint is written, the second's is not
    full_disk("metrics.json")
    code = train_mnist_main(options(synthetic_mnist, "--model", "softmax", "--epochs", "2",
                                    "--save", str(save_path), "--metrics", str(metrics_path)))
    captured = capsys.readouterr()
    assert code == 1
    assert re.search(r"test accuracy: \d+\.\d\d% ", captured.out)  # the result is still printed
    assert f"train-mnist: could not write the checkpoint {save_path}: No space left on device; the previous file there is unchanged\n" in captured.err
    assert f"train-mnist: could not write the metrics {metrics_path}: No space left on device; the previous file there is unchanged\n" in captured.err
    assert "Traceback" not in captured.err
    assert nn.load_checkpoint(save_path).epoch == 1  # the last checkpoint that could be written, intact
    assert metrics_path.read_text() == "old metrics"
    assert sorted(os.listdir(tmp_path)) == ["cache", "m.npz", "metrics.json", "mirror"]  # no temporary left


# -- --resume checks the training metadata before any work --------------------------------------
def edit_metadata(path, change):
    """Rewrite a checkpoint's train_mnist metadata (or its model) through save, keeping the rest."""
    checkpoint = nn.load_checkpoint(path)
    keep_optimizer = change(checkpoint.metadata["train_mnist"], checkpoint) != "no optimizer"
    nn.save(checkpoint.model, path, optimizer=checkpoint.optimizer if keep_optimizer else None,
            epoch=checkpoint.epoch, metadata=checkpoint.metadata)


@pytest.mark.parametrize("change, message", [
    (lambda m, c: m["config"].update(batch_size="50"), r"the checkpoint's config has batch_size='50', expected an int"),
    (lambda m, c: m["config"].update(lr=[1]), r"the checkpoint's config has lr=\[1\], expected a finite number"),
    (lambda m, c: m["config"].update(model=["mlp"]), r"this checkpoint was not written by train-mnist --save"),
    (lambda m, c: m["config"].update(schedule="linear"), r"config has schedule='linear', expected one of constant, step, exponential, cosine, warmup-cosine, one-cycle"),
    (lambda m, c: m["config"].update(batch_size=0), r"the checkpoint's config is out of range \(--batch-size must be >= 1"),
    (lambda m, c: m["config"].update(epochs=True), r"config has epochs=True, expected an int"),
    (lambda m, c: m.update(history={"a": 1}), r"the checkpoint's history must list its 1 epochs"),
    (lambda m, c: m.update(history=[]), r"the checkpoint's history must list its 1 epochs"),
    (lambda m, c: m["history"][0].update(loss="low"), r"history record 1 has loss='low', expected a finite number"),
    (lambda m, c: m["history"][0].update(epoch=2), r"history record 1 is not a train-mnist epoch record"),
    (lambda m, c: m["history"][0].pop("seconds"), r"history record 1 is not a train-mnist epoch record"),
    (lambda m, c: m.update(shuffle_state={"bit_generator": "MT19937"}), r"the shuffling state is missing or invalid"),
    (lambda m, c: m["config"].update(model="mlp"), r"the saved network is not this version's mlp preset \(its config says --model mlp\); presets change between versions"),
    (lambda m, c: m["config"].update(optimizer="adam"), r"the checkpoint holds a SGD, its config says --optimizer adam"),
    (lambda m, c: "no optimizer", r"the checkpoint holds no optimizer state"),
])
def test_resume_refuses_bad_training_metadata_before_any_work(synthetic_mnist, tmp_path, capsys, change, message):
    path, _ = run_to_params(synthetic_mnist, tmp_path, "a", "--model", "softmax", "--epochs", "1")
    edit_metadata(path, change)
    capsys.readouterr()
    synthetic_mnist.url.requests.clear()
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(path), "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert re.search(rf"train-mnist: error: --resume {re.escape(str(path))}: .*{message}", err), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert synthetic_mnist.url.requests == []  # refused before loading the data, let alone training


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
