"""nnscratch report: the PNG it writes, what each panel holds, and its errors.

In-process, on synthetic MNIST (``synthetic_mnist`` patches the pinned checksums in this interpreter).
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from nnscratch.cli import main, train_mnist_main
from nnscratch.data import scale_images


pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")


def data_options(data):
    return ["--data-dir", str(data.data_dir), "--mirror", data.url, "--quiet"]


def test_report_of_a_train_mnist_checkpoint(synthetic_mnist, tmp_path, capsys):
    save = tmp_path / "mlp.npz"
    assert train_mnist_main([*data_options(synthetic_mnist), "--model", "mlp", "--epochs", "2", "--save", str(save)]) == 0
    capsys.readouterr()
    out = tmp_path / "report.png"
    assert main(["report", str(save), "--out", str(out), *data_options(synthetic_mnist)]) == 0
    # the accuracy it states, recomputed from the checkpoint
    model = nn.load(save)[:-2]
    predicted = model.forward(scale_images(synthetic_mnist.x_test).reshape(100, 784)).argmax(axis=1)
    correct = int(np.sum(predicted == synthetic_mnist.y_test))
    assert capsys.readouterr().out == f"report: test accuracy {correct:.2f}% ({correct}/100); wrote {out}\n"
    picture = Image.open(out)
    assert picture.format == "PNG" and picture.size == (1700, 1200)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.png")] == []


def test_the_first_layer_shown_is_the_first_with_image_weights():
    from nnscratch.commands.report import _first_weighted_layer
    from nnscratch.reference import Conv2D as ReferenceConv2D

    conv, linear = ReferenceConv2D(1, 3, 3), nn.Linear(784, 10)
    assert _first_weighted_layer(nn.Sequential(nn.Flatten(), linear, nn.ReLU(), nn.Linear(10, 10))) is linear
    assert _first_weighted_layer(nn.Sequential(conv, nn.Flatten(), nn.Linear(3 * 26 * 26, 10))) is conv
    assert _first_weighted_layer(nn.Sequential(nn.Flatten(), nn.ReLU())) is None


def test_a_bare_conv_model_without_history(synthetic_mnist, tmp_path, capsys):
    model = nn.Sequential(nn.Conv2D(1, 4, 3, rng=np.random.default_rng(0)), nn.Flatten(),
                          nn.Linear(4 * 26 * 26, 10, rng=np.random.default_rng(1)))  # fmt: skip
    nn.save(model, tmp_path / "conv.npz")
    out = tmp_path / "r.png"
    assert main(["report", str(tmp_path / "conv.npz"), "--out", str(out), *data_options(synthetic_mnist)]) == 0
    assert Image.open(out).size == (1700, 1200)


@pytest.mark.parametrize("make, args, message", [
    (lambda d: None, [], r"report: error: .*missing.npz: no such checkpoint"),
    (lambda d: nn.save(nn.Sequential(nn.Linear(100, 10)), d / "missing.npz"), [],
     r"report: error: .*missing.npz: the network does not take a 28x28 digit"),
    (lambda d: nn.save(nn.Sequential(nn.Linear(784, 3)), d / "missing.npz"), [],
     r"report: error: .*missing.npz: the network gives 3 classes, MNIST has 10"),
    (lambda d: nn.save(nn.Sequential(nn.Linear(784, 10)), d / "missing.npz"), ["--out", "/nonexistent/r.png"],
     r"report: error: --out /nonexistent/r.png: the directory /nonexistent does not exist"),
])  # fmt: skip
def test_unusable_checkpoints_and_outputs_exit_2(synthetic_mnist, tmp_path, capsys, make, args, message):
    make(tmp_path)
    code = main(["report", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r.png"), *args,
                 *data_options(synthetic_mnist)])  # fmt: skip
    assert code == 2
    assert re.fullmatch(message + r".*\n", capsys.readouterr().err)
    assert not (tmp_path / "r.png").exists()


def test_without_matplotlib_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    nn.save(nn.Sequential(nn.Linear(784, 10)), tmp_path / "m.npz")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "matplotlib" else object())
    assert main(["report", str(tmp_path / "m.npz"), "--out", str(tmp_path / "r.png")]) == 2
    assert capsys.readouterr().err == ("report: error: report needs matplotlib, which is not installed: "
                                       "pip install 'nnscratch[plot]'\n")


def test_mnist_that_cannot_be_loaded_exits_1(tmp_path, dead_url, capsys):
    nn.save(nn.Sequential(nn.Linear(784, 10)), tmp_path / "m.npz")
    code = main(["report", str(tmp_path / "m.npz"), "--out", str(tmp_path / "r.png"),
                 "--data-dir", str(tmp_path / "mnist"), "--mirror", dead_url, "--quiet"])  # fmt: skip
    assert code == 1
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()


def test_the_first_weighted_layer_is_found_inside_the_nested_blocks_inference_model_keeps():
    from nnscratch.commands.report import _first_weighted_layer
    from nnscratch.inference import inference_model

    conv, linear = nn.Conv2D(1, 2, 3, rng=0), nn.Linear(784, 10, rng=0)
    net = nn.Sequential(nn.Sequential(conv, nn.ReLU()), nn.Flatten(), nn.Linear(2 * 26 * 26, 10, rng=0),
                        nn.SoftmaxCrossEntropy(), nn.Mean())
    assert _first_weighted_layer(inference_model(net)) is conv
    assert _first_weighted_layer(inference_model(nn.Sequential(nn.Flatten(), nn.Sequential(linear)))) is linear
    assert _first_weighted_layer(inference_model(nn.Sequential(nn.Flatten(), nn.ReLU()))) is None


# -- the checkpoint's metadata: trusted only as far as it checks out ------------------------------------
def good_history(epochs=3):
    return [{"epoch": e, "loss": 1 / e, "accuracy": 0.9, "val_loss": 1.1 / e, "val_accuracy": None, "lr": 0.1,
             "seconds": 1.0} for e in range(1, epochs + 1)]  # fmt: skip


@pytest.mark.parametrize("metadata, drawn, note", [
    ({"train_mnist": None}, 0, "its train_mnist metadata is a NoneType, not a mapping: not used"),
    ({"train_mnist": {"history": good_history()[:1] + [{**good_history()[1], "epoch": "2"}]}}, 1,
     "1 of its 2 history records skipped, not train-mnist epoch records (record 2: epoch '2', expected an int"),
    ({"train_mnist": {"history": [{**r, "epoch": None} for r in good_history()]}}, 0,
     "3 of its 3 history records skipped, not train-mnist epoch records (record 1: epoch None, expected an int"),
    ({"train_mnist": {"history": [{**good_history()[0], "epoch": 1e300}]}}, 0, "(record 1: epoch 1e+300, expected"),
    ({"train_mnist": {"history": [{**r, "loss": {"a": 1}} for r in good_history(2)]}}, 0,
     "(record 1: loss {'a': 1}, expected a finite number within +-1e+100, ...)"),
    ({"train_mnist": {"config": "mlp", "history": good_history(2)}}, 2, "its config is a str, not a mapping: not used"),
])  # fmt: skip
def test_metadata_that_is_not_train_mnist_s_is_skipped_and_said(synthetic_mnist, tmp_path, capsys, metadata, drawn,
                                                                 note):
    import matplotlib.pyplot as plt

    from nnscratch.commands import report_figure

    figures = []
    real_draw = report_figure.draw_report

    def draw(**kwargs):
        figures.append(kwargs)
        return real_draw(**kwargs)

    nn.save(nn.Sequential(nn.Linear(784, 10, rng=0)), tmp_path / "m.npz", metadata=metadata)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_figure, "draw_report", draw)
        code = main(["report", str(tmp_path / "m.npz"), "--out", str(tmp_path / "r.png"), *data_options(synthetic_mnist)])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("report: test accuracy ")
    assert err.startswith(f"report: {tmp_path / 'm.npz'}: ") and note in err and "Traceback" not in err
    (drawn_with,) = figures
    assert len(drawn_with["history"] or []) == drawn and note in drawn_with["history_note"]
    assert Image.open(tmp_path / "r.png").size == (1700, 1200)
    plt.close("all")


def test_read_training_keeps_the_valid_records_sorted_and_reads_the_preset():
    from nnscratch.commands.report import read_training

    history = good_history(3)
    preset, drawn, skipped = read_training({"train_mnist": {"config": {"model": "mlp"},
                                                            "history": [history[2], "junk", history[0]]}})
    assert preset == "mlp" and [r["epoch"] for r in drawn] == [1, 3]
    assert drawn[0] == {k: history[0][k] for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")}
    assert skipped == ["1 of its 3 history records skipped, not train-mnist epoch records (record 2: a str, "
                       "not a mapping)"]
    assert read_training({}) == (None, [], [])
    assert read_training({"train_mnist": {"config": {"model": "x" * 500}}})[2] == [
        f"its config's model {'x' * 500!r:.40} is not a preset name: not shown"]
    for bad in (float("inf"), float("nan"), -1e101, True):
        assert read_training({"train_mnist": {"history": [{**history[0], "accuracy": bad}]}})[1] == []


@pytest.mark.parametrize("key, value, reason", [
    ("accuracy", 2.0, "accuracy 2.0, expected a number from 0 to 1"),
    ("val_accuracy", 90, "val_accuracy 90, expected a number from 0 to 1"),  # a percentage
    ("accuracy", -0.1, "accuracy -0.1, expected a number from 0 to 1"),
    ("loss", -1.5, "loss -1.5, expected a number from 0 to 1e+100"),
    ("val_loss", -1e-9, "val_loss -1e-09, expected a number from 0 to 1e+100"),
])
def test_read_training_skips_a_record_whose_curve_no_training_could_give(key, value, reason):
    from nnscratch.commands.report import read_training

    history = good_history(2)
    _, drawn, skipped = read_training({"train_mnist": {"history": [history[0], {**history[1], key: value}]}})
    assert [r["epoch"] for r in drawn] == [1]
    assert skipped == [f"1 of its 2 history records skipped, not train-mnist epoch records (record 2: {reason})"]
    for edge in (0, 1.0) if "accuracy" in key else (0.0, 1e100):  # the ends of the range are kept
        assert len(read_training({"train_mnist": {"history": [{**history[0], key: edge}]}})[1]) == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"])
RECORD = st.dictionaries(KEYS, JSON | st.integers(-3, 3) | st.floats(-1e101, 1e101), max_size=7)
METADATA = st.one_of(
    JSON,
    st.fixed_dictionaries({"train_mnist": JSON}),
    st.fixed_dictionaries({"train_mnist": st.fixed_dictionaries(
        {"config": JSON | st.fixed_dictionaries({"model": JSON}), "history": JSON | st.lists(RECORD, max_size=6)})}),
)


@settings(max_examples=300, deadline=None)
@given(METADATA)
def test_read_training_never_raises_and_keeps_only_drawable_records(metadata):
    from nnscratch.commands.report import CURVE_RANGES, CURVES, MAX_EPOCH, MAX_VALUE, read_training

    preset, history, skipped = read_training(metadata)
    assert preset is None or (isinstance(preset, str) and len(preset) <= 40)
    assert all(isinstance(note, str) and "\n" not in note for note in skipped)
    for record in history:
        assert type(record["epoch"]) is int and 1 <= record["epoch"] <= MAX_EPOCH
        for key in CURVES:
            value = record[key]
            assert (value is None and key.startswith("val_")) or (
                type(value) in (int, float) and CURVE_RANGES[key][0] <= value <= CURVE_RANGES[key][1] <= MAX_VALUE)


@pytest.mark.filterwarnings("error")  # a RuntimeWarning would be a second line on stderr
@pytest.mark.parametrize("weights, message", [
    (np.nan, r"7,840 weight values in 1 of its 2 parameter arrays are NaN or infinite \(did the training diverge\?\)"),
    (3e38, r"the network's scores are NaN or infinite for \d+ of the 100 test images: its predictions mean nothing"),
])  # fmt: skip
def test_non_finite_weights_or_scores_are_said_not_drawn_as_an_accuracy(synthetic_mnist, tmp_path, capsys, weights,
                                                                         message):
    model = nn.Sequential(nn.Linear(784, 10, rng=0))
    model[0].weight[...] = weights
    nn.save(model, tmp_path / "m.npz")
    assert main(["report", str(tmp_path / "m.npz"), "--out", str(tmp_path / "r.png"), *data_options(synthetic_mnist)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and re.fullmatch(rf"report: error: {re.escape(str(tmp_path / 'm.npz'))}: {message}.*\n", err)
    assert not (tmp_path / "r.png").exists()
