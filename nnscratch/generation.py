"""Sampling text from a character-level language model, one character at a time.

Each character is drawn from the model's distribution over the vocabulary at the last position,

    p = softmax(logits / temperature), restricted to the ``top_k`` most likely characters (renormalised),

with ``rng`` (one generator: a seed gives the same text). How the model reads its past differs:

- a model without recurrent layers (the transformer) is run again on its last ``context`` characters
  for every new one (the window it was trained on: 64 characters is cheap);
- a recurrent model carries its state: the prompt is read once, then each new character is one step
  from the state the last one left (``initial_state`` in, ``final_state`` out, layer by layer).

Shape:
    the model takes ids (1, T) and returns logits (1, T, vocabulary size).
"""

from __future__ import annotations

import numpy as np

from .kernels.memory import release_memory
from .protocol import in_mode
from .validation import check_int, check_number

MAX_TEMPERATURE = 100.0
# sample_lines gives up after so many draws in a row with no new line: a model that writes a new one
# even once in 50 draws fails so 1000 times in a row with a probability of 2e-9
MAX_MISSES = 1000


def recurrent_layers(model) -> list:
    """The layers of ``model`` that carry a state (RNN, LSTM, GRU: they have ``final_state``)."""
    return [layer for layer in model.layers if hasattr(layer, "final_state")]


class Sampler:
    """Draws characters from ``model`` (a Sequential from ids to logits, in eval mode while it samples).

    ``context``: the most characters the model reads at once (a transformer's block size; ignored by
    a recurrent model). ``feed(ids)`` adds ids to what the model has read and returns the next
    character's logits; ``draw(logits)`` picks one.
    """

    def __init__(self, model, context: int, rng, temperature: float = 1.0, top_k: int | None = None):
        self.model, self.rng = model, rng
        self.context = check_int("Sampler", "context", context, 1)
        self.temperature = check_number("Sampler", "temperature", temperature, 0.0, MAX_TEMPERATURE,
                                        low_inclusive=False, high_inclusive=True)
        self.top_k = None if top_k is None else check_int("Sampler", "top_k", top_k, 1)
        self.recurrent = bool(recurrent_layers(model))
        if not self.recurrent and hasattr(model, "output_shape"):
            try:  # the windows it will be fed (positions for so many, as a transformer has), checked now
                model.output_shape((1, self.context))
            except ValueError as error:
                raise ValueError(f"Sampler: the model cannot read a context of {self.context} ids ({error})") from None
        self.reset()

    def reset(self) -> None:
        """Forget everything read: the next ``feed`` starts from an empty past (a zero state)."""
        self.history: list[int] = []
        self.states: dict = {}

    def feed(self, ids) -> np.ndarray:
        """Read ``ids`` (at least one) after what was read before; the logits of the next character.

        Shape:
            ids: (T,) ints -> (V,) float64
        """
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError("Sampler.feed: expected at least one id")
        with in_mode(False, self.model):
            if self.recurrent:
                x = np.asarray(ids, np.int64)[None]
                for index, layer in enumerate(self.model.layers):
                    if hasattr(layer, "final_state"):
                        x = _step_from(layer, x, self.states.get(index))
                        self.states[index] = layer.final_state
                    else:
                        x = layer.forward(x)
                logits = x
            else:
                self.history = (self.history + ids)[-self.context :]
                logits = self.model.forward(np.asarray(self.history, np.int64)[None])
        return np.asarray(logits[0, -1], np.float64)

    def draw(self, logits: np.ndarray) -> int:
        """One id drawn from softmax(logits / temperature) over the ``top_k`` largest logits."""
        # the max subtracted: exp never overflows. A tiny temperature sends the others to -inf, as meant
        # (their exp is 0), without numpy's overflow warning on the user's terminal
        with np.errstate(over="ignore"):
            scaled = (logits - logits.max()) / self.temperature
        if self.top_k is not None and self.top_k < len(scaled):
            cut = np.partition(scaled, -self.top_k)[-self.top_k]
            scaled = np.where(scaled >= cut, scaled, -np.inf)
        weights = np.exp(scaled)
        cumulative = np.cumsum(weights)
        return int(min(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right"),
                       len(weights) - 1))

    def text(self, prompt_ids, count: int):
        """Yield ``count`` ids, each drawn after the prompt and the ids before it."""
        logits = self.feed(prompt_ids)
        for index in range(count):
            next_id = self.draw(logits)
            yield next_id
            if index + 1 < count:
                logits = self.feed([next_id])

    def line(self, marker: int, max_length: int, prefix=()) -> tuple[list, bool]:
        """(ids, ended): one line drawn from a fresh start (the ``marker``, then the ``prefix`` ids, which
        begin the line) until the model writes the marker again. A line may hold ``max_length``
        characters (a transformer's context less the start marker); one the model does not end
        by then is cut there, and ``ended`` is False."""
        self.reset()
        ids = [int(i) for i in prefix]
        if len(ids) > max_length:
            return ids[:max_length], False
        logits = self.feed([marker, *ids])
        while True:
            next_id = self.draw(logits)
            if next_id == marker:
                return ids, True
            if len(ids) == max_length:  # no room for another character
                return ids, False
            ids.append(next_id)
            logits = self.feed([next_id])

    def close(self) -> None:
        """Give back the memory the model's layers kept from the last forward."""
        release_memory(self.model)



