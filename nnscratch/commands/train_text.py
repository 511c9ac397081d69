"""``train-text``: train a character-level language model on a text, then measure it and sample it.

Every option is checked before any work starts (bad values exit 2 with one clear line; the options
and their checks are in ``train_text_options``). Then the text is read (tiny shakespeare is
downloaded on first use), the model trained for its iterations (``nnscratch.text_training``) with a
progress bar showing the running loss, the losses estimated every ``--eval-interval`` iterations
(and the checkpoint saved then), and the run ends with the loss over the whole validation split, in
nats per character, and a 300-character sample (in line mode: new lines).

Exit codes: 0 done, 1 a failure while running (download, divergence, an output that could not be
written, out of memory), 2 bad options, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). On Ctrl-C
the last estimate's state is saved (the steps since are undone), so that ``--resume`` continues
exactly as the run would have gone on (with a fixed ``--threads``, or a fixed ``--processes``: bit for
bit). ``--processes`` splits each batch among processes, one core each (``nnscratch.parallel``). A diverged run
(a NaN or infinite loss or gradient) stops before the bad step, says so, and writes no NaN anywhere:
the checkpoint keeps the last estimate's state, and no metrics or plot are written.
"""

from __future__ import annotations

import math
import sys

from .common import stdout_failed
from .training import Outputs, interrupt_exit_code, run_training, stopped

# add_arguments is this command's, as every command module has one (see nnscratch/commands/__init__.py)
from .train_text_options import add_arguments, resolve_options  # noqa: F401 (add_arguments)

HELP = "train a character-level language model (GPT, LSTM, GRU or RNN) on a text (default: tiny shakespeare)"
SAMPLE_CHARS = 300
SAMPLE_TEMPERATURE = 0.8  # nanoGPT's sample.py
# line mode: the most characters drawn for the sample, lines dropped included (a model that only
# repeats its training lines would otherwise draw 50 lines per character of the sample)
SAMPLE_DRAWN = 10 * SAMPLE_CHARS


def run(args) -> int:
    return run_training("train-text", _run, args)


def _start(config: dict, saved, checkpoint, corpus):
    """(net, optimizer, generator of the training windows, iterations done, history, seconds so far)."""
    from ..text_presets import PRESETS
    from ..text_training import seeded

    init_rng, rng = seeded(config["seed"])
    if checkpoint is None:
        preset = PRESETS[config["model"]]
        net = preset.build(len(corpus.vocabulary), config["block_size"], rng=init_rng)
        return net, preset.optimizer(net, config["lr"]), rng, 0, [], 0.0
    rng.bit_generator.state = saved["rng_state"]  # the windows continue exactly where they stopped
    return checkpoint.model, checkpoint.optimizer, rng, saved["iteration"], list(saved["history"]), saved["seconds"]


def _run(args) -> int:
    from ..parallel import WorkerError
    from ..text_presets import PRESETS
    from ..text_training import TextTraining
    from ..train import NonFiniteLossError
    from .text_checkpoint import known_lines
    from .train_text_data import build_corpus, read_source
    from .train_text_loop import Loop
    from .train_text_options import processes_for

    config, saved, checkpoint, paths = resolve_options(args)
    outputs = Outputs("train-text", paths)
    say = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    source = read_source(args, saved)
    if source is None:
        return 1
    corpus = build_corpus(*source, config, saved)
    net, optimizer, rng, start, history, seconds = _start(config, saved, checkpoint, corpus)
    preset = PRESETS[config["model"]]
    training = TextTraining(net, optimizer, corpus, rng, batch_size=config["batch_size"],
                            block_size=config["block_size"], schedule=preset.schedule(config["lr"], config["iters"]),
                            max_grad_norm=preset.max_grad_norm, seed=config["seed"])
    known = known_lines(corpus.train_lines + corpus.validation_lines) if config["lines"] else None
    loop = Loop(training, config, outputs, history, seconds, known, progress=not args.quiet, start=start)
    processes, threads = processes_for(args, config)
    say(_plan(config, start, corpus, net, saved, processes))
    try:
        # auto's processes fall back to one when workers cannot start (no /dev/shm, a daemonic parent)
        with training.use_processes(processes, 1 if threads == "auto" else threads,
                                    fallback=args.processes == "auto") as parallel:
            if parallel.fallback_reason:
                say(f"train-text: {parallel.fallback_reason}; training in one process")
                threads = args.threads
            loop.run(threads)
            validation = training.validation_loss()
    except KeyboardInterrupt as interrupt:
        saved_to = loop.save_last()
        what = f"saved the state after iteration {loop.last['iteration']} to {saved_to} (continue with --resume " \
               f"{saved_to})" if saved_to else f"nothing saved{': no --save' if 'save' not in outputs else ''}"
        print(f"train-text: {stopped(interrupt)} at iteration {loop.done}; {what}", file=sys.stderr)
        return interrupt_exit_code(interrupt)
    except NonFiniteLossError as error:
        return _diverged(str(error), config, loop, outputs)
    except MemoryError:
        print(f"train-text: out of memory: take a smaller --batch-size (now {config['batch_size']}) or --block-size "
              f"(now {config['block_size']})", file=sys.stderr)
        return 1
    except WorkerError as error:  # a worker process that died or failed unexpectedly (its message names us)
        print(error, file=sys.stderr)
        return 1
    if not math.isfinite(validation):
        return _diverged(f"training diverged: the validation loss is {validation}", config, loop, outputs)
    sample = _sample(training, config, corpus, known)
    loop.finish(validation, sample)
    try:
        _report(config, corpus, loop, validation, sample, args.quiet)
        sys.stdout.flush()
    except OSError as error:  # `train-text | head -1`, or stdout on a full disk: the outputs are written
        return max(stdout_failed("train-text", "the result", error), 1 if outputs.failed else 0)
    return 1 if outputs.failed else 0


