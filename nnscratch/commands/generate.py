"""``generate``: text from a checkpoint written by ``train-text --save``, printed as it is sampled.

The checkpoint holds the vocabulary (and, in line mode, a hash of every line of the training text),
so the corpus is not needed. A text model writes ``--tokens`` characters after ``--prompt``, each
printed (and flushed) as soon as it is drawn; a line model (``train-text --lines``) writes ``--count``
new lines, each printed when complete, by default none that is in its training text (the command
says how many it dropped). The same ``--seed`` gives the same text.

Exit codes: 0 done, 1 fewer new lines than asked (the model kept repeating known ones) or a
standard output that cannot be written (closed, or a full disk), 2 bad options or a checkpoint that
is not a usable text model, 130 interrupted.
"""

from __future__ import annotations

import sys

from .common import UsageError, check_finite_weights, read_checkpoint, run_command, shown, stdout_failed
from .training import check_int_range, read_numbers

HELP = "write text with a language model trained by train-text, as it is sampled"
NUMBER_OPTIONS = {"tokens": int, "temperature": float, "top_k": int, "seed": int, "count": int}
DEFAULT_TOKENS = 500
DEFAULT_COUNT = 20
DEFAULT_TEMPERATURE = 0.8  # nanoGPT's sample.py
MAX_TOKENS = 1_000_000
MAX_COUNT = 100_000
MAX_PROMPT = 100_000
MAX_TOP_K = 1 << 20  # no vocabulary is larger (the vocabulary's own size bounds it once read)


def add_arguments(parser) -> None:
    add = parser.add_argument
    add("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by train-text --save")
    add("--prompt", default="", metavar="TEXT", help="the text to continue (a line model: how every line begins; "
        "default: nothing, the model starts a new line)")
    add("--tokens", default=None, metavar="N", help=f"characters to write after the prompt (default {DEFAULT_TOKENS}; "
        "not for a line model)")
    add("--count", default=None, metavar="N", help=f"a line model: new lines to write (default {DEFAULT_COUNT})")
    add("--keep-known", action="store_true", help="a line model: keep lines that are in the training text too")
    add("--temperature", default=None, metavar="T", help="divides the logits: below 1 safer, above 1 wilder; "
        f"in (0, 100] (default {DEFAULT_TEMPERATURE})")
    add("--top-k", default=None, metavar="K", help="draw among the K most likely characters only (default: all)")
    add("--seed", default=None, metavar="S", help="seed of the draws: the same seed gives the same text (default 0)")


def run(args) -> int:
    return run_command("generate", _run, args)


def _numbers(args) -> dict:
    """The numeric options read and bounded, with their defaults: all before the checkpoint is read."""
    read_numbers(args, NUMBER_OPTIONS)
    options = {"tokens": DEFAULT_TOKENS if args.tokens is None else args.tokens,
               "count": DEFAULT_COUNT if args.count is None else args.count,
               "seed": 0 if args.seed is None else args.seed,
               "temperature": DEFAULT_TEMPERATURE if args.temperature is None else args.temperature,
               "top_k": args.top_k}  # fmt: skip
    check_int_range("--tokens", options["tokens"], 1, MAX_TOKENS)
    check_int_range("--count", options["count"], 1, MAX_COUNT)
    check_int_range("--seed", options["seed"], 0, 2**64 - 1)
    if options["top_k"] is not None:
        check_int_range("--top-k", options["top_k"], 1, MAX_TOP_K)
    if not 0 < options["temperature"] <= 100:  # NaN fails too
        raise UsageError(f"--temperature must be a number > 0 and at most 100, got {options['temperature']:g}")
    if len(args.prompt) > MAX_PROMPT:
        raise UsageError(f"--prompt has {len(args.prompt):,} characters, more than {MAX_PROMPT:,}")
    return options


