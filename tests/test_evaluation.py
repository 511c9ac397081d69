"""evaluate / predict (nnscratch/evaluation.py): batches equal the full batch, eval mode put back,
bad arguments refused, and the memory of their batches handed back when they finish; a label no
class can match is refused, naming the labels given and the number of classes, while the loss's
ignore_index still counts for nothing (issue 25)."""

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.evaluation import evaluate, predict

from helpers.training import ReleaseSpy, blobs, ce_loss, reference_loss, spy_model


def test_predict_and_evaluate_in_batches_equal_full_batch():
    x, y = blobs(103, dtype=np.float64)
    model = nn.Sequential(nn.Linear(2, 8, dtype=np.float64, rng=0), nn.ReLU(), nn.Linear(8, 3, dtype=np.float64, rng=1))
    full = model.forward(x)
    batched = predict(model, x, batch_size=7)
    assert batched.shape == (103, 3) and batched.dtype == np.float64
    np.testing.assert_allclose(batched, full, rtol=1e-12, atol=1e-12)
    result = evaluate(model, x, y, batch_size=10, loss=ce_loss())
    assert result["accuracy"] == np.mean(full.argmax(axis=1) == y)
    assert result["loss"] == pytest.approx(reference_loss(full, y), rel=1e-10)
    assert set(evaluate(model, x, y, batch_size=1000)) == {"accuracy"}
    one_hot = np.eye(3)[y]
    assert evaluate(model, x, one_hot, batch_size=4)["accuracy"] == result["accuracy"]


def test_evaluate_and_predict_reject_bad_arguments():
    model = nn.Linear(2, 3, rng=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        predict(model, np.zeros((4, 2), np.float32), batch_size=0)
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        evaluate(model, np.zeros((4, 2), np.float32), np.zeros(3, int))
    with pytest.raises(ValueError, match=r"scores of shape \(N, C\)"):
        evaluate(nn.Sequential(nn.Linear(2, 3, rng=0), nn.Mean()), np.zeros((4, 2), np.float32), np.zeros(4, int))


@pytest.mark.parametrize("start", [True, False])
def test_evaluate_and_predict_run_in_eval_mode_and_put_the_mode_back(start):
    x, y = blobs(30)
    spy, model = spy_model()
    model.train(start)
    model[0].train(not start)  # a mix of modes comes back as it was, layer by layer
    predict(model, x, batch_size=10)
    evaluate(model, x, y, batch_size=15, loss=ce_loss())
    assert spy.seen == [False] * 5
    assert (model.training, model[0].training, spy.training) == (start, not start, start)


class PlainContainer:
    """A container that is not a Sequential: anything with a ``layers`` list is walked."""

    def __init__(self, *layers):
        self.layers = list(layers)
        self.parameters = [p for layer in layers for p in layer.parameters]
        self.parameters_deltas = [d for layer in layers for d in layer.parameters_deltas]

    def forward(self, x, *args):
        for layer in self.layers:
            x = layer.forward(x, *args)
        return x

    def backward(self, delta):
        for layer in reversed(self.layers):
            delta = layer.backward(delta)
        return delta


def small_cnn(rng=0):
    return nn.Sequential(nn.Conv2D(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 3, rng=rng + 1))


def test_predict_and_evaluate_release_every_nested_layer_once_when_they_finish():
    spies = [ReleaseSpy() for _ in range(3)]
    model = nn.Sequential(spies[0], PlainContainer(spies[1], nn.Sequential(spies[2])), nn.Linear(2, 3, rng=0))
    x, y = blobs(25)
    predict(model, x, batch_size=10)
    assert [spy.releases for spy in spies] == [[3]] * 3  # once, after the last of the 3 batches
    loss_spy = ReleaseSpy()
    evaluate(model, x, y, batch_size=10, loss=nn.Sequential(loss_spy, *ce_loss()))
    assert [spy.releases for spy in spies] == [[3, 6]] * 3 and loss_spy.releases == [3]


def test_memory_is_released_also_when_predict_raises():
    spy = ReleaseSpy()
    with pytest.raises(ValueError, match="Linear: expected 2 input features"):
        predict(nn.Sequential(spy, nn.Linear(2, 3, rng=0)), np.zeros((4, 5), np.float32))
    assert spy.releases == [1]


def test_after_predict_the_layers_hold_no_batch_sized_arrays():
    model = small_cnn()
    x = np.random.default_rng(0).random((50, 1, 6, 6), dtype=np.float32)
    conv, relu, pool, _, linear = model.layers
    model.forward(x)  # what a training step leaves behind
    assert conv._plans and pool._recycled and relu._mask is not None and linear._x is not None
    scores = predict(model, x, batch_size=20)
    assert conv._plans == {} and conv._plan is None and pool._recycled == {} and pool._argmax is None
    assert relu._mask is None and linear._x is None
    # ... and the next forward rebuilds what it needs: the same numbers as before.
    np.testing.assert_array_equal(model.forward(x), scores)


RSS_SCRIPT = """
import gc, sys
import numpy as np
import nnscratch as nn
from nnscratch import presets as models

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

net = models.PRESETS["cnn"].build(rng=0)
model, loss = net[:-2], net[-2:]
x = np.random.default_rng(0).random((10_000, 1, 28, 28), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 10, 10_000)
model.forward(x[:2])  # warm up: numpy's and BLAS's own first-call allocations are not ours
gc.collect()
before = rss_mb()
scores = nn.predict(model, x, batch_size=1000)
del scores
gc.collect()
after_predict = rss_mb()
nn.evaluate(model, x, y, batch_size=1000, loss=loss)
gc.collect()
print(before, after_predict, rss_mb())
"""


@pytest.mark.slow  # ~10-30 s: the cnn preset over 10,000 images, twice
@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux's /proc for RSS")
def test_predict_and_evaluate_hand_the_memory_of_their_batches_back(tmp_path):
    # In a fresh interpreter, so that nothing else this test session allocated counts. Before
    # release_memory the process grew by ~800 MB here and kept it.
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", RSS_SCRIPT], capture_output=True, text=True, env=env,
                            timeout=600, check=True)
    before, after_predict, after_evaluate = map(float, result.stdout.split())
    assert after_predict - before <= 100, f"predict kept {after_predict - before:.0f} MB"
    assert after_evaluate - before <= 100, f"evaluate kept {after_evaluate - before:.0f} MB"


