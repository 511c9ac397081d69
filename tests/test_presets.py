"""The train-mnist presets: architectures, shapes, defaults, optimizers and schedules."""

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.presets import (
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    cnn_net,
    make_augment,
    make_optimizer,
    make_schedule,
    mlp_net,
    random_shift,
    softmax_net,
)
from nnscratch.train import fit


def test_softmax_preset_is_the_classic_graph():
    net = softmax_net(rng=0)
    assert [type(layer).__name__ for layer in net] == ["Linear", "Softmax", "CrossEntropy", "Mean"]
    assert net[0].weight.shape == (784, 10)
    preset = PRESETS["softmax"]
    assert (preset.optimizer, preset.lr, preset.batch_size, preset.one_hot, preset.epochs) == ("sgd", 0.5, 100, True, 2)
    assert preset.schedule == "constant" and preset.momentum == 0


@pytest.mark.parametrize("name, expected_parameters", [
    ("softmax", 784 * 10 + 10),
    ("mlp", 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10),
    # convolutions and the hidden Linear without bias, each followed by a BatchNorm's gamma and beta
    ("cnn", 16 * 25 + 2 * 16 + 64 * 16 * 9 + 2 * 64 + 3136 * 128 + 2 * 128 + 128 * 10 + 10),
])
def test_every_preset_maps_a_batch_to_ten_scores(name, expected_parameters):
    preset = PRESETS[name]
    net = preset.build(rng=0)
    assert sum(p.size for p in net.parameters) == expected_parameters
    assert all(p.dtype == np.float32 for p in net.parameters)
    x = np.random.default_rng(0).random((3, *preset.input_shape), dtype=np.float32)
    scores = net[:-2].forward(x)
    assert scores.shape == (3, 10) and scores.dtype == np.float32
    assert [type(layer).__name__ for layer in net[-1:]] == ["Mean"]
    targets = np.eye(10, dtype=np.float32)[[1, 2, 3]] if preset.one_hot else np.array([1, 2, 3])
    assert np.ndim(net.forward(x, targets)) == 0


def test_presets_build_reproducibly_from_a_seed():
    for build in (softmax_net, mlp_net, cnn_net):
        a, b, c = build(rng=1), build(rng=1), build(rng=2)
        assert all(np.array_equal(p, q) for p, q in zip(a.parameters, b.parameters))
        assert not np.array_equal(a.parameters[0], c.parameters[0])
    nn.seed(4)
    first = mlp_net().parameters[0].copy()
    nn.seed(4)
    np.testing.assert_array_equal(mlp_net().parameters[0], first)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_a_few_steps_of_each_preset_lower_the_loss(name):
    preset = PRESETS[name]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 64)
    templates = rng.random((10, *preset.input_shape), dtype=np.float32)
    x = templates[y] + 0.1 * rng.random((64, *preset.input_shape), dtype=np.float32)
    net = preset.build(rng=0)
    optimizer = make_optimizer(preset.optimizer, net, preset.lr)
    history = fit(net[:-2], net[-2:], optimizer, x, y, epochs=5, batch_size=16, rng=0, progress=False)
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]  # ten noisy templates


def test_make_optimizer():
    layer = nn.Linear(2, 2, rng=0)
    sgd = make_optimizer("sgd", layer, 0.1, momentum=0.9, weight_decay=0.01)
    assert type(sgd) is nn.SGD and (sgd.lr, sgd.momentum, sgd.weight_decay) == (0.1, 0.9, 0.01)
    adam = make_optimizer("adam", layer, 0.002, weight_decay=0.1)
    assert type(adam) is nn.Adam and (adam.lr, adam.weight_decay) == (0.002, 0.1)
    adamw = make_optimizer("adamw", layer, 0.002, weight_decay=0.05)
    assert type(adamw) is nn.AdamW and (adamw.lr, adamw.weight_decay) == (0.002, 0.05)
    rmsprop = make_optimizer("rmsprop", layer, 0.01, momentum=0.5, weight_decay=0.001)
    assert type(rmsprop) is nn.RMSprop and (rmsprop.lr, rmsprop.momentum, rmsprop.weight_decay) == (0.01, 0.5, 0.001)
    adagrad = make_optimizer("adagrad", layer, 0.05)
    assert type(adagrad) is nn.Adagrad and (adagrad.lr, adagrad.weight_decay) == (0.05, 0.0)
    assert set(OPTIMIZERS) == {"sgd", "adam", "adamw", "rmsprop", "adagrad"}
    for name in ("adam", "adamw", "adagrad"):
        with pytest.raises(ValueError, match=rf"momentum applies to the sgd and rmsprop optimizers only, got momentum=0.5 with {name}"):
            make_optimizer(name, layer, 0.1, momentum=0.5)
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        make_optimizer("lion", layer, 0.1)


