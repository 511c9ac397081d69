"""What a ``train-text`` checkpoint holds beside the network, and its checks.

``save`` writes the network (with its loss), the optimizer and ``metadata["train_text"]``:

- ``config``: the run's configuration (the model, iterations, batch and block sizes, lr, seed,
  estimate interval, line mode) and ``text``: where the text came from, its SHA-256 and length;
- ``vocabulary``: the model's characters, sorted (so that ``generate`` never needs the corpus);
- ``iteration``, ``seconds`` (training time so far), ``history`` (a record per estimate) and
  ``rng_state`` (the training windows' generator): all a resume needs to continue bit for bit;
- ``known_lines`` (line mode): a 48-bit hash of every distinct line of the text, at most
  ``MAX_KNOWN_LINES`` of them (None beyond), so that ``generate`` can drop the lines it already knows;
- ``validation_loss`` (the whole split, once the run ends; None before).

Both ``--resume`` and ``generate`` check what they read here in full, so a bad file is one line.
"""

from __future__ import annotations

import hashlib
import math
import re

from ..text_presets import PRESETS
from .common import UsageError

KEY = "train_text"
CONFIG_KEYS = ("model", "iters", "batch_size", "block_size", "lr", "seed", "eval_interval", "lines", "text")
HISTORY_KEYS = ("iter", "loss", "train_loss", "val_loss", "lr", "seconds")
HASH_CHARS = 12  # 48 bits a line: with 500,000 lines, a new line is taken for a known one once in 500 million
MAX_KNOWN_LINES = 500_000
# the bounds of a run's configuration, for the options (train_text_options) and for a record read back
INT_RANGES = {"iters": (0, 10_000_000), "batch_size": (1, 65_536), "block_size": (1, 65_536), "seed": (0, 2**64 - 1),
              "eval_interval": (1, 10_000_000)}
MAX_LR = 1e6


def line_hash(line: str) -> str:
    return hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=HASH_CHARS // 2).hexdigest()


def known_lines(lines) -> dict | None:
    """The hashes of the distinct ``lines``, sorted and joined: None when there are too many."""
    distinct = set(lines)
    if len(distinct) > MAX_KNOWN_LINES:
        return None
    return {"count": len(distinct), "hashes": "".join(sorted(line_hash(line) for line in distinct))}


def known_set(record) -> set | None:
    """The set of hashes of a checkpoint's ``known_lines`` (None when it kept none)."""
    if record is None:
        return None
    hashes = record["hashes"]
    return {hashes[i : i + HASH_CHARS] for i in range(0, len(hashes), HASH_CHARS)}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_config(config, refuse) -> None:
    if not isinstance(config, dict) or tuple(sorted(config)) != tuple(sorted(CONFIG_KEYS)):
        refuse(f"its config is not train-text's: {config!r:.120}")
    if config["model"] not in PRESETS:
        refuse(f"its config names the model {config['model']!r:.40}, expected one of {', '.join(PRESETS)}")
    for name, (low, high) in INT_RANGES.items():
        if not (_integer(config[name]) and low <= config[name] <= high):
            refuse(f"its config has {name}={config[name]!r:.40}, expected an int from {low} to {high}")
    if not (_integer(config["block_size"]) and config["block_size"] >= 1):
        refuse(f"its config has block_size={config['block_size']!r:.40}, expected an int >= 1")
    if not (_finite(config["lr"]) and 0 < config["lr"] <= MAX_LR):
        refuse(f"its config has lr={config['lr']!r:.40}, expected a number in (0, {MAX_LR:g}]")
    if not isinstance(config["lines"], bool):
        refuse(f"its config has lines={config['lines']!r:.40}, expected true or false")
    text = config["text"]
    if not (isinstance(text, dict) and set(text) == {"source", "sha256", "characters"}
            and isinstance(text["source"], str) and isinstance(text["sha256"], str)
            and re.fullmatch(r"[0-9a-f]{64}", text["sha256"]) and _integer(text["characters"])):
        refuse(f"its record of the text is not train-text's: {text!r:.120}")


