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

from helpers.train_mnist_runs import FIXED_THREADS, options, run_to_params, without_timings


ROOT = Path(__file__).resolve().parents[2]
METRIC_KEYS = {"config", "history", "test_accuracy", "test_loss", "train_seconds", "samples_per_second",
               "confusion_matrix", "per_class_accuracy"}
HISTORY_KEYS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}


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


def test_same_seed_same_metrics_other_seed_different(synthetic_mnist, tmp_path, capsys):
    runs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        path = tmp_path / f"{name}.json"
        assert train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--epochs", "2", "--seed", seed,
                                        "--metrics", str(path), *FIXED_THREADS)) == 0
        runs[name] = without_timings(json.loads(path.read_text()))
    assert runs["a"] == runs["b"]
    assert runs["a"]["history"] != runs["c"]["history"]


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


def test_save_into_a_file_that_is_not_a_directory(synthetic_mnist, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert train_mnist_main(options(synthetic_mnist, "--save", str(tmp_path / "file" / "m.npz"))) == 2
    assert "does not exist" in capsys.readouterr().err


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


# -- a full disk: one line, the old file intact, the result still printed ----------------------
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
