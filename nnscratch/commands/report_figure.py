"""The picture ``nnscratch report`` writes: four panels in one matplotlib figure.

    +-------------------------+--------------------------------+
    | confusion matrix        | training curves (or a note)    |
    +-------------------------+--------------------------------+
    | most confident mistakes | first layer's weights          |
    +-------------------------+--------------------------------+

Imported only by the report command, so that matplotlib is needed only there.
"""

from __future__ import annotations

import textwrap

import numpy as np


def draw_report(title, matrix, images, labels, probabilities, first_layer, history, mistakes=24, max_templates=32,
                history_note=None):
    """The figure (the caller saves and closes it): ``mistakes`` most confident mistakes, and at most
    ``max_templates`` of a first layer's units as 28x28 templates or filters. ``history_note``: what of
    the checkpoint's training record could not be drawn, said in the curves panel.

    Shape:
        matrix (10, 10) counts [true, predicted]; images (N, 28, 28) uint8; labels (N,);
        probabilities (N, 10); history: train-mnist's per-epoch records (``report.read_training``), or None
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(17, 12), layout="constrained")
    accuracy = np.trace(matrix) / matrix.sum()
    figure.suptitle(f"{title}test accuracy {100 * accuracy:.2f}% ({np.trace(matrix):,} of {matrix.sum():,})",
                    fontsize=16, fontweight="bold")  # fmt: skip
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.0, 0.9])
    top_left, top_right = top.subfigures(1, 2, width_ratios=[1.0, 1.15])
    bottom_left, bottom_right = bottom.subfigures(1, 2, width_ratios=[1.0, 1.15])
    _confusion(top_left, matrix)
    _curves(top_right, history, history_note)
    _mistakes(bottom_left, images, labels, probabilities, mistakes)
    _weights(bottom_right, first_layer, max_templates)
    return figure


def _confusion(panel, matrix):
    """Counts in every cell; the diagonal in green, the mistakes in reds scaled to the largest mistake."""
    from matplotlib.colors import ListedColormap

    axes = panel.subplots()
    classes = len(matrix)
    mistakes = matrix.astype(float).copy()
    np.fill_diagonal(mistakes, np.nan)  # drawn separately: it would wash out every mistake's colour
    mistakes[mistakes == 0] = np.nan  # no mistake: a white cell
    off_diagonal = matrix[~np.eye(classes, dtype=bool)]
    worst = max(float(off_diagonal.max()), 1.0)
    axes.imshow(mistakes, cmap="Reds", vmin=0, vmax=worst * 1.15)
    diagonal = np.where(np.eye(classes, dtype=bool), 1.0, np.nan)
    axes.imshow(diagonal, cmap=ListedColormap(["#b7e1b0"]))
    for t in range(classes):
        for p in range(classes):
            count = int(matrix[t, p])
            if count == 0 and t != p:
                continue
            dark = t != p and count > 0.6 * worst
            axes.text(p, t, str(count), ha="center", va="center", fontsize=9,
                      color="white" if dark else "black", fontweight="bold" if t != p else "normal")  # fmt: skip
    axes.set_xticks(range(classes))
    axes.set_yticks(range(classes))
    totals = matrix.sum(axis=1)
    per_class = [f"{t}  ({100 * matrix[t, t] / totals[t]:.1f}%)" if totals[t] else f"{t}" for t in range(classes)]
    axes.set_yticklabels(per_class)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class  (its accuracy)")
    axes.xaxis.set_label_position("top")
    axes.xaxis.tick_top()
    axes.set_title(f"confusion matrix: {int(matrix.sum() - np.trace(matrix))} mistakes (red)", fontsize=13)


def _curves(panel, history, note=None):
    if history is None:
        axes = panel.subplots()
        axes.axis("off")
        text = "no training history in this checkpoint\n(train-mnist --save records it)" if note is None else \
            "training history not drawn:\n" + textwrap.fill(note, 70)
        axes.text(0.5, 0.5, text, ha="center", va="center", fontsize=13, color="0.4")
        return
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    left, right = panel.subplots(1, 2)
    for axes, key, name in ((left, "loss", "loss"), (right, "accuracy", "accuracy")):
        axes.plot(epochs, [r[key] for r in history], marker="o", label="train")
        test = [r[f"val_{key}"] for r in history]
        if all(v is not None for v in test):
            axes.plot(epochs, test, marker="o", label="test")
        axes.set_xlabel("epoch")
        axes.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        if len(epochs) <= 15:
            axes.set_xticks(epochs)
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(f"training curves: {name}", fontsize=13)
        axes.grid(alpha=0.3)
        axes.legend()
    if note is not None or len(epochs) == 1:  # one point each: say so, or the panel looks broken
        text = textwrap.fill(note, 120) if note is not None else "one epoch: one point per curve"
        panel.text(0.5, 0.02, text, ha="center", fontsize=10, color="0.4")


def _mistakes(panel, images, labels, probabilities, count, columns=8):
    from .predict import percent

    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    shown = wrong[np.argsort(-confidence, kind="stable")][:count]
    panel.suptitle(f"most confident mistakes ({len(shown)} of {len(wrong)}): true -> predicted, probability",
                   fontsize=13)  # fmt: skip
    rows = max(1, -(-len(shown) // columns))
    grid = panel.subplots(rows, columns, squeeze=False)
    for axes, index in zip(grid.ravel(), list(shown) + [None] * (rows * columns - len(shown))):
        axes.axis("off")
        if index is None:
            continue
        axes.imshow(images[index], cmap="gray_r", vmin=0, vmax=255)  # dark ink on white, as people write
        p = probabilities[index, predicted[index]]
        shown = percent(p)  # never a rounded-up "100%"
        axes.set_title(f"{labels[index]} -> {predicted[index]}\n{shown}", fontsize=10, color="#b00000")
    if len(shown) == 0:
        grid[0, 0].text(0, 0.5, "no mistakes on the test set", fontsize=12)


def _weights(panel, layer, max_templates):
    if layer is None:
        axes = panel.subplots()
        axes.axis("off")
        axes.text(0.5, 0.5, "no Linear or Conv2D layer on the image to show", ha="center", va="center", fontsize=13)
        return
    kind = type(layer).__name__
    if layer.weight.ndim == 4:
        weight = layer.weight  # (out, in, kh, kw): each filter's first input channel (MNIST has one)
        tiles = [weight[f, 0] for f in range(min(weight.shape[0], max_templates))]
        names = [f"filter {f}" for f in range(len(tiles))]
        some = "" if weight.shape[0] <= max_templates else f", the first {len(tiles)} of {weight.shape[0]}"
        heading = (f"first layer: {kind}'s {weight.shape[0]} filters, {weight.shape[2]}x{weight.shape[3]}{some} "
                   "(blue negative, red positive)")  # fmt: skip
    else:
        weight = layer.weight  # (784, out): column j is unit j's template over the image
        units = weight.shape[1]
        tiles = [weight[:, j].reshape(28, 28) for j in range(min(units, max_templates))]
        names = [f"class {j}" if units == 10 else f"unit {j}" for j in range(len(tiles))]
        some = "" if units <= max_templates else f", the first {len(tiles)} of {units}"
        heading = f"first layer: {kind}'s weights as 28x28 templates{some} (blue negative, red positive)"
    panel.suptitle(heading, fontsize=13)
    columns = 5 if len(tiles) <= 10 else 8  # ten class templates as two rows of five, larger
    rows = -(-len(tiles) // columns)
    grid = panel.subplots(rows, columns, squeeze=False)
    for axes, tile, name in zip(grid.ravel(), tiles, names):
        limit = float(np.abs(tile).max()) or 1.0  # each tile its own symmetric scale: 0 is always white
        axes.imshow(tile, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_title(name, fontsize=9)
    for axes in grid.ravel():
        axes.set_xticks([])
        axes.set_yticks([])
    for axes in grid.ravel()[len(tiles) :]:
        axes.axis("off")
