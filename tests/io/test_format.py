"""The format's rules (nnscratch/io/format.py): a tampered header is refused with a ValueError naming
the file and what is wrong, save refuses what load would refuse, the header's bounds hold for the
longest run and against hostile files, and metadata is standard JSON, a bad value named by its path."""

import json
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnscratch as nn
from nnscratch.commands.train_mnist_options import HISTORY_FIELDS, INT_RANGES
from nnscratch.io import load, load_checkpoint, save
from nnscratch.io.format import MAX_HEADER_CHARS, MAX_LAYERS, Checker, parse_header
from nnscratch.presets import cnn_net

from helpers.checkpoint_files import (header_for, npy, npy_claiming, peak_of, rewrite, small_net, tally_net, train_steps,
                              write_zip, zeros_after)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a, h: h.update(format="other"), "format is not 'nnscratch-checkpoint'"),
        (lambda a, h: h.update(version=2), "format version 2"),
        (lambda a, h: h["architecture"]["layers"][0].update({"class": "os.system"}), "unknown layer class 'os.system'"),
        (lambda a, h: h["architecture"]["layers"][0].update({"class": "Layer"}), "unknown layer class 'Layer'"),
        (lambda a, h: h["architecture"]["layers"][0]["config"].update(in_features=5),
         r"parameter 0: the architecture gives \(5, 4\) float32, the header says .* \(model\[0\], Linear\)"),
        (lambda a, h: h["architecture"]["layers"][0]["config"].update(in_features=-1), "cannot rebuild it"),
        (lambda a, h: h["architecture"]["layers"][0]["config"].update(colour="red"), "cannot rebuild it"),
        (lambda a, h: h["architecture"]["layers"].pop(0), "parameters but the file describes"),
        (lambda a, h: a.update({"param.0": a["param.0"].astype(np.float64)}), r"parameter 0: expected shape \(3, 4\) float32"),
        (lambda a, h: a.update({"param.1": a["param.1"][:2]}), r"parameter 1: expected shape \(4,\) float32, the file holds \(2,\)"),
        (lambda a, h: a.pop("param.2"), "'param.2' is missing"),
        (lambda a, h: a.update(extra=np.zeros(1)), "unexpected arrays in the checkpoint: extra"),
        (lambda a, h: a.update({"optimizer.m.0": a["optimizer.m.0"][:1]}), "optimizer state m.0"),
        (lambda a, h: h["optimizer"].update({"class": "Lion"}), "unknown optimizer 'Lion'"),
        (lambda a, h: h["optimizer"]["config"].update(lr=-1), "cannot rebuild the Adam optimizer"),
        (lambda a, h: h["optimizer"].update(steps="many"), "steps must be a non-negative int"),
        (lambda a, h: h.update(epoch=-3), "epoch must be a non-negative int"),
        (lambda a, h: h.update(architecture={"class": "Sequential", "layers": "no"}), "needs a 'layers' list"),
    ],
)
def test_mismatched_or_tampered_files(checkpoint_path, change, match):
    rewrite(checkpoint_path, change)
    with pytest.raises(ValueError, match=rf"good\.npz: .*{match}"):
        load_checkpoint(checkpoint_path)


@pytest.mark.parametrize(
    "make, option, value",
    [(lambda net: nn.SGD(net, lr=0.1, momentum=0.9), "nesterov", "false"),
     (lambda net: nn.RMSprop(net), "centered", "no"),
     (lambda net: nn.RMSprop(net), "centered", 1)],
)
def test_an_optimizer_flag_that_is_not_a_bool_is_refused(tmp_path, make, option, value):
    net = small_net()
    path = save(net, tmp_path / "good.npz", optimizer=make(net))
    rewrite(path, lambda a, h: h["optimizer"]["config"].update({option: value}))
    match = rf"good\.npz: cannot rebuild the .* optimizer .*: .*{option} must be True or False, got"
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)


def test_a_checkpoint_bias_must_be_a_real_bool(checkpoint_path):
    rewrite(checkpoint_path, lambda a, h: h["architecture"]["layers"][0]["config"].update(bias="no"))
    with pytest.raises(ValueError, match=r"good\.npz: model\[0\] \(Linear\): cannot rebuild it .*bias must be True or False, got str 'no'"):
        load(checkpoint_path)


