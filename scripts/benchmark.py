"""Training-step throughput of nnscratch next to PyTorch on the same CPU, in one process (issue 5).

Networks (batch 128, float32, SoftmaxCrossEntropy + Mean, SGD lr 0.01 momentum 0.9):

    MLP  Flatten, Linear 784->256, ReLU, Linear 256->10                           target >= 1.25
    CNN  Conv2D 1->8 3x3 pad 1, ReLU, MaxPool2D 2, Conv2D 8->16 3x3 pad 1, ReLU,
         MaxPool2D 2, Flatten, Linear 784->10                                     target >= 0.75

and (issue 22) nanoGPT's CPU configuration, batch 12 of 64 tokens, float32, AdamW (lr 1e-3, betas
(0.9, 0.99), weight decay 0.1), scripts/benchmark_gpt.py:

    GPT  4 TransformerBlocks (128 wide, 4 heads, causal), LayerNorm, Linear 128->65,
         SoftmaxCrossEntropy + Mean over the tokens; no token embedding (a float input
         whose gradient both sides compute, as an embedding's would be)             target >= 0.75

PyTorch runs the same architecture from the same initial weights (nn.CrossEntropyLoss,
torch.optim.SGD) with as many threads as numpy's BLAS uses. The two alternate, run by run, each
run preceded by at least 0.2 s of untimed warm-up steps (OpenBLAS's idle threads spin for
~0.1 s and would slow the next run's timed steps); the figures are medians over the runs. Also: Conv2D forward
+ backward (batch 64, 28x28, 1->8 3x3 pad 1) against the naive loop twin in tests/helpers/naive.py
(target >= 100x), and the resident memory of nnscratch training across epochs.

    python scripts/benchmark.py [--repeats 9] [--json figures.json]    (pip install -e .[bench] for torch)

With --busy it also times both frameworks quiet and with one core taken (issue 15): a busy-loop
process pinned to one CPU for the duration of each busy run (killed after it, and stopping by itself
after --busy-max-seconds whatever happens). nnscratch trains as fit does, its ThreadChooser picking
numpy's BLAS threads; PyTorch runs as it comes, with its default thread count, printed.

Recurrent layers (issue 22): one LSTM, GRU and RNN layer, forward and backward (dL/dx included) on
(N, T, D) = (32, 64, 256), H = 256, float32, beside PyTorch's nn.LSTM, nn.GRU and nn.RNN from the same
weights, alternating as the networks do (LSTM target >= 0.75; GRU and RNN without one); with
``--only lstm-memory``, the resident memory over 1,000 LSTM steps.

Machines shared with other work give noisy timings: the load average, the share of the CPUs that
other processes took during each network's timed runs, and numpy's BLAS speed measured before each
pair of runs (a virtual machine's host can halve it for seconds at a time) are printed with the
figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np


# The script's parts live next to it (benchmark_machine.py, benchmark_networks.py, benchmark_format.py);
# this makes them importable however the script is started: from any folder, or loaded by path as the
# tests do.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# Every name below stays reachable as benchmark.NAME, as before the split (tests/scripts/test_benchmark.py).
from benchmark_format import (  # noqa: E402, F401
    check_busy_max_seconds, load_average, only_names, report, share, tally, write_json,
)
from benchmark_machine import (  # noqa: E402, F401
    PROBE_SHAPE, blas_gflops, blas_info, cpu_model, cpu_snapshot, loadavg, others_cpu_share, rss_bytes,
)
from benchmark_machine import BusyCore  # noqa: E402, F401
from benchmark_sequences import (  # noqa: E402, F401
    SEQUENCE_TARGETS, build_recurrent, compare_recurrent, measure_recurrent_memory, recurrent_steps,
)
from benchmark_networks import (  # noqa: E402, F401
    LR, MOMENTUM, REPO, TARGETS, build_nnscratch, build_torch, compare_busy, compare_conv, compare_network,
    load_naive, load_torch, make_batches, measure_memory, nnscratch_step, samples_per_second, torch_step,
)
from benchmark_gpt import compare_gpt, measure_gpt_memory  # noqa: E402


# -- reporting ---------------------------------------------------------------------------------
def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores; numpy {m['numpy']} ({m['blas']}, "
        f"{m['blas_threads']} threads, from {m['blas_threads_source']}); "
        + (f"torch {m['torch']} ({m['torch_threads']} threads, set to match numpy's BLAS)"
           if m["torch"] else "torch: not installed"),
        f"load average (1, 5, 15 min): before {load_average(results['load_before'])}, "
        f"after {load_average(results['load_after'])}",
    ]
    if results["torch_skipped"]:
        lines.append(f"skipping the PyTorch column: {results['torch_skipped']}")
    if results["networks"]:
        lines += ["", f"{'network':<8}{'nnscratch samples/s':>21}{'PyTorch samples/s':>19}"
                  f"{'ratio':>8}{'target':>9}  result  {'best runs ratio':>15}  CPU used by others"]
    for name, row in results["networks"].items():
        name = _label(name, row)
        torch_speed = f"{row['pytorch']['median']:,.0f}" if row["pytorch"] else "skipped"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        best = f"{row['best_ratio']:.2f}" if row["best_ratio"] is not None else "-"
        verdict = "-" if row["meets_target"] is None else ("PASS" if row["meets_target"] else "MISS")
        lines.append(f"{name.upper():<8}{row['nnscratch']['median']:>21,.0f}{torch_speed:>19}{ratio:>8}"
                     f"{'>= ' + format(row['target'], 'g'):>9}  {verdict:<6}  {best:>15}  "
                     f"{share(row['others_cpu_share'])}")
    spreads = [f"{_label(name, row)} {_spread(row['pair_ratios'])}" for name, row in results["networks"].items()
               if row["pair_ratios"]]
    if spreads:
        lines.append("ratio of each nnscratch run to the PyTorch run beside it, lowest-highest (middle half): "
                     + "; ".join(spreads))
    probes = [f"{_label(name, row)} {_gflops(row['blas_gflops'])}" for name, row in results["networks"].items()]
    if probes:
        m, k, n = PROBE_SHAPE
        lines.append(f"numpy's BLAS speed before each pair of runs, GFLOP/s of a {m}x{k} @ {k}x{n} float32 "
                     f"product, median (lowest-highest): " + "; ".join(probes))
    conv = results.get("conv2d")
    if conv:
        lines.append("")
        head = f"Conv2D 1->8 3x3 pad 1, forward + backward, batch {conv['batch']}: fast {conv['fast_seconds'] * 1e3:.2f} ms"
        if conv["skipped"]:
            lines.append(f"{head}; naive reference skipped: {conv['skipped']}")
        else:
            lines.append(f"{head}, naive loops {conv['naive_seconds']:.2f} s -> {conv['speedup']:,.0f}x "
                         f"faster (target >= {conv['target']:g}x)  {'PASS' if conv['meets_target'] else 'MISS'}")
    for name, mem in results.get("memory", {}).items():
        trace = " ".join(f"{mb:.1f}" for mb in mem["rss_mb"])
        lines.append(f"{name.upper()} training RSS after each epoch of {mem['steps_per_epoch']} steps (MB): "
                     f"{trace}; growth {mem['growth_mb']:+.2f} MB ({mem['growth_per_step_bytes']:+,.0f} B/step)")
    if results["networks"]:
        lines.append(f"samples/s: medians of {results['settings']['repeats']} alternating runs (a GPT sample: a "
                     "sequence of 64 tokens); ratio = nnscratch / PyTorch (the target is on it); best runs ratio = "
                     "fastest run / fastest run")
        shared = results["networks"].get("gpt-processes")
        if shared:
            lines.append(f"{_label('gpt-processes', shared)}: the GPT with each batch shared by "
                         f"{shared['processes']} processes, BLAS at 1 thread in each, as train-text trains it "
                         "(nnscratch.parallel; its BLAS speed is probed at that 1 thread)")
    if results.get("recurrent") or results.get("recurrent_memory"):
        lines += ["", *render_recurrent(results.get("recurrent", {}), results.get("recurrent_memory"))]
    if results.get("busy"):
        lines += ["", *render_busy(results["busy"], results["machine"])]
    return "\n".join(lines)


def _label(name: str, row: dict) -> str:
    """A row's name in the table: MLP, CNN, GPT, or GPT-2P for the GPT over 2 processes."""
    return f"GPT-{row['processes']}P" if name == "gpt-processes" else name.upper()


