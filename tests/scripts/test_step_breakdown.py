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


def test_the_clocked_gpt_step_trains_exactly_as_the_benchmark_step_and_names_each_kind_of_layer(script):
    import benchmark_gpt  # loaded by the script, from its folder

    step, batches, clocked_stack = script.clocked_gpt(batch=2)
    stack, loss_layers, optimizer = benchmark_gpt.build_nnscratch_gpt()
    for i in range(2):
        parts = step(*batches[i])
        benchmark_gpt.nnscratch_gpt_step(stack, loss_layers, optimizer, *batches[i])
    assert list(parts) == [
        "forward LayerNorm", "forward MultiHeadAttention", "forward Linear", "forward GELU",
        "forward SoftmaxCrossEntropy", "forward Mean", "backward Mean", "backward SoftmaxCrossEntropy",
        "backward Linear", "backward LayerNorm", "backward GELU", "backward MultiHeadAttention", "step AdamW",
    ]
    assert all(seconds > 0 for seconds in parts.values())
    for clocked, plain, start in zip(clocked_stack.parameters, stack.parameters,
                                     benchmark_gpt.build_nnscratch_gpt()[0].parameters):
        np.testing.assert_array_equal(clocked, plain)  # the clocks change nothing, bit for bit
        assert clocked.ndim == 1 or np.any(clocked != start)  # and the steps did train
    names, rows = script.gpt_rows(steps=2, warmup=1, batch=2)
    assert names == list(parts) and rows.shape == (2, len(names)) and np.all(rows > 0)


def test_the_gpt_breakdown_prints_every_part(script, capsys):
    assert script.main(["--network", "gpt", "--steps", "2", "--warmup", "1", "--batch", "2"]) == 0
    printed = capsys.readouterr().out
    assert "GPT training step, batch 2" in printed
    for part in ("forward MultiHeadAttention", "backward GELU", "step AdamW", "sum of the parts"):
        assert part in printed


@pytest.mark.parametrize(
    "argv, message",
    [(["--steps", "0"], "--steps: expected a positive integer, got 0"),
     (["--warmup", "-1"], "--warmup: expected a non-negative integer, got -1"),
     (["--network", "rnn"], "invalid choice: 'rnn'")],
)
def test_bad_options_exit_2_naming_the_option(script, argv, message, capsys):
    assert message in usage_error(script.main, argv, capsys)