def read_metadata(path, checkpoint) -> dict:
    """``checkpoint.metadata["train_text"]``, checked in full; UsageError naming ``path`` otherwise."""
    from ..data.text import MARKER, Vocabulary

    def refuse(what):
        raise UsageError(f"{path}: {what}")

    saved = checkpoint.metadata.get(KEY) if isinstance(checkpoint.metadata, dict) else None
    if not isinstance(saved, dict):
        refuse("not a text model: this checkpoint was not written by train-text --save")
    expected = {"config", "vocabulary", "iteration", "seconds", "history", "rng_state", "known_lines",
                "validation_loss"}
    if set(saved) != expected:
        refuse(f"its train-text record has the keys {sorted(saved)!r:.160}, expected {sorted(expected)}")
    _check_config(saved["config"], refuse)
    try:
        vocabulary = Vocabulary(saved["vocabulary"] if isinstance(saved["vocabulary"], str) else "")
    except ValueError as error:
        refuse(f"its vocabulary is not usable ({error})")
    if saved["config"]["lines"] and MARKER not in vocabulary.chars:  # every line starts and ends with it
        refuse(f"it is a line model, and its vocabulary has no line marker ({MARKER!r})")
    if not (_integer(saved["iteration"]) and 0 <= saved["iteration"] <= 10_000_000):
        refuse(f"its iteration is {saved['iteration']!r:.40}, expected an int from 0")
    if not (_finite(saved["seconds"]) and saved["seconds"] >= 0):
        refuse(f"its training time is {saved['seconds']!r:.40}, expected a number of seconds >= 0")
    if saved["validation_loss"] is not None and not _finite(saved["validation_loss"]):
        refuse(f"its validation loss is {saved['validation_loss']!r:.40}, expected a finite number or null")
    _check_history(saved["history"], saved["iteration"], refuse)
    _check_known_lines(saved["known_lines"], saved["config"]["lines"], refuse)
    return {**saved, "vocabulary": vocabulary}


def _check_history(history, iteration: int, refuse) -> None:
    if not isinstance(history, list):
        refuse(f"its history is {history!r:.60}, expected a list of records")
    previous = 0
    for index, record in enumerate(history):
        if not isinstance(record, dict) or set(record) != set(HISTORY_KEYS):
            refuse(f"history record {index + 1} is not a train-text record: {record!r:.120}")
        if not (_integer(record["iter"]) and previous < record["iter"] <= iteration):
            refuse(f"history record {index + 1} has iter={record['iter']!r:.40}, expected an int after the last "
                   f"record's and at most {iteration}")
        previous = record["iter"]
        for key in HISTORY_KEYS[1:]:  # cross-entropies, a rate and a time: none is ever negative
            if not (_finite(record[key]) and record[key] >= 0):
                refuse(f"history record {index + 1} has {key}={record[key]!r:.40}, expected a finite number >= 0")


def _check_known_lines(record, lines: bool, refuse) -> None:
    if record is None:
        return
    if not lines:
        refuse("it keeps known lines, but it is not a line-mode model")
    if not (isinstance(record, dict) and set(record) == {"count", "hashes"} and _integer(record["count"])
            and 0 < record["count"] <= MAX_KNOWN_LINES and isinstance(record["hashes"], str)
            and len(record["hashes"]) == HASH_CHARS * record["count"]
            and re.fullmatch(r"[0-9a-f]*", record["hashes"])):
        refuse("its known lines are not what train-text writes")


def check_network(path, checkpoint, config: dict, vocab_size: int) -> None:
    """The checkpoint's network must be its preset's (built for its vocabulary and block size)."""
    import numpy as np

    preset = PRESETS[config["model"]]
    expected = preset.build(vocab_size, config["block_size"], rng=np.random.default_rng(0))
    if repr(checkpoint.model) != repr(expected):
        raise UsageError(f"{path}: the saved network is not this version's {config['model']} model for "
                         f"{vocab_size} characters and context {config['block_size']} (models change between "
                         "versions); nnscratch generate still takes the file")


def check_resumable(path, checkpoint, saved: dict) -> None:
    """What a resume needs beyond ``read_metadata``'s checks: the generator's state, the preset's
    optimizer with its state, and the preset's network, its weights all finite."""
    import numpy as np

    from .common import check_finite_weights

    config = saved["config"]
    try:
        np.random.default_rng(0).bit_generator.state = saved["rng_state"]
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"{path}: the state of its training windows' generator is invalid ({error})") from None
    preset = PRESETS[config["model"]]
    expected = type(preset.optimizer(preset.build(2, 1, rng=0), 1.0))
    if type(checkpoint.optimizer) is not expected:
        found = "no optimizer state" if checkpoint.optimizer is None else f"a {type(checkpoint.optimizer).__name__}"
        raise UsageError(f"{path}: it holds {found}, the {config['model']} model trains with {expected.__name__}")
    check_network(path, checkpoint, config, len(saved["vocabulary"]))
    check_finite_weights(path, checkpoint.model)