def render_recurrent(rows: dict, memory: dict | None) -> list:
    """The recurrent layers' section: sequences/s of each framework, their ratio and its spread."""
    lines = []
    if rows:
        shape = next(iter(rows.values()))["shape"]
        lines += [f"recurrent layers, forward + backward (dL/dx included), N={shape['batch']}, T={shape['length']}, "
                  f"D={shape['input_size']}, H={shape['hidden_size']}, float32",
                  f"{'layer':<8}{'nnscratch seq/s':>17}{'PyTorch seq/s':>15}{'ratio':>8}{'target':>9}  result  "
                  f"{'ratio of each pair of runs':<28}CPU used by others"]
    for cell, row in rows.items():
        theirs = f"{row['pytorch']['median']:,.1f}" if row["pytorch"] else "skipped"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        target = f">= {row['target']:g}" if row["target"] is not None else "none"
        verdict = "-" if row["meets_target"] is None else ("PASS" if row["meets_target"] else "MISS")
        spread = _spread(row["pair_ratios"]) if row["pair_ratios"] else "-"
        lines.append(f"{cell.upper():<8}{row['nnscratch']['median']:>17,.1f}{theirs:>15}{ratio:>8}{target:>9}  "
                     f"{verdict:<6}  {spread:<28}{share(row['others_cpu_share'])}")
    if memory:
        trace = " ".join(f"{mb:.1f}" for mb in memory["rss_mb"])
        lines.append(f"LSTM forward + backward RSS every {memory['every']} steps (MB): {trace}; growth "
                     f"{memory['growth_mb']:+.2f} MB over {memory['steps']} steps "
                     f"({memory['growth_per_step_bytes']:+,.0f} B/step)")
    return lines


