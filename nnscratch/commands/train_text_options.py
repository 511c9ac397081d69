"""``train-text``'s command line: its options, their checks, and the run configuration they give.

Every option is checked here before any work starts: a bad value raises ``UsageError``, which the
command prints as one line with exit code 2. The configuration comes from the chosen preset (in
line mode, its ``lines_`` settings), or from the checkpoint given to ``--resume``, overridden by the
options given; a resumed run keeps its configuration, only ``--iters`` and ``--eval-interval`` may
change.
"""

from __future__ import annotations

import argparse
import importlib.util
import math

from ..text_presets import DEFAULT_MODEL, PRESETS
from .common import UsageError, check_outputs, read_deadline
from .text_checkpoint import INT_RANGES, MAX_LR
from .training import check_int_range, read_count, read_numbers, read_resume, read_threads

NUMBER_OPTIONS = {"iters": int, "batch_size": int, "block_size": int, "lr": float, "seed": int, "eval_interval": int}
# the options a resumed run takes from its checkpoint (they must not contradict it)
RUN_OPTIONS = ("model", "batch_size", "block_size", "lr", "seed", "lines")
MAX_TOKENS = 1 << 20  # batch size x block size: past this one step's arrays take gigabytes
# batch size x block size squared, for the transformer: the attention weights of one head, which each of
# its 4 blocks x 4 heads keeps for backward in float32 (1 GiB in all at this bound)
MAX_ATTENTION_WEIGHTS = 1 << 24
TINY_SHAKESPEARE = "tinyshakespeare"  # the text's source in a config when no FILE was given
OUTPUT_OPTIONS = ("save", "metrics", "plot")
MAX_PROCESSES = 64  # --processes
MAX_AUTO_PROCESSES = 4  # --processes auto: one per usable CPU, at most this many (measured at 2)
MIN_PARALLEL_ITERS = 100  # --processes auto: shorter runs take one process (a worker takes ~0.5 s to start)


def processes_for(args, config: dict) -> tuple:
    """(processes, BLAS threads in each) for the run, from --processes and --threads (read already):
    auto takes one process per usable CPU (at most MAX_AUTO_PROCESSES and one per window of the
    batch) when --threads is auto and the run is long enough, else one."""
    from ..parallel import usable_cpus

    processes, threads = args.processes, args.threads
    if processes == "auto":
        auto = threads == "auto" and config["iters"] >= MIN_PARALLEL_ITERS
        processes = min(usable_cpus(), MAX_AUTO_PROCESSES, config["batch_size"]) if auto else 1
    if processes > 1 and threads == "auto":
        threads = 1
    return processes, threads


