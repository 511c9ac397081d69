"""Where an nnscratch training step of the benchmark's networks goes: each layer's forward and
backward and the optimizer step, timed inside the training loop (issue 5: profile first).

    python scripts/step_breakdown.py [--network mlp|cnn|gpt] [--steps 2000] [--json parts.json]

The loop does exactly what ``Sequential.forward`` / ``backward(input_delta=False)`` and
``SGD.step`` do in the benchmark, one part at a time with a clock read between parts. Parts are
given as the 10th percentile (the step as a quiet machine runs it) and the median over the steps.
The clock reads cost well under a microsecond each. Also printed: the benchmark's own step without
the clocks, as the benchmark times it (the mean step of a run of 50, median over the runs; a mean
counts the occasional slow step that a median leaves out).

``--network gpt`` (benchmark_gpt.py's stack, nanoGPT's CPU configuration, batch 12) times the
benchmark's own step with a clock around every leaf layer's forward and backward (the containers'
own work is what the parts leave out of the step) and AdamW's step; a part is a kind of layer in
one direction, summed over the four blocks ("forward GELU", "backward MultiHeadAttention", ...),
in the order they first run. ``--batch`` is the GPT's batch of sequences.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from nnscratch.containers import Container, _backward_without_input_delta, _first_with_parameters
from nnscratch.protocol import walk

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from benchmark_format import report  # noqa: E402
from benchmark_gpt import build_nnscratch_gpt, gpt_batches, nnscratch_gpt_step  # noqa: E402
from benchmark_networks import build_nnscratch, make_batches, nnscratch_step  # noqa: E402


def part_names(net, optimizer) -> list[str]:
    """The parts of one step, in the order they run: 'forward 1 Linear', ..., 'step SGD'."""
    first = _first_with_parameters(net.layers)
    names = [f"forward {i} {type(layer).__name__}" for i, layer in enumerate(net.layers)]
    names += [f"backward {i} {type(net.layers[i]).__name__}" for i in range(len(net.layers) - 1, first - 1, -1)]
    return names + [f"step {type(optimizer).__name__}"]


def timed_step(net, optimizer, x, labels) -> list[float]:
    """One training step, the same computation as ``nnscratch_step``; seconds per part."""
    clock = time.perf_counter
    marks = [clock()]
    for layer in net.layers:
        x = layer.forward(x, labels)
        marks.append(clock())
    first = _first_with_parameters(net.layers)
    delta = 1.0
    for index in range(len(net.layers) - 1, first - 1, -1):
        layer = net.layers[index]
        delta = _backward_without_input_delta(layer, delta) if index == first else layer.backward(delta)
        marks.append(clock())
    optimizer.step()
    marks.append(clock())
    return [later - earlier for earlier, later in zip(marks, marks[1:])]


def clocked_gpt(batch: int = 12):
    """(step(x, targets) -> {part: seconds}, batches, stack): the GPT benchmark's step, its leaf layers'
    forward and backward and its optimizer's step each timed (wrapped on the instances, so the
    step's own code runs unchanged), the batches it takes, and the stack it trains."""
    stack, loss_layers, optimizer = build_nnscratch_gpt()
    seconds = defaultdict(float)
    clock = time.perf_counter

    def clocked(part, method):
        def run(*args, **kwargs):
            start = clock()
            result = method(*args, **kwargs)
            seconds[part] += clock() - start
            return result
        return run

    for layer in [*walk(stack), *walk(loss_layers)]:
        if not isinstance(layer, Container):
            kind = type(layer).__name__
            layer.forward = clocked(f"forward {kind}", layer.forward)
            layer.backward = clocked(f"backward {kind}", layer.backward)
    optimizer.step = clocked(f"step {type(optimizer).__name__}", optimizer.step)

    def step(x, targets) -> dict:
        seconds.clear()
        nnscratch_gpt_step(stack, loss_layers, optimizer, x, targets)
        return dict(seconds)

    return step, gpt_batches(4, batch), stack