def render_busy(busy: dict, machine: dict) -> list:
    """The --busy section: samples/s quiet and busy, and busy / quiet, per framework and network."""
    first = next(iter(busy.values()))
    torch = (f"PyTorch as it comes ({machine['torch_default_threads']} threads)" if machine["torch"]
             else "PyTorch skipped")
    lines = [f"quiet vs busy: {first['load'] or 'no busy run'}; nnscratch as fit trains (ThreadChooser), {torch}",
             f"{'network':<8}{'nnscratch quiet':>16}{'busy':>10}{'busy/quiet':>12}  {'BLAS threads chosen quiet; busy':<33}"
             f"{'PyTorch quiet':>14}{'busy':>10}{'busy/quiet':>12}"]
    for name, row in busy.items():
        ours, theirs = row["nnscratch"], row["pytorch"]
        chosen = "; ".join(tally(row["chosen"][load]) for load in ("quiet", "busy"))
        line = (f"{name.upper():<8}{ours['quiet']['median']:>16,.0f}{ours['busy']['median']:>10,.0f}"
                f"{ours['ratio']:>12.2f}  {chosen:<33}")
        if theirs:
            line += f"{theirs['quiet']['median']:>14,.0f}{theirs['busy']['median']:>10,.0f}{theirs['ratio']:>12.2f}"
        else:
            line += f"{'skipped':>14}"
        lines.append(line)
    steps = ", ".join(f"{name.upper()} {row['steps']}" for name, row in busy.items())
    lines.append(f"samples/s: medians of {first['repeats']} runs of {steps} timed steps each; the chooser "
                 "starts afresh in each run (warm-up included), as a call of fit would")
    return lines


def _spread(values: list) -> str:
    """'1.16-1.67 (1.30-1.55)': the range, and in brackets the quartiles, of a list of ratios."""
    low, high = min(values), max(values)
    if len(values) < 2:
        return f"{low:.2f}"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{low:.2f}-{high:.2f} ({q1:.2f}-{q3:.2f})"


