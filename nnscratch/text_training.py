"""One character-level language model's training, step by step: what ``train-text`` runs, and what
``scripts/benchmark_text.py`` times against PyTorch.

A step is nanoGPT's: the step's learning rate from the schedule, a batch of random windows from the
corpus (drawn from the run's one generator), forward to the mean cross-entropy over the tokens,
backward, the gradients clipped by their global norm, the optimizer's step. A loss or gradient norm
that is not finite stops the run before the update (``NonFiniteLossError``), so the weights stay
those of the last good step.

Two measures of the validation loss, both in nats per character (the mean cross-entropy over the
characters predicted):

- ``estimate()``: nanoGPT's ``estimate_loss``: the mean loss over a few batches of random windows
  of each split, the same windows at every call (their generator is seeded apart from training's,
  so estimating changes nothing in the run);
- ``validation_loss()``: the whole validation split, every character predicted once, as the
  figure a run reports.
"""

from __future__ import annotations

import math

import numpy as np

from .clip import clip_grad_norm
from .data.text import IGNORE_INDEX
from .parallel import DataParallel
from .protocol import in_mode
from .train import NonFiniteLossError

ESTIMATE_WINDOWS = 240  # windows per split in an estimate (nanoGPT's CPU run: 20 batches of 12)
ESTIMATE_BATCH = 60  # estimated this many windows at a time
VALIDATION_BATCH = 64  # the whole validation split, this many windows at a time
ESTIMATE_STREAM = 2**31 - 1  # the estimate's generator: np.random.default_rng([seed, ESTIMATE_STREAM])


def counted_targets(targets) -> int:
    """The targets the mean loss counts: all but the ignored ones (line mode's padding)."""
    return int(np.count_nonzero(targets != IGNORE_INDEX))


def seeded(seed: int) -> tuple:
    """(generator of the initial weights, generator of the training windows) of a run's seed: two
    independent streams, so that the windows do not depend on how many weights were drawn."""
    init, windows = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init), np.random.default_rng(windows)


class TextTraining:
    """The state of one run: ``net`` (model and loss in one Sequential, the loss's two layers last),
    its optimizer, the corpus (``CharCorpus`` or ``LineCorpus``), the generator of the training
    windows, and the recipe (batch and block sizes, ``schedule(step) -> lr``, the clipping norm).

    ``step(index)`` trains once and returns the batch's loss; ``estimate()`` and
    ``validation_loss()`` measure (in eval mode, leaving every layer's mode as it was).

    ``parallel`` runs each batch's forward and backward: by default in this process alone; a
    ``DataParallel`` over several processes (``use_processes``) splits the batch's rows among them.
    """

    def __init__(self, net, optimizer, corpus, rng, *, batch_size, block_size, schedule, max_grad_norm, seed):
        self.net, self.model, self.loss = net, net[:-2], net[-2:]
        self.optimizer, self.corpus, self.rng = optimizer, corpus, rng
        self.batch_size, self.block_size = batch_size, block_size
        self.schedule, self.max_grad_norm, self.seed = schedule, max_grad_norm, seed
        self.parallel = self.use_processes(1)

    def use_processes(self, processes: int, threads: int = 1, fallback: bool = False) -> DataParallel:
        """Train and measure over ``processes`` processes from now on (each with BLAS at ``threads``
        threads): the ``DataParallel`` to enter around the work, which starts and stops them (or,
        with ``fallback``, runs in one process if they cannot start)."""
        self.parallel = DataParallel(self.model, self.loss, processes, counted_targets, threads, "train-text",
                                     fallback=fallback)
        return self.parallel

    def step(self, index: int) -> float:
        """Train on one batch with the rate of step ``index`` (0-based); return its loss."""
        self.optimizer.lr = float(self.schedule(index))
        x, y = self.corpus.batch(self.rng, self.batch_size, self.block_size)
        # a diverging run overflows in exp() and friends: the checks below say so once, clearly
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value = self.parallel.step(x, y)  # forward and backward
            if not math.isfinite(value):
                raise self._diverged("loss", value, index)
            norm = clip_grad_norm([self.model, self.loss], self.max_grad_norm)
            if not math.isfinite(norm):
                raise self._diverged("gradient norm", norm, index, f" (the loss was {value:.4f})")
            self.optimizer.step()
        return value

    def _diverged(self, what: str, value: float, index: int, after: str = "") -> NonFiniteLossError:
        return NonFiniteLossError(f"training diverged: the {what} is {value} at iteration {index + 1}{after}, "
                                  f"with lr {self.optimizer.lr:g}; the learning rate is probably too high")

    def _mean_loss(self, batches) -> float:
        """The mean loss over every token the batches count (the ignored ones left out)."""
        total, counted = 0.0, 0
        with in_mode(False, self.net), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for x, y in batches:
                count = counted_targets(y)
                if count:
                    total += self.parallel.loss_of(x, y) * count
                    counted += count
        return total / counted if counted else math.nan

    def estimate(self) -> dict:
        """{"train": loss, "val": loss}: each over ``ESTIMATE_WINDOWS`` random windows of its split."""
        result = {}
        for split in ("train", "val"):
            rng = np.random.default_rng([self.seed, ESTIMATE_STREAM])
            batches = (self.corpus.batch(rng, ESTIMATE_BATCH, self.block_size, split="validation" if split == "val"
                                         else "train") for _ in range(ESTIMATE_WINDOWS // ESTIMATE_BATCH))
            result[split] = self._mean_loss(batches)
        return result

    def validation_loss(self) -> float:
        """The mean loss over the whole validation split, in nats per character."""
        return self._mean_loss(self.corpus.validation_batches(self.block_size, VALIDATION_BATCH))