def _step_from(layer, x, state):
    """``layer.forward(x, initial_state=state)``, from zeros when ``state`` is None, even for a stateful
    layer: the state it carries (a training stream's) neither starts the sample nor is replaced by it."""
    stateful = getattr(layer, "stateful", False)
    if not stateful:
        return layer.forward(x, initial_state=state)
    layer.stateful = False  # for this call only: a layer that is not stateful leaves its carried state alone
    try:
        return layer.forward(x, initial_state=state)
    finally:
        layer.stateful = stateful


def sample_text(sampler: Sampler, vocabulary, prompt: str, count: int, start: str = "\n", on_char=None) -> str:
    """``count`` characters drawn after ``prompt`` (after ``start`` when the prompt is empty: the model
    needs something to read; the start is not part of the result). ``on_char(c)`` sees each as drawn."""
    if not prompt:
        prompt = start if start in vocabulary.chars else vocabulary.chars[0]
    drawn = []
    for next_id in sampler.text(vocabulary.encode(prompt, "the prompt"), count):
        drawn.append(vocabulary.chars[next_id])
        if on_char is not None:
            on_char(drawn[-1])
    return "".join(drawn)


def default_max_draws(count: int) -> int:
    """The lines ``sample_lines`` draws at most for ``count`` new ones, by default."""
    return 50 * count + 100


def sample_lines(sampler: Sampler, vocabulary, count: int, max_length: int, is_known=None, on_line=None,
                 max_draws: int | None = None, max_chars: int | None = None, prefix: str = "",
                 marker: str = "\n", max_drawn: int | None = None, max_misses: int = MAX_MISSES) -> dict:
    """Up to ``count`` new lines, each drawn from the start marker (then ``prefix``, which begins every
    line) to the end marker (line mode).

    A line for which ``is_known(line)`` is true (one of the training text's), one already drawn, or an
    empty one is dropped; so is one cut at ``max_length`` characters (the model never ended it). Drawing stops
    after ``max_draws`` lines (default ``50 * count + 100``), or ``max_misses`` draws in a row that
    gave nothing new, so a model that only repeats its training lines cannot loop for ever; once the
    lines kept hold ``max_chars`` characters (their newlines included), if given; and once the
    lines drawn, kept or dropped, hold ``max_drawn`` characters (each line's end counted too), if
    given: a model that only repeats long lines it knows costs a forward per character drawn.
    ``on_line(line)`` sees each line kept as soon as it is drawn.

    Returns ``{"lines": [...], "known": n, "repeated": n, "empty": n, "cut": n, "draws": n}``.
    """
    marker_id = int(vocabulary.encode(marker, "the line marker")[0])
    prefix_ids = vocabulary.encode(prefix, "the prompt")
    max_draws = default_max_draws(count) if max_draws is None else max_draws
    result = {"lines": [], "known": 0, "repeated": 0, "empty": 0, "cut": 0, "draws": 0}
    drawn, chars, drawn_chars, misses = set(), 0, 0, 0
    while (len(result["lines"]) < count and result["draws"] < max_draws and (max_chars is None or chars < max_chars)
           and (max_drawn is None or drawn_chars < max_drawn) and misses < max_misses):
        ids, ended = sampler.line(marker_id, max_length, prefix_ids)
        result["draws"] += 1
        drawn_chars += len(ids) + 1
        misses += 1  # back to 0 when the line is kept
        line = vocabulary.decode(ids)
        if not ended:
            result["cut"] += 1
        elif not line:
            result["empty"] += 1
        elif is_known is not None and is_known(line):
            result["known"] += 1
        elif line in drawn:
            result["repeated"] += 1
        else:
            drawn.add(line)
            chars, misses = chars + len(line) + 1, 0
            result["lines"].append(line)
            if on_line is not None:
                on_line(line)
    return result
