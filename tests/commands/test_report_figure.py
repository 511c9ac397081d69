"""The picture nnscratch report writes (nnscratch/commands/report_figure.py), drawn directly: what each
panel holds (counts and accuracies, the most confident mistakes first, templates or filters, the
training curves), and every training history the report keeps can be drawn."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from nnscratch.commands.predict import percent
from nnscratch.commands.report_figure import draw_report
from nnscratch.metrics import confusion_matrix

pytest.importorskip("matplotlib")


def texts(figure):
    """Every text drawn in the figure, titles included, as strings."""
    return [t.get_text() for t in figure.findobj(lambda o: hasattr(o, "get_text")) if t.get_text()]


def sample(seed=0, n=60):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    probabilities = rng.dirichlet(np.ones(10) * 0.3, size=n)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return images, labels, probabilities


def test_the_confusion_panel_shows_every_nonzero_count_and_each_class_accuracy():
    import matplotlib.pyplot as plt

    images, labels, probabilities = sample()
    matrix = confusion_matrix(labels, probabilities.argmax(axis=1), 10)
    figure = draw_report("t: ", matrix, images, labels, probabilities, None, None)
    confusion_axes = next(a for a in figure.findobj(plt.Axes) if a.get_title().startswith("confusion matrix"))
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in confusion_axes.texts}
    expected = {(t, p): int(matrix[t, p]) for t in range(10) for p in range(10) if matrix[t, p] or t == p}
    assert cells == expected
    labels_shown = [t.get_text() for t in confusion_axes.get_yticklabels()]
    totals = matrix.sum(axis=1)
    assert labels_shown == [f"{c}  ({100 * matrix[c, c] / totals[c]:.1f}%)" if totals[c] else str(c) for c in range(10)]
    assert f"confusion matrix: {matrix.sum() - np.trace(matrix)} mistakes (red)" in texts(figure)
    assert "no training history in this checkpoint\n(train-mnist --save records it)" in texts(figure)
    assert "no Linear or Conv2D layer on the image to show" in texts(figure)
    plt.close(figure)


def test_the_mistakes_panel_shows_the_most_confident_mistakes_first():
    import matplotlib.pyplot as plt

    images, labels, probabilities = sample(1)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:24]
    figure = draw_report("t: ", confusion_matrix(labels, predicted, 10), images, labels, probabilities, None, None)
    titles = [t for t in texts(figure) if re.fullmatch(r"\d -> \d\n.*%", t)]
    assert len(titles) == 24
    expected = []
    for i in order:
        p = probabilities[i, predicted[i]]
        expected.append(f"{labels[i]} -> {predicted[i]}\n{percent(p)}")
    assert titles == expected
    shown = [a for a in figure.findobj(plt.Axes) if a.get_title() in expected]
    for axes, i in zip(shown, order):
        np.testing.assert_array_equal(axes.images[0].get_array(), images[i])
    plt.close(figure)


@pytest.mark.parametrize("layer, tiles, heading", [
    (nn.Linear(784, 10), [f"class {c}" for c in range(10)], "first layer: Linear's weights as 28x28 templates (blue"),
    (nn.Linear(784, 40), [f"unit {c}" for c in range(32)], "first layer: Linear's weights as 28x28 templates, the first 32 of 40 (blue"),
    (nn.Conv2D(1, 6, 5), [f"filter {c}" for c in range(6)], "first layer: Conv2D's 6 filters, 5x5 (blue"),
])  # fmt: skip
def test_the_weights_panel_shows_templates_or_filters(layer, tiles, heading):
    import matplotlib.pyplot as plt

    images, labels, probabilities = sample()
    figure = draw_report("t: ", np.eye(10, dtype=int), images, labels, probabilities, layer, None)
    shown = [a for a in figure.findobj(plt.Axes) if re.fullmatch(r"(class|unit|filter) \d+", a.get_title())]
    assert [a.get_title() for a in shown] == tiles
    for index, axes in enumerate(shown):
        tile = layer.weight[index, 0] if isinstance(layer, nn.Conv2D) else layer.weight[:, index].reshape(28, 28)
        np.testing.assert_array_equal(axes.images[0].get_array(), tile)
        low, high = axes.images[0].get_clim()
        assert low == -high == -np.abs(tile).max()  # symmetric: zero weight is white
    assert any(t.startswith(heading) for t in texts(figure))
    plt.close(figure)


def test_the_curves_panel_draws_train_and_test_per_epoch():
    import matplotlib.pyplot as plt

    history = [{"epoch": e, "loss": 1 / e, "accuracy": 1 - 0.1 / e, "val_loss": 1.1 / e, "val_accuracy": 1 - 0.2 / e}
               for e in (1, 2, 3)]  # fmt: skip
    images, labels, probabilities = sample()
    figure = draw_report("t: ", np.eye(10, dtype=int), images, labels, probabilities, None, history)
    loss = next(a for a in figure.findobj(plt.Axes) if a.get_title() == "training curves: loss")
    (train, test) = loss.get_lines()
    np.testing.assert_allclose(train.get_ydata(), [1, 1 / 2, 1 / 3])
    np.testing.assert_allclose(test.get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(test.get_ydata(), [1.1, 1.1 / 2, 1.1 / 3])
    plt.close(figure)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "epoch": st.integers(1, 1_000_000), "loss": st.floats(0, 1e100), "accuracy": st.floats(0, 1),
    "val_loss": st.none() | st.floats(0, 1e100), "val_accuracy": st.none() | st.floats(0, 1)}),
    min_size=1, max_size=5))  # fmt: skip
def test_every_history_read_training_keeps_can_be_drawn(history):
    import io

    import matplotlib.pyplot as plt

    from nnscratch.commands.report import read_training

    _, drawn, skipped = read_training({"train_mnist": {"history": history}})
    assert len(drawn) == len(history) and skipped == []
    images, labels, probabilities = sample(n=12)
    figure = draw_report("t: ", np.eye(10, dtype=int), images, labels, probabilities, None, drawn)
    figure.savefig(io.BytesIO(), format="png", dpi=20)
    plt.close(figure)
