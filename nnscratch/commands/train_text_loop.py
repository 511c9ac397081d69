"""``train-text``'s loop around the training steps: the progress bar, the estimates, the checkpoints
and the outputs at the end.

After every ``eval_interval`` iterations (and the last), the losses are estimated, a record goes into
the history, and the state is kept (copies of the weights, the optimizer's state, the generator's)
and saved to ``--save``. That kept state is what Ctrl-C saves: the steps since are undone, so the
file always holds a state from which ``--resume`` continues exactly. Weights that are not all finite
are never saved (the run has diverged: ``NonFiniteLossError``).
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .text_checkpoint import KEY
from .common import save_figure
from .training import write_json

try:  # tqdm is a dependency; the guard keeps --quiet working in a bare environment
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

POSTFIX_EVERY = 10  # iterations between updates of the bar's running loss (formatting it costs)
RUNNING = 50  # the bar's running loss: the mean over the last RUNNING iterations


class Loop:
    """One run of ``train-text``: ``run()`` trains, ``save_last()`` saves the kept state (Ctrl-C),
    ``finish()`` writes what the end of a run writes."""

    def __init__(self, training, config: dict, outputs, history: list, seconds: float, known, progress: bool,
                 start: int):
        self.training, self.config, self.outputs = training, config, outputs
        self.history, self.seconds, self.known, self.progress = history, seconds, known, progress
        self.start = self.done = start  # iterations done (before this run, and in all)
        self.saves = 0  # checkpoints written by this run
        # the state kept at the last estimate, or the start's: a Ctrl-C before the first step saves that
        self.keep(start)

    # -- the state ------------------------------------------------------------------------------------
    def metadata(self, iteration: int, validation_loss=None) -> dict:
        return {KEY: {
            "config": {**self.config, "text": dict(self.config["text"])}, "iteration": iteration,
            "vocabulary": self.training.corpus.vocabulary.chars, "seconds": self.seconds,
            "history": [dict(record) for record in self.history], "known_lines": self.known,
            "rng_state": self.training.rng.bit_generator.state, "validation_loss": validation_loss,
        }}  # fmt: skip

    def keep(self, iteration: int) -> None:
        """Keep copies of the state after ``iteration`` iterations: what Ctrl-C saves."""
        net, optimizer = self.training.net, self.training.optimizer
        self.last = {"iteration": iteration, "parameters": [p.copy() for p in net.parameters],
                     "optimizer": optimizer.state_dict(), "metadata": self.metadata(iteration)}

    def save(self, metadata: dict) -> bool:
        """Save the network as it is now with ``metadata``, to --save if given (never a NaN weight)."""
        from ..io import save
        from ..train import NonFiniteLossError

        if "save" not in self.outputs:
            return False
        if not all(np.isfinite(p).all() for p in self.training.net.parameters):
            raise NonFiniteLossError("training diverged: some weights are NaN or infinite")
        net, optimizer = self.training.net, self.training.optimizer
        written = self.outputs.write("save", "the checkpoint", lambda path: save(net, path, optimizer=optimizer,
                                                                                 metadata=metadata))
        self.saves += written
        return written

    def save_last(self):
        """Put the kept state back into the network and optimizer and save it; its path, or None."""
        if self.last is None or "save" not in self.outputs:
            return None
        for p, kept in zip(self.training.net.parameters, self.last["parameters"]):
            p[...] = kept
        self.training.optimizer.load_state_dict(self.last["optimizer"])
        return self.outputs["save"] if self.save(self.last["metadata"]) else None

    # -- training ------------------------------------------------------------------------------------
    def run(self, threads) -> None:
        from ..threads import training_threads

        config, training, start = self.config, self.training, self.start
        iters, interval = config["iters"], config["eval_interval"]
        bar = None
        if self.progress and tqdm is not None and start < iters:
            bar = tqdm(total=iters, initial=start, desc=f"train-text {config['model']}", unit="it", leave=False,
                       dynamic_ncols=True, file=sys.stderr)
        recent, since = [], []
        try:
            with training_threads(threads, "train-text") as chooser:
                began = time.perf_counter()
                for index in range(start, iters):
                    loss = training.step(index)
                    chooser.step()  # the BLAS thread chooser times the steps
                    self.done = index + 1
                    recent, since = (recent + [loss])[-RUNNING:], since + [loss]
                    if bar is not None:
                        bar.update(1)
                        if self.done % POSTFIX_EVERY == 0:
                            bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", lr=f"{training.optimizer.lr:.2e}",
                                            refresh=False)
                    if self.done % interval == 0 or self.done == iters:
                        self.seconds += time.perf_counter() - began
                        self._estimate(sum(since) / len(since), bar)
                        since = []
                        chooser.skip()  # the estimate and the save are no step
                        began = time.perf_counter()
        finally:
            if bar is not None:
                bar.close()

    def _estimate(self, mean_loss: float, bar) -> None:
        from ..train import NonFiniteLossError

        losses = self.training.estimate()
        for split, name in (("train", "training"), ("val", "validation")):
            if not math.isfinite(losses[split]):
                raise NonFiniteLossError(f"training diverged: the estimated {name} loss is {losses[split]} at "
                                         f"iteration {self.done}")
        record = {"iter": self.done, "loss": mean_loss, "train_loss": losses["train"], "val_loss": losses["val"],
                  "lr": float(self.training.optimizer.lr), "seconds": self.seconds}
        self.history.append(record)
        line = (f"iteration {self.done}/{self.config['iters']}: loss {mean_loss:.4f}; estimates: train "
                f"{losses['train']:.4f}, val {losses['val']:.4f} nats/char ({self.seconds:.1f} s)")
        if self.progress:
            (tqdm.write if bar is not None else print)(line, file=sys.stderr)
        self.keep(self.done)
        self.save(self.last["metadata"])

    # -- the end -------------------------------------------------------------------------------------
    def finish(self, validation_loss: float, sample: str) -> None:
        """The last checkpoint (with the whole split's loss), the metrics and the plot."""
        self.save(self.metadata(self.done, validation_loss))
        if "metrics" in self.outputs:
            self.outputs.write("metrics", "the metrics", write_json, self._metrics(validation_loss, sample))
        if "plot" in self.outputs:
            self.outputs.write("plot", "the plot", _plot, self.history, validation_loss, self.config)

    def _metrics(self, validation_loss: float, sample: str) -> dict:
        corpus, config = self.training.corpus, self.config
        tokens = config["batch_size"] * config["block_size"] * self.done
        return {
            "config": config, "history": self.history, "iterations": self.done,
            "validation_loss": validation_loss, "validation_bits_per_char": validation_loss / math.log(2),
            "validation_split": len(corpus.validation_lines) if config["lines"] else len(corpus.validation),
            "train_seconds": self.seconds, "tokens_per_second": tokens / self.seconds if self.seconds > 0 else None,
            "vocabulary": corpus.vocabulary.chars, "sample": sample,
        }  # fmt: skip


def _plot(history: list, validation_loss: float, config: dict, path) -> None:
    """The losses over the iterations: training (running mean), both estimates, the final whole split."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    iters = [record["iter"] for record in history]
    axes.plot(iters, [r["loss"] for r in history], marker=".", label="training (mean since the last estimate)")
    axes.plot(iters, [r["train_loss"] for r in history], marker="o", label="training split (estimate)")
    axes.plot(iters, [r["val_loss"] for r in history], marker="o", label="validation split (estimate)")
    if iters:
        axes.scatter([iters[-1]], [validation_loss], marker="*", s=150, color="black", zorder=3,
                     label=f"whole validation split: {validation_loss:.4f}")
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss (nats per character)")
    axes.set_title(f"train-text {config['model']}{' --lines' if config['lines'] else ''}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    save_figure(figure, path)