def _check_for_model(args, options: dict, vocabulary, config: dict) -> None:
    """The options that depend on the model: its kind (text or lines), its vocabulary and, for a line
    model, the longest line it writes (its context less the start marker)."""
    lines = config["lines"]
    if lines and args.tokens is not None:
        raise UsageError("--tokens is for a text model; this is a line model (train-text --lines): use --count")
    if not lines and (args.count is not None or args.keep_known):
        option = "--count" if args.count is not None else "--keep-known"
        raise UsageError(f"{option} is for a line model (train-text --lines); this model writes text: use --tokens")
    if options["top_k"] is not None:
        check_int_range("--top-k", options["top_k"], 1, len(vocabulary))
    if lines and "\n" in args.prompt:
        raise UsageError("--prompt of a line model is how each line begins: it cannot hold a line break")
    if lines and len(args.prompt) > config["block_size"] - 1:  # every line drawn would be cut
        raise UsageError(f"--prompt has {len(args.prompt):,} characters; this line model writes lines of at most "
                         f"{config['block_size'] - 1:,}")
    try:
        vocabulary.encode(args.prompt, "--prompt")
    except ValueError as error:
        raise UsageError(str(error)) from None


def _run(args) -> int:
    import numpy as np

    from ..generation import Sampler
    from .text_checkpoint import read_metadata

    options = _numbers(args)
    if sys.stdout is None:  # started with standard output closed (`>&-`): print() would drop the text silently
        print("generate: the standard output is closed: nowhere to write the text", file=sys.stderr)
        return 1
    checkpoint = read_checkpoint(args.checkpoint)
    saved = read_metadata(shown(args.checkpoint), checkpoint)
    config, vocabulary = saved["config"], saved["vocabulary"]
    _check_for_model(args, options, vocabulary, config)
    check_finite_weights(args.checkpoint, checkpoint.model)
    net = checkpoint.model
    layers = getattr(net, "layers", None)
    if not isinstance(layers, list) or len(layers) < 3:
        raise UsageError(f"{shown(args.checkpoint)}: its network is not a model followed by its loss and Mean")
    width = np.shape(net[:-2].forward(np.zeros((1, 1), np.int64)))[-1]
    if width != len(vocabulary):
        raise UsageError(f"{shown(args.checkpoint)}: its network scores {width} characters, its vocabulary has "
                         f"{len(vocabulary)}")
    try:  # the sampler checks the context its record gives against the network's positions
        sampler = Sampler(net[:-2], config["block_size"], np.random.default_rng(options["seed"]),
                          temperature=options["temperature"], top_k=options["top_k"])
    except ValueError as error:
        raise UsageError(f"{shown(args.checkpoint)}: {error}") from None
    try:
        if config["lines"]:
            return _lines(sampler, args, saved, options)
        _text(sampler, vocabulary, args.prompt, options["tokens"])
        return 0
    except OSError as error:  # `generate ... | head`, or stdout on a full disk
        return stdout_failed("generate", "the text", error)
    finally:
        sampler.close()


def _text(sampler, vocabulary, prompt: str, tokens: int) -> None:
    from ..generation import sample_text

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    write(prompt)
    text = sample_text(sampler, vocabulary, prompt, tokens, on_char=write)
    if not text.endswith("\n"):
        write("\n")


def _lines(sampler, args, saved: dict, options: dict) -> int:
    from ..generation import MAX_MISSES, default_max_draws, sample_lines
    from .text_checkpoint import known_set, line_hash

    known = None if args.keep_known else known_set(saved["known_lines"])

    def write(line: str) -> None:
        print(line, flush=True)

    result = sample_lines(sampler, saved["vocabulary"], options["count"], saved["config"]["block_size"] - 1,
                          is_known=None if known is None else (lambda line: line_hash(line) in known),
                          on_line=write, prefix=args.prompt)
    dropped = [f"{result[key]:,} {what}" for key, what in (
        ("known", "in the training text"), ("repeated", "drawn before"), ("empty", "empty"),
        ("cut", f"not ended within {saved['config']['block_size'] - 1} characters")) if result[key]]
    note = "" if known is not None or args.keep_known else " (the checkpoint keeps no hashes of the training " \
        "lines: lines of the training text were not dropped)"
    print(f"generate: {len(result['lines']):,} new lines from {result['draws']:,} drawn; dropped "
          f"{', '.join(dropped) if dropped else 'none'}{note}", file=sys.stderr)
    if len(result["lines"]) < options["count"]:
        when = (f"when {MAX_MISSES:,} lines drawn in a row gave nothing new," if result["draws"] < default_max_draws(
            options["count"]) else f"after {result['draws']:,} lines drawn")
        print(f"generate: stopped {when} with {len(result['lines']):,} of the {options['count']:,} new ones asked for",
              file=sys.stderr)
        return 1
    return 0