def test_the_cosine_preset_schedule_is_the_one_it_always_was():
    # The formula make_schedule used before nnscratch.schedules existed, bit for bit: the presets'
    # runs (and a resumed old run) see the same learning rates.
    def old(lr, epochs):
        return lambda t: lr * 0.5 * (1.0 + math.cos(math.pi * t / max(epochs, 1)))

    for lr, epochs, batches in ((3e-3, 6, 469), (2e-3, 5, 938), (0.2, 4, 7), (0.1, 0, 3)):
        schedule, reference = make_schedule("cosine", lr, epochs), old(lr, epochs)
        for t in [e + b / batches for e in range(max(epochs, 1)) for b in range(batches)]:
            assert schedule(t) == reference(t)


def test_cosine_schedule_values():
    schedule = make_schedule("cosine", 0.2, 4)
    assert schedule(0) == pytest.approx(0.2)
    assert schedule(2) == pytest.approx(0.1)
    assert schedule(1) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert schedule(4) == pytest.approx(0.0, abs=1e-15)
    values = [schedule(t / 10) for t in range(40)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert make_schedule("constant", 0.2, 4) is None
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        make_schedule("linear", 0.1, 3)


def test_the_other_preset_schedules_derive_their_settings_from_the_epochs():
    step = make_schedule("step", 0.3, 6)  # x0.1 after each third: at 2 and 4 epochs
    assert [step(t) for t in (0, 1.99, 2, 3.99, 4, 5.9)] == pytest.approx([0.3, 0.3, 0.03, 0.03, 0.003, 0.003])
    exponential = make_schedule("exponential", 0.3, 5)  # down to lr/100 at the end
    assert [exponential(t) for t in (0, 2.5, 5)] == pytest.approx([0.3, 0.03, 0.003])
    warm = make_schedule("warmup-cosine", 0.3, 20)  # one epoch of warmup (E/10 = 2 > 1)
    assert [warm(t) for t in (0, 0.5, 1, 10.5)] == pytest.approx([0.0, 0.15, 0.3, 0.15])
    assert make_schedule("warmup-cosine", 0.3, 5)(0.25) == pytest.approx(0.15)  # warmup E/10 = 0.5
    cycle = make_schedule("one-cycle", 0.3, 10)  # up over 3 epochs from lr/25, down to lr/25e4
    assert [cycle(t) for t in (0, 1.5, 3, 10)] == pytest.approx([0.012, (0.012 + 0.3) / 2, 0.3, 0.3 / 25e4])
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine", "warmup-cosine", "one-cycle"}


def naive_shift(image, dy, dx):
    """out[i, j] = image[i - dy, j - dx], zero outside: the definition, one pixel at a time."""
    out = np.zeros_like(image)
    height, width = image.shape
    for i in range(height):
        for j in range(width):
            if 0 <= i - dy < height and 0 <= j - dx < width:
                out[i, j] = image[i - dy, j - dx]
    return out


def test_random_shift_against_the_definition():
    x = np.random.default_rng(0).random((40, 2, 6, 7), dtype=np.float32)
    shifted = random_shift(x, np.random.default_rng(1), max_shift=2)
    assert shifted.shape == x.shape and shifted.dtype == np.float32
    offsets = set()
    for n in range(len(x)):
        # find the one (dy, dx) that explains this sample, the same for both channels
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if all(np.array_equal(shifted[n, c], naive_shift(x[n, c], dy, dx)) for c in range(2))]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 10  # each sample its own offset
    np.testing.assert_array_equal(random_shift(x, np.random.default_rng(1), 0), x)


def test_make_augment_keeps_the_input_layout():
    assert make_augment(0) is None
    augment = make_augment(1)
    flat = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    out = augment(flat, np.random.default_rng(2))
    expected = random_shift(flat.reshape(5, 1, 28, 28), np.random.default_rng(2), 1).reshape(5, 784)
    assert out.shape == (5, 784)
    np.testing.assert_array_equal(out, expected)