# -- labels: in [0, C), or the loss's ignore_index (issue 25) ------------------------------------
def scored(n=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return nn.Linear(3, classes, rng=0), x, rng.integers(0, classes, n)


@pytest.mark.parametrize("shift, low, high", [(100, 100, 103), (-1, -1, 2), (-4, -4, -1)])
def test_labels_out_of_range_are_refused_naming_them_and_the_classes(shift, low, high):
    model, x, y = scored()
    assert (y.min(), y.max()) == (0, 3)
    with pytest.raises(ValueError) as caught:
        nn.evaluate(model, x, y + shift)
    assert str(caught.value) == (f"evaluate: labels must be in [0, 4) for the 4 classes the model scores, "
                                 f"got labels from {low} to {high}")


def test_one_bad_label_in_a_later_batch_is_found():
    model, x, y = scored()
    y[-1] = 4
    with pytest.raises(ValueError, match=r"^evaluate: labels must be in \[0, 4\) .* got labels from \d to 4$"):
        nn.evaluate(model, x, y, batch_size=7)


def test_the_losses_ignore_index_is_not_counted_and_other_labels_still_are_checked():
    model, x, y = scored()
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    kept = y.copy()
    y[:5] = -100
    scores = model.forward(x)
    expected = np.mean(scores[5:].argmax(axis=1) == kept[5:])
    assert nn.evaluate(model, x, y, loss=loss)["accuracy"] == pytest.approx(expected)
    y[6] = -1
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\) \(or the loss's ignore_index, -100\) for the "
                                         r"4 classes the model scores, got labels from -100 to 3"):
        nn.evaluate(model, x, y, loss=loss)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\) for the 4 classes"):  # no loss: nothing ignored
        nn.evaluate(model, x, np.where(y == -1, 0, y))


def test_an_ignore_index_inside_the_classes_is_not_counted():
    model, x, y = scored()
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(ignore_index=0), nn.Mean())
    scores = model.forward(x)
    counted = y != 0
    expected = np.mean(scores[counted].argmax(axis=1) == y[counted])
    assert nn.evaluate(model, x, y, loss=loss)["accuracy"] == pytest.approx(expected)


def test_labels_must_be_integers():
    model, x, y = scored()
    with pytest.raises(TypeError, match=r"^evaluate: labels of shape \(20,\) must be integers, got dtype float64$"):
        nn.evaluate(model, x, y.astype(float))


def test_one_hot_rows_are_not_labels():
    model, x, y = scored()
    assert nn.evaluate(model, x, np.eye(4)[y])["accuracy"] == nn.evaluate(model, x, y)["accuracy"]