def _epilog() -> str:
    lines = ["models (--model) and their recipes:"]
    for p in PRESETS.values():
        lines.append(f"  {p.name:12s} {p.summary}")
        lines.append(f"  {'':12s} {p.iters} iterations (--lines: {p.lines_iters} of batch {p.lines_batch_size}, lr "
                     f"{p.lines_lr:g}), an estimate every {p.eval_interval}")
    lines += [
        "The text: FILE (UTF-8, at most 100 MB), else tiny shakespeare, downloaded on first use into --data-dir.",
        "--lines: each line of FILE is one example (names, words); the context is the longest line.",
        "At the end: the loss over the whole validation split (the last 10% of the text, or of the lines), in "
        "nats per character, and a sample of 300 characters.",
        "exit codes: 0 done, 1 failed (download, diverged, an output not written), 2 bad options, "
        "130 interrupted, 143 terminated",
    ]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.epilog = _epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the epilog's lines
    add = parser.add_argument
    add("file", nargs="?", metavar="FILE", default=None,
        help="the text to learn, UTF-8 (default: tiny shakespeare, downloaded on first use)")
    add("--model", choices=tuple(PRESETS), default=None, help=f"the network and its recipe (default: {DEFAULT_MODEL})")
    add("--iters", default=None, metavar="N", help="training iterations in all (default: the model's; with "
        "--resume, the checkpoint's plan, or a new total)")
    add("--batch-size", default=None, metavar="N", help="windows (or lines) per iteration (default: the model's)")
    add("--block-size", default=None, metavar="N",
        help="characters per window, the context (default: the model's; --lines: the longest line + 1)")
    add("--lr", default=None, help="peak learning rate, > 0 (default: the model's)")
    add("--seed", default=None, help="seed of the initial weights and of the training windows (default: 0)")
    add("--eval-interval", default=None, metavar="N",
        help="estimate the losses and save the checkpoint every N iterations (default: the model's)")
    add("--lines", action="store_true", help="each line of FILE is one example, as makemore's names")
    add("--save", metavar="PATH", default=None,
        help="checkpoint (.npz) written at every estimate, at the end, and on Ctrl-C (the last estimate's state)")
    add("--resume", metavar="PATH", default=None, help="continue a run from a checkpoint written by --save")
    add("--metrics", metavar="PATH", default=None,
        help="write a JSON file: config, the estimates, the whole-split validation loss, times, the sample")
    add("--plot", metavar="PATH", default=None,
        help="write a PNG of the loss curves (needs matplotlib: pip install 'nnscratch[plot]')")
    add("--threads", default="auto", metavar="N",
        help="numpy's BLAS threads: auto (the default) picks the faster of 1 and the default count as the load "
        "changes; N fixes it (needed for a --resume that continues bit for bit); with several --processes, "
        "each process's (auto: 1)")
    add("--processes", default="auto", metavar="N",
        help="processes that share each batch, one core each (data parallelism): auto (the default) takes one "
        f"per CPU, at most {MAX_AUTO_PROCESSES}, for runs of {MIN_PARALLEL_ITERS} iterations or more, or 1 with a "
        "fixed --threads; N fixes it (a --resume continues bit for bit with the same N)")
    add("--quiet", action="store_true", help="no progress output: only the validation loss and the sample")
    add("--data-dir", metavar="D", default=None,
        help="where tiny shakespeare is kept (default: $NNSCRATCH_TEXT_DIR, else ./data/text)")
    add("--mirror", metavar="URL", action="append", dest="mirrors", default=None,
        help="where to download tiny shakespeare: the file's URL, or a folder URL ending in / that holds it as "
        "tinyshakespeare.txt; repeatable, tried in order (default: $NNSCRATCH_TEXT_MIRROR, else char-rnn's "
        "file on GitHub)")
    add("--deadline", metavar="SECONDS", default=None,
        help="the most one mirror may take for the file, retries included, from 0.1 to 86400; a mirror under "
        "1 kB/s for 30 s is left (default: $NNSCRATCH_DOWNLOAD_DEADLINE, else 300)")


# -- checking the options ----------------------------------------------------------------------
def resolve_options(args):
    """Check every option; return ``(config, saved or None, checkpoint or None, outputs)``.

    ``saved`` is the resumed checkpoint's train-text record (``text_checkpoint.read_metadata``).
    ``outputs`` maps "save", "metrics" and "plot" (those given) to paths already shown writable,
    none of them an input (the checkpoint resumed, the text, the cached corpus) or another output.
    """
    from ..data.shakespeare import cache_path, resolve_text_mirrors
    from .text_checkpoint import check_resumable, read_metadata

    read_numbers(args, NUMBER_OPTIONS)
    args.threads = read_threads(args.threads)
    args.processes = read_count("--processes", args.processes, MAX_PROCESSES)
    try:  # the download's options too, even when the cache will spare the download
        args.deadline = read_deadline(args.deadline)
        if args.file is None:
            resolve_text_mirrors(args.mirrors)
    except (TypeError, ValueError) as error:  # a malformed --mirror, --deadline or environment variable
        raise UsageError(str(error)) from None
    checkpoint = read_resume(args.resume) if args.resume else None
    saved = read_metadata(f"--resume {args.resume}", checkpoint) if checkpoint is not None else None
    config = _resolve_config(args, saved)
    _check_numbers(config)
    if saved is not None:
        check_resumable(f"--resume {args.resume}", checkpoint, saved)
    inputs = [("--resume", args.resume)] if args.resume else []
    if args.file is not None:
        inputs.append(("FILE", args.file))
    elif saved is not None and saved["config"]["text"]["source"] != TINY_SHAKESPEARE:
        inputs.append(("the text of the checkpoint", saved["config"]["text"]["source"]))
    try:
        inputs.append(("the cached corpus", cache_path(args.data_dir)))
    except TypeError as error:  # a --data-dir that is no path
        raise UsageError(str(error)) from None
    given = check_outputs([(f"--{name}", getattr(args, name)) for name in OUTPUT_OPTIONS], inputs)
    outputs = {option[2:]: path for option, path in given.items()}
    if "plot" in outputs and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib, which is not installed: pip install 'nnscratch[plot]'")
    return config, saved, checkpoint, outputs


