"""scripts/step_breakdown.py: its timed loop is the real training step, and its report names every part."""

import json
import math

import numpy as np
import pytest

from helpers.script_modules import load_script, usage_error


@pytest.fixture(scope="module")
def script():
    return load_script("step_breakdown.py")


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_the_timed_step_trains_exactly_as_the_benchmark_step(script, network):
    timed_net, timed_opt = script.build_nnscratch(network)
    plain_net, plain_opt = script.build_nnscratch(network)
    batches = script.make_batches(2, 4)
    for i in range(3):
        seconds = script.timed_step(timed_net, timed_opt, *batches[i % 2])
        script.nnscratch_step(plain_net, plain_opt, *batches[i % 2])
        assert len(seconds) == len(script.part_names(timed_net, timed_opt))
    for timed, plain in zip(timed_net.parameters, plain_net.parameters):
        np.testing.assert_array_equal(timed, plain)
    assert all(np.any(p != q) for p, q in zip(timed_net.parameters, script.build_nnscratch(network)[0].parameters))


def test_the_parts_are_the_layers_in_running_order(script):
    net, optimizer = script.build_nnscratch("mlp")
    assert script.part_names(net, optimizer) == [
        "forward 0 Flatten", "forward 1 Linear", "forward 2 ReLU", "forward 3 Linear",
        "forward 4 SoftmaxCrossEntropy", "forward 5 Mean",
        "backward 5 Mean", "backward 4 SoftmaxCrossEntropy", "backward 3 Linear", "backward 2 ReLU",
        "backward 1 Linear",  # nothing in front of the first Linear runs backward: no parameters there
        "step SGD",
    ]


def test_the_command_prints_and_writes_every_part(script, tmp_path, capsys):
    out = tmp_path / "parts.json"
    assert script.main(["--steps", "3", "--warmup", "1", "--batch", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    net, optimizer = script.build_nnscratch("mlp")
    assert list(result["parts"]) == script.part_names(net, optimizer)
    for name, times in result["parts"].items():
        assert name in printed
        assert all(math.isfinite(t) and t > 0 for t in times.values())
    assert result["total"]["median_us"] > max(t["median_us"] for t in result["parts"].values())
    assert result["untimed_step_median_us"] > 0 and (result["steps"], result["batch"]) == (3, 2)


@pytest.mark.parametrize(
    "argv, message",
    [(["--steps", "0"], "--steps: expected a positive integer, got 0"),
     (["--warmup", "-1"], "--warmup: expected a non-negative integer, got -1"),
     (["--network", "rnn"], "invalid choice: 'rnn'")],
)
def test_bad_options_exit_2_naming_the_option(script, argv, message, capsys):
    assert message in usage_error(script.main, argv, capsys)