def test_invalid_json_header(checkpoint_path):
    with np.load(checkpoint_path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    for text in ("{not json", '{"epoch": NaN}'):
        arrays["header"] = np.array(text)
        with open(checkpoint_path, "wb") as f:
            np.savez(f, **arrays)
        with pytest.raises(ValueError, match=r"good\.npz: the checkpoint header is not valid JSON"):
            load(checkpoint_path)


def test_a_file_without_buffers_loads_as_before(tmp_path):
    path = save(small_net(), tmp_path / "old.npz")
    rewrite(path, lambda arrays, header: header.pop("buffers"))
    np.testing.assert_array_equal(load(path).parameters[0], small_net().parameters[0])


@pytest.mark.parametrize("change, match", [
    (lambda a, h: h["buffers"].pop(), r"the architecture has 4 buffers but the file describes 3"),
    (lambda a, h: h["buffers"][1].update(shape=[4]), r"buffer 1: the architecture gives \(3,\) float32, the header says"),
    (lambda a, h: a.update({"buffer.1": np.zeros(3, np.float64)}), r"buffer 1: expected shape \(3,\) float32, the file holds \(3,\) float64"),
    (lambda a, h: a.pop("buffer.2"), r"buffer 2: the array 'buffer.2' is missing"),
    (lambda a, h: a.update({"buffer.9": np.zeros(3)}), r"unexpected arrays in the checkpoint: buffer.9"),
    (lambda a, h: h.update(buffers={"0": 1}), r"the checkpoint header's 'buffers' must be a list"),
])
def test_tampered_buffers_are_refused(tmp_path, tally_is_built_in, change, match):
    path = save(tally_net(), tmp_path / "model.npz")
    rewrite(path, change)
    with pytest.raises(ValueError, match=match) as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_save_refuses_what_load_would_refuse_before_writing(tmp_path, checkpoint_path):
    good = checkpoint_path.read_bytes()
    net = small_net()
    with pytest.raises(ValueError, match=r"save: the checkpoint's epoch must be a non-negative int, got -5"):
        save(net, checkpoint_path, epoch=-5)
    with pytest.raises(ValueError, match=r"save: the checkpoint's epoch must be a non-negative int, got True"):
        save(net, checkpoint_path, epoch=True)
    swapped = small_net()
    swapped[0].parameters[0] = np.zeros((5, 5), np.float32)
    with pytest.raises(ValueError, match=r"save: parameter 0: the architecture gives \(3, 4\) float32, the header says .*\(model\[0\], Linear\)"):
        save(swapped, checkpoint_path)
    optimizer = nn.Adam(net)
    train_steps(net, optimizer, 1)
    optimizer.steps = -1
    with pytest.raises(ValueError, match=r"save: the Adam optimizer's steps must be a non-negative int, got -1"):
        save(net, checkpoint_path, optimizer=optimizer)
    assert checkpoint_path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]


# -- the header's bound: the longest run fits, a hostile header is refused unread -------------
LONGEST_RUN = INT_RANGES["epochs"][1]  # train-mnist's longest run: the one the bound is sized for
LONGEST_FLOAT = 2.2250738585072014e-308  # 23 characters: no non-negative float's JSON is longer


def train_mnist_metadata(epochs: int) -> dict:
    """train-mnist's metadata after ``epochs`` epochs, every number as long as JSON can make it."""
    record = {key: LONGEST_FLOAT for key in HISTORY_FIELDS}
    config = {"model": "cnn", "epochs": epochs, "batch_size": 128, "lr": LONGEST_FLOAT, "optimizer": "adamw",
              "momentum": LONGEST_FLOAT, "weight_decay": LONGEST_FLOAT, "schedule": "one-cycle", "shift": 2,
              "seed": 2**63, "limit": 60_000}
    shuffle = np.random.default_rng(2**127).bit_generator.state
    return {"train_mnist": {"config": config, "history": [{**record, "epoch": i + 1} for i in range(epochs)],
                            "shuffle_state": shuffle}}


def test_a_history_past_the_old_one_mib_bound_saves_and_loads(tmp_path):
    # 1 MiB of header was about 6,350 epochs of train-mnist --limit 10: save refused the 6,351st.
    net = small_net()
    metadata = train_mnist_metadata(5_000)
    assert len(json.dumps(metadata)) > 1 << 20
    checkpoint = load_checkpoint(save(net, tmp_path / "m.npz", optimizer=nn.Adam(net), epoch=5_000, metadata=metadata))
    assert checkpoint.metadata == metadata and checkpoint.epoch == 5_000


def test_the_longest_train_mnist_run_saves_and_loads(tmp_path):
    net = cnn_net(rng=0)
    metadata = train_mnist_metadata(LONGEST_RUN)
    record = json.dumps(metadata["train_mnist"]["history"][-1])
    assert len(record) + len(", ") <= 233  # the figure MAX_HEADER_CHARS is sized with
    path = save(net, tmp_path / "m.npz", optimizer=nn.AdamW(net), epoch=LONGEST_RUN, metadata=metadata)
    with np.load(path, allow_pickle=False) as archive:
        chars = archive["header"].dtype.itemsize // 4
    assert 0.5 * MAX_HEADER_CHARS < chars < 0.6 * MAX_HEADER_CHARS  # the longest run, with room to spare
    checkpoint = load_checkpoint(path)
    assert checkpoint.metadata == metadata and checkpoint.epoch == LONGEST_RUN