def _gflops(values: list) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def run(args) -> dict:
    """Everything the command measures, as one JSON-ready dict."""
    blas = blas_info()
    torch, skipped = (None, "--no-torch given") if args.no_torch else load_torch()
    torch_default_threads = torch.get_num_threads() if torch else None
    if torch is not None and blas["threads"]:
        torch.set_num_threads(blas["threads"])
    results = {
        "machine": {
            "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas["library"], "blas_threads": blas["threads"],
            "blas_threads_source": blas["threads_source"],
            "torch": torch.__version__ if torch else None,
            "torch_threads": torch.get_num_threads() if torch else None,
            "torch_default_threads": torch_default_threads,
        },
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "torch_skipped": skipped,
        "load_before": loadavg(),
        "networks": {},
    }
    for network, steps in (("mlp", args.mlp_steps), ("cnn", args.cnn_steps)):
        if network in args.only:
            results["networks"][network] = compare_network(
                network, torch, args.repeats, steps, args.warmup, args.batch, args.full_backward,
                args.warmup_seconds)
    if "gpt" in args.only:
        results["networks"]["gpt"] = compare_gpt(torch, args.repeats, args.gpt_steps, args.warmup,
                                                 args.warmup_seconds)
    if "gpt-processes" in args.only:
        from nnscratch.parallel import usable_cpus

        results["networks"]["gpt-processes"] = compare_gpt(torch, args.repeats, args.gpt_steps, args.warmup,
                                                           args.warmup_seconds, processes=min(usable_cpus(), 4))
    if "conv" in args.only:
        results["conv2d"] = compare_conv(args.conv_repeats, args.naive_repeats,
                                         warmup_seconds=args.warmup_seconds)
    if "memory" in args.only:
        networks = [n for n in ("mlp", "cnn", "gpt") if n in args.only] or ["mlp", "cnn"]
        epoch_steps = {"mlp": 4 * args.mlp_steps, "cnn": 2 * args.cnn_steps, "gpt": 2 * args.gpt_steps}
        results["memory"] = {n: measure_gpt_memory(args.memory_epochs, epoch_steps[n]) if n == "gpt"
                             else measure_memory(n, args.memory_epochs, epoch_steps[n], args.batch) for n in networks}
    cells = [cell for cell in SEQUENCE_TARGETS if cell in args.only]
    if cells:
        results["recurrent"] = {cell: compare_recurrent(cell, torch, args.repeats, args.recurrent_steps,
                                                        min(args.warmup, 1), args.warmup_seconds) for cell in cells}
    if "lstm-memory" in args.only:
        results["recurrent_memory"] = measure_recurrent_memory(args.lstm_memory_steps)
    busy_networks = [n for n in ("mlp", "cnn") if n in args.only] if args.busy else []
    if busy_networks:
        if torch is not None:
            torch.set_num_threads(torch_default_threads)  # as it comes
        steps = {"mlp": args.mlp_steps, "cnn": args.cnn_steps}
        results["busy"] = {n: compare_busy(n, torch, args.repeats, steps[n], args.warmup, args.batch,
                                           args.warmup_seconds, max_seconds=args.busy_max_seconds)
                           for n in busy_networks}
    results["load_after"] = loadavg()
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per framework and network (median)")
    parser.add_argument("--mlp-steps", type=int, default=100, help="timed training steps per MLP run")
    parser.add_argument("--cnn-steps", type=int, default=20, help="timed training steps per CNN run")
    parser.add_argument("--gpt-steps", type=int, default=20, help="timed training steps per GPT run")
    parser.add_argument("--warmup", type=int, default=5, help="minimum untimed steps before every run")
    parser.add_argument("--warmup-seconds", type=float, default=0.2,
                        help="minimum untimed warm-up per run and before the Conv2D timing; "
                             "covers the other library's still-spinning threads")
    parser.add_argument("--batch", type=int, default=128, help="batch size of the MLP and CNN (the issue: 128; "
                        "the GPT's is nanoGPT's 12)")
    parser.add_argument("--conv-repeats", type=int, default=20, help="timed calls of the fast Conv2D")
    parser.add_argument("--naive-repeats", type=int, default=1, help="timed calls of the naive Conv2D")
    parser.add_argument("--memory-epochs", type=int, default=5,
                        help="measured epochs of the memory check (an epoch: 4x --mlp-steps, 2x --cnn-steps "
                             "or 2x --gpt-steps steps)")
    parser.add_argument("--recurrent-steps", type=int, default=5,
                        help="timed forward + backward steps per run of the recurrent layers")
    parser.add_argument("--lstm-memory-steps", type=int, default=1000,
                        help="LSTM steps of the lstm-memory part (RSS read every 100)")
    parser.add_argument("--only", default="mlp,cnn,gpt,gpt-processes,conv,memory,lstm,gru,rnn",
                        help="comma-separated parts to run, of mlp, cnn, gpt, gpt-processes (the GPT with each "
                             "batch shared by one process per CPU, at most 4, as train-text trains it), conv, "
                             "memory, lstm, gru, rnn, lstm-memory (default: all but lstm-memory)")
    parser.add_argument("--full-backward", action="store_true",
                        help="also compute dL/dx of the data in nnscratch (PyTorch never does)")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch column")
    parser.add_argument("--busy", action="store_true",
                        help="also time mlp and cnn (those in --only) quiet and with a busy-loop process on one CPU")
    parser.add_argument("--busy-max-seconds", type=float, default=120.0,
                        help="the busy-loop process stops by itself after this long, even if never killed")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    for name in ("repeats", "mlp_steps", "cnn_steps", "gpt_steps", "batch", "conv_repeats", "naive_repeats",
                 "memory_epochs", "recurrent_steps", "lstm_memory_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive int, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup: expected a non-negative int, got {args.warmup}")
    check_busy_max_seconds(parser, args.busy_max_seconds)
    if not 0 <= args.warmup_seconds <= 60:
        parser.error(f"--warmup-seconds: expected seconds between 0 and 60, got {args.warmup_seconds}")
    args.only = only_names(parser, args.only, ("mlp", "cnn", "gpt", "gpt-processes", "conv", "memory", "lstm",
                                               "gru", "rnn", "lstm-memory"))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    results = run(args)
    return report(render(results), results, args.json)


if __name__ == "__main__":
    sys.exit(main())
