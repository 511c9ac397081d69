"""train-text runs for the command's tests: a small text, small settings, and ways to stop a run.

- ``TEXT``: a few lines of Richard III, repeated (the ``text`` fixture of tests/commands writes it);
- ``RUN``: the gru preset for 24 iterations of 4 windows of 12 characters, an estimate every 8;
  ``FEW``: the rnn preset for 4 iterations (for tiny shakespeare, where the text is large);
- ``run(*argv)``: train-text's exit code, every argument as text;
- ``interrupt_at(monkeypatch, index, error)``: the step of that index raises ``error`` (Ctrl-C);
- ``weights(path)``: copies of a checkpoint's parameters.
"""

from __future__ import annotations

import nnscratch as nn
from nnscratch.cli import train_text_main
from nnscratch.text_training import TextTraining

TEXT = ("Now is the winter of our discontent\nMade glorious summer by this sun of York;\n"
        "And all the clouds that lour'd upon our house\nIn the deep bosom of the ocean buried.\n") * 12
RUN = ["--model", "gru", "--iters", "24", "--eval-interval", "8", "--batch-size", "4", "--block-size", "12",
       "--threads", "1", "--quiet"]
FEW = ["--model", "rnn", "--iters", "4", "--eval-interval", "2", "--batch-size", "2", "--block-size", "8",
       "--threads", "1", "--quiet"]


def run(*argv):
    return train_text_main([str(a) for a in argv])


def interrupt_at(monkeypatch, index, error=KeyboardInterrupt):
    real_step = TextTraining.step

    def step(self, i):
        if i == index:
            raise error
        return real_step(self, i)

    monkeypatch.setattr(TextTraining, "step", step)


def weights(path):
    return [p.copy() for p in nn.load_checkpoint(path).model.parameters]