def gpt_rows(steps, warmup, batch) -> tuple:
    """(part names in running order, (steps, parts) array of seconds): the timed GPT steps."""
    step, batches, _ = clocked_gpt(batch)
    for i in range(warmup):
        step(*batches[i % len(batches)])
    timed = [step(*batches[i % len(batches)]) for i in range(steps)]
    names = list(timed[0])
    return names, np.array([[parts[name] for name in names] for parts in timed])


def breakdown(network="mlp", steps=2000, warmup=200, batch=128) -> dict:
    if network == "gpt":
        names, rows = gpt_rows(steps, warmup, batch)
        stack, loss_layers, optimizer = build_nnscratch_gpt()
        batches = gpt_batches(4, batch)
        untimed = _untimed(lambda i: nnscratch_gpt_step(stack, loss_layers, optimizer, *batches[i % 4]), steps)
        return _result(network, batch, steps, warmup, names, rows, untimed)
    net, optimizer = build_nnscratch(network)
    batches = make_batches(4, batch)
    for i in range(warmup):
        timed_step(net, optimizer, *batches[i % len(batches)])
    rows = np.array([timed_step(net, optimizer, *batches[i % len(batches)]) for i in range(steps)])
    untimed = _untimed(lambda i: nnscratch_step(net, optimizer, *batches[i % len(batches)]), steps)
    return _result(network, batch, steps, warmup, part_names(net, optimizer), rows, untimed)


def _untimed(step, steps: int) -> list:
    """Seconds of the mean step of runs of 50 steps without clocks, one run per 50 timed steps."""
    untimed = []
    for _ in range(max(steps // 50, 1)):
        start = time.perf_counter()
        for i in range(50):
            step(i)
        untimed.append((time.perf_counter() - start) / 50)
    return untimed


def _result(network, batch, steps, warmup, names, rows, untimed) -> dict:
    parts = {
        name: {"p10_us": float(np.percentile(rows[:, j], 10) * 1e6), "median_us": float(np.median(rows[:, j]) * 1e6)}
        for j, name in enumerate(names)
    }
    totals = rows.sum(axis=1)
    return {
        "network": network, "batch": batch, "steps": steps, "warmup": warmup, "parts": parts,
        "total": {"p10_us": float(np.percentile(totals, 10) * 1e6), "median_us": float(np.median(totals) * 1e6)},
        "untimed_step_median_us": statistics.median(untimed) * 1e6,
    }


def render(result: dict) -> str:
    total = result["total"]["median_us"]
    lines = [
        f"{result['network'].upper()} training step, batch {result['batch']}, {result['steps']} steps "
        f"after {result['warmup']} warm-up: time per part inside the loop",
        f"{'part':32s} {'p10 (us)':>10s} {'median (us)':>12s} {'of median':>10s}",
    ]
    for name, t in result["parts"].items():
        lines.append(f"{name:32s} {t['p10_us']:10.1f} {t['median_us']:12.1f} {t['median_us'] / total:10.1%}")
    lines.append(f"{'sum of the parts':32s} {result['total']['p10_us']:10.1f} {total:12.1f}")
    lines.append(f"the benchmark's step, untimed parts: {result['untimed_step_median_us']:.1f} us "
                 "(mean step of a run of 50, median over the runs)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", choices=["mlp", "cnn", "gpt"], default="mlp")
    parser.add_argument("--steps", type=int, default=2000, help="timed steps")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps first")
    parser.add_argument("--batch", type=int, help="batch size (the benchmark's, by default: 128; the GPT's 12)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = 12 if args.network == "gpt" else 128
    for name in ("steps", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup: expected a non-negative integer, got {args.warmup}")
    result = breakdown(args.network, args.steps, args.warmup, args.batch)
    return report(render(result), result, args.json)


if __name__ == "__main__":
    sys.exit(main())