def _check_numbers(config: dict) -> None:
    for name, (low, high) in INT_RANGES.items():
        if config[name] is not None:
            check_int_range(f"--{name.replace('_', '-')}", config[name], low, high)
    if config["block_size"] is not None:
        check_batch_memory(config, f"--block-size {config['block_size']}", "take smaller ones")
    if not (math.isfinite(config["lr"]) and 0 < config["lr"] <= MAX_LR):
        raise UsageError(f"--lr must be a number > 0 and at most {MAX_LR:g}, got {config['lr']:g}")


def check_batch_memory(config: dict, block: str, advice: str) -> None:
    """A step's arrays bounded: batch x block characters, and the transformer's attention weights.

    ``block`` says where the block size came from (the option, or line mode's longest line)."""
    batch, size = config["batch_size"], config["block_size"]
    if batch * size > MAX_TOKENS:
        raise UsageError(f"--batch-size {batch} x {block} is more than {MAX_TOKENS:,} characters a batch; {advice}")
    if config["model"] == "transformer" and batch * size * size > MAX_ATTENTION_WEIGHTS:
        raise UsageError(f"--batch-size {batch} x {block} squared is more than {MAX_ATTENTION_WEIGHTS:,} attention "
                         f"weights a head (the transformer keeps them for its 16 heads, 1 GiB at that bound); {advice}")


def _resolve_config(args, saved) -> dict:
    """The run's configuration: the preset's defaults, or the checkpoint's, overridden by the options.

    ``block_size`` stays None in line mode until the text is read (the longest line decides it), and
    ``text`` (where the text came from, its SHA-256 and length) is filled in once it is read.
    """
    given = {name: getattr(args, name) for name in (*RUN_OPTIONS, "iters", "eval_interval")}
    given["lines"] = given["lines"] or None  # store_true: absent is False, which contradicts nothing
    if saved is None:
        preset = PRESETS[given["model"] or DEFAULT_MODEL]
        lines = bool(given["lines"])
        config = {
            "model": preset.name, "iters": preset.lines_iters if lines else preset.iters,
            "batch_size": preset.lines_batch_size if lines else preset.batch_size,
            "block_size": None if lines else preset.block_size, "lr": preset.lines_lr if lines else preset.lr,
            "seed": 0,
            "eval_interval": preset.eval_interval, "lines": lines, "text": None,
        }  # fmt: skip
        config.update({name: value for name, value in given.items() if value is not None})
        return config
    saved = saved["config"]
    for name in RUN_OPTIONS:
        if given[name] is not None and given[name] != saved[name]:
            shown = "--lines" if name == "lines" else f"--{name.replace('_', '-')} {given[name]}"
            raise UsageError(f"{shown} contradicts the checkpoint {args.resume} ({name} {saved[name]}); a resumed "
                             "run keeps its configuration (only --iters and --eval-interval may change)")
    config = dict(saved)
    for name in ("iters", "eval_interval"):
        if given[name] is not None:
            config[name] = given[name]
    return config