@pytest.mark.parametrize("chars, message", [
    (MAX_HEADER_CHARS + 1024, f"the header is {128 + 4 * (MAX_HEADER_CHARS + 1024)} bytes, more than a checkpoint's header may be"),
    (MAX_HEADER_CHARS + 1, f"the header has {MAX_HEADER_CHARS + 1} characters, more than {MAX_HEADER_CHARS}"),
], ids=["by-its-size-in-the-zip-directory", "by-its-npy-header"])
def test_a_header_over_the_bound_is_refused_unread(tmp_path, chars, message):
    start = npy_claiming((), f"<U{chars}")
    assert len(start) == 128
    path = write_zip(tmp_path / "big.npz", {"header": zeros_after(start, len(start) + 4 * chars)})
    raised, peak, _ = peak_of(lambda: load(path))
    assert isinstance(raised, ValueError) and str(raised) == f"{path}: {message}"
    assert peak < 1 << 20  # refused before the 128 MiB member is read


def test_a_fit_history_beyond_train_mnists_longest_run_is_refused_by_save_saying_where_it_belongs(tmp_path):
    # fit by the API has no bound on epochs: 50,000 of its records do not fit a header, and save
    # says so (and where such a history belongs) instead of writing a file load would refuse.
    history = train_mnist_metadata(50_000)["train_mnist"]["history"]
    with pytest.raises(ValueError, match=r"^save: the header would be [\d,]+ characters, load reads at most "
                                         r"4,194,304: keep a long history \(fit's, over thousands of epochs\) in a "
                                         r"file of its own, not in metadata$"):
        save(small_net(), tmp_path / "m.npz", metadata={"history": history})
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_the_costliest_header_at_the_bound_takes_at_most_36_bytes_a_character_to_refuse(tmp_path):
    # tiny objects holding tiny lists, the costliest JSON measured, as long as load reads: 150 MB
    element = '{"":[[]]}'
    text = "[" + ",".join([element] * ((MAX_HEADER_CHARS - 1) // (len(element) + 1))) + "]"
    text += " " * (MAX_HEADER_CHARS - len(text))
    path = write_zip(tmp_path / "worst.npz", {"header": npy(np.array(text))})
    del text
    raised, peak, _ = peak_of(lambda: load(path))
    assert str(raised) == f"{path}: not an nnscratch checkpoint: the header's format is not 'nnscratch-checkpoint'"
    assert 30 * MAX_HEADER_CHARS < peak < 36 * MAX_HEADER_CHARS


def test_save_refuses_a_header_over_the_bound_before_writing(tmp_path):
    pattern = (rf"^save: the header would be ([\d,]+) characters, load reads at most {MAX_HEADER_CHARS:,}: keep a "
               r"long history \(fit's, over thousands of epochs\) in a file of its own, not in metadata$")
    with pytest.raises(ValueError, match=pattern) as caught:
        save(small_net(), tmp_path / "m.npz", metadata={"text": "x" * MAX_HEADER_CHARS})
    assert int(re.match(pattern, str(caught.value))[1].replace(",", "")) > MAX_HEADER_CHARS
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("element, most", [('{"":[[]]}', 36), ('{"":{}}', 36), ("[]", 36),
                                           (json.dumps({key: 0.123456789 for key in HISTORY_FIELDS}), 3)])
def test_parsing_a_header_costs_at_most_the_bytes_a_character_the_bound_is_sized_with(element, most):
    # The worst JSON measured (tiny objects holding tiny lists) and a training history (about 2).
    text = "[" + ",".join([element] * (200_000 // len(element))) + "]"
    raised, peak, _ = peak_of(lambda: parse_header(text, Checker("test: ")))
    assert raised is None and peak / len(text) <= most


def test_too_many_layers_or_too_deep_fails_at_once(tmp_path):
    relu = {"class": "ReLU", "config": {}}
    too_many = {"class": "Sequential", "layers": [relu] * (MAX_LAYERS + 1)}
    path = write_zip(tmp_path / "many.npz", {"header": header_for(too_many, [])})
    with pytest.raises(ValueError, match=rf"many\.npz: the architecture has more than {MAX_LAYERS} layers"):
        load(path)
    deep = relu
    for _ in range(40):
        deep = {"class": "Sequential", "layers": [deep]}
    path = write_zip(tmp_path / "deep.npz", {"header": header_for(deep, [])})
    with pytest.raises(ValueError, match=r"deep\.npz: model(\[0\])+: containers nested more than 32 deep"):
        load(path)
    path = write_zip(tmp_path / "nested.npz", {"header": npy(np.array("[" * 100000 + "]" * 100000))})
    with pytest.raises(ValueError, match=r"nested\.npz: the checkpoint header is not valid JSON"):
        load(path)


# -- metadata: standard JSON, a value that is not named by its key path -----------------------
def diverged_history():
    history = [{"epoch": i + 1, "loss": 2.3 / (i + 1)} for i in range(3)]
    return {"train_mnist": {"history": [*history, {"epoch": 4, "loss": float("nan")}]}}


def cyclic():
    metadata = {"a": [1, {}]}
    metadata["a"][1]["back"] = metadata["a"]
    return metadata


@pytest.mark.parametrize("metadata, error, message", [
    (diverged_history(), ValueError, "metadata['train_mnist']['history'][3]['loss'] is nan: checkpoints hold standard JSON only"),
    ({"a": (1, float("inf"))}, ValueError, "metadata['a'][1] is inf: checkpoints hold standard JSON only"),
    ({"a": {"b": np.float64("-inf")}}, ValueError, "metadata['a']['b'] is -inf: checkpoints hold standard JSON only"),
    ({float("nan"): 1}, ValueError, "metadata has the key nan: checkpoints hold standard JSON only"),
    (cyclic(), ValueError, "metadata['a'][1]['back'] contains itself: checkpoints hold standard JSON only"),
    ({"x": np.zeros(2)}, TypeError, "metadata['x'] is a numpy.ndarray, which JSON cannot hold (dicts, lists, str, int, float, bool, None)"),
    ({"x": [1, np.float32(1)]}, TypeError, "metadata['x'][1] is a numpy.float32, which JSON cannot hold"),
    ({"x": {(1, 2): 3}}, TypeError, "metadata['x'] has a key (1, 2) of type tuple: JSON keys are text"),
])
def test_metadata_json_cannot_hold_is_refused_by_its_key_path(checkpoint_path, metadata, error, message):
    good = checkpoint_path.read_bytes()
    with pytest.raises(error) as caught:
        save(small_net(), checkpoint_path, metadata=metadata)
    assert str(caught.value).startswith(f"save: {message}")
    assert checkpoint_path.read_bytes() == good and os.listdir(checkpoint_path.parent) == ["good.npz"]


def test_metadata_nested_deeper_than_json_goes_is_refused_in_one_line(tmp_path):
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(TypeError, match=r"^save: metadata must be JSON-serialisable \(RecursionError: maximum recursion"):
        save(small_net(), tmp_path / "m.npz", metadata={"deep": deep})


def test_an_optimizer_setting_json_cannot_hold_is_named_too(tmp_path):
    net = small_net()
    optimizer = nn.SGD(net, lr=0.1)
    optimizer.lr = np.float32(0.1)  # as a schedule written with NumPy might leave it
    with pytest.raises(TypeError, match=r"^save: the header's 'optimizer'\['config'\]\['lr'\] is a numpy\.float32"):
        save(net, tmp_path / "m.npz", optimizer=optimizer)


# -- every failure a ValueError naming the file: fuzzing the header ---------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
layer_names = st.sampled_from(["Sequential", "Linear", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Mean", "os.system"])
layer_descriptions = st.recursive(
    st.fixed_dictionaries({"class": layer_names}, optional={"config": st.dictionaries(
        st.sampled_from(["in_features", "out_features", "bias", "dtype", "in_channels", "out_channels",
                         "kernel_size", "stride", "padding"]), json_values, max_size=5)}),
    lambda children: st.fixed_dictionaries({"class": layer_names}, optional={"layers": st.lists(children, max_size=3) | json_values}),
    max_leaves=6,
)
header_fields = st.fixed_dictionaries({}, optional={
    "format": st.just("nnscratch-checkpoint") | json_values, "version": st.just(1) | json_values,
    "architecture": layer_descriptions | json_values, "parameters": st.lists(json_values, max_size=3) | json_values,
    "optimizer": st.none() | st.fixed_dictionaries({}, optional={
        "class": st.sampled_from(["SGD", "Adam"]) | json_values, "config": json_values,
        "steps": json_values, "state": st.lists(st.text(max_size=10), max_size=3) | json_values}),
    "epoch": st.none() | json_values, "metadata": json_values,
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=header_fields | json_values)
def test_fuzzed_headers_load_or_fail_with_a_value_error(tmp_path, header):
    path = tmp_path / "fuzz.npz"
    write_zip(path, {"header": npy(np.array(json.dumps(header)))})
    try:
        load_checkpoint(path)
    except ValueError as error:
        assert str(error).startswith(f"{path}: ")