def _plan(config: dict, start: int, corpus, net, saved, processes: int) -> str:
    from ..text_presets import parameter_count

    if config["lines"]:
        data = (f"{len(corpus.train_lines):,} training lines and {len(corpus.validation_lines):,} validation lines, "
                f"context {config['block_size']}")
    else:
        data = (f"{len(corpus.train):,} training and {len(corpus.validation):,} validation characters, "
                f"windows of {config['block_size']}")
    plan = (f"iterations {start + 1}-{config['iters']}" if start < config["iters"]
            else f"nothing to train (iteration {start} of {config['iters']} done)")
    resumed = " (resumed)" if saved is not None else ""
    shared = f" shared by {processes} processes" if processes > 1 else ""
    return (f"train-text: {config['model']} ({parameter_count(net):,} parameters){resumed}, {plan}, batch "
            f"{config['batch_size']}{shared}, {len(corpus.vocabulary)} distinct characters, {data}, seed "
            f"{config['seed']}")


def _diverged(message: str, config: dict, loop, outputs) -> int:
    print(f"train-text: {message}; try a lower --lr (now {config['lr']:g}). Nothing was written from the diverged "
          "steps (no metrics, no plot)", file=sys.stderr)
    if "save" in outputs and loop.saves:
        print(f"train-text: {outputs['save']} holds the state after iteration {loop.last['iteration']}",
              file=sys.stderr)
    return 1


def _sample(training, config: dict, corpus, known) -> str:
    """The run's sample: ``SAMPLE_CHARS`` characters, or in line mode new lines up to that many."""
    import numpy as np

    from ..generation import Sampler, sample_lines, sample_text
    from .text_checkpoint import known_set, line_hash

    sampler = Sampler(training.model, config["block_size"], np.random.default_rng(config["seed"]),
                      temperature=SAMPLE_TEMPERATURE)
    try:
        if not config["lines"]:
            return sample_text(sampler, corpus.vocabulary, "", SAMPLE_CHARS)
        hashes = known_set(known)
        drawn = sample_lines(sampler, corpus.vocabulary, SAMPLE_CHARS, config["block_size"] - 1,
                             is_known=None if hashes is None else (lambda line: line_hash(line) in hashes),
                             max_chars=SAMPLE_CHARS, max_drawn=SAMPLE_DRAWN)
        return "\n".join(drawn["lines"])
    finally:
        sampler.close()


def _report(config: dict, corpus, loop, validation: float, sample: str, quiet: bool) -> None:
    what = "lines" if config["lines"] else "characters"
    count = len(corpus.validation_lines) if config["lines"] else len(corpus.validation)
    print(f"validation loss {validation:.4f} nats per character ({validation / math.log(2):.4f} bits) over the whole "
          f"validation split ({count:,} {what}); {config['model']}, {loop.done} iterations, "
          f"{loop.seconds:.1f} s training")
    kind = "new lines" if config["lines"] else f"{SAMPLE_CHARS} characters"
    print(f"sample ({kind}, temperature {SAMPLE_TEMPERATURE}):")
    print(sample or f"(none: no line that is not in the text, within the {SAMPLE_DRAWN:,} characters drawn)")
    if "save" in loop.outputs and "save" not in loop.outputs.failed and not quiet:
        print(f"train-text: checkpoint saved to {loop.outputs['save']}", file=sys.stderr)

