"""nnscratch.generation: the draws follow softmax(logits / T) over the top k, a recurrent model's
carried state gives the logits of the whole sequence, the transformer reads its last window, and the
line sampler drops what it must."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.data.text import Vocabulary
from nnscratch.generation import Sampler, recurrent_layers, sample_lines, sample_text
from nnscratch.text_presets import recurrent


class FixedLogits:
    """A model whose logits are the same at every position, whatever it reads."""

    def __init__(self, logits):
        self.logits = np.asarray(logits, np.float32)
        self.layers = []
        self.calls = []

    def forward(self, ids):
        self.calls.append(np.array(ids))
        return np.broadcast_to(self.logits, (*ids.shape, len(self.logits))).copy()


def frequencies(sampler, logits, draws=20_000):
    counts = np.bincount([sampler.draw(np.asarray(logits, np.float64)) for _ in range(draws)], minlength=len(logits))
    return counts / draws


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_draws_follow_the_softmax_of_the_logits_over_the_temperature(temperature):
    logits = np.array([1.0, 0.0, -1.0, 2.0, 0.5])
    sampler = Sampler(FixedLogits(logits), 8, np.random.default_rng(0), temperature=temperature)
    expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
    # 20,000 draws: each frequency within 4 standard deviations of its probability
    assert np.all(np.abs(frequencies(sampler, logits) - expected) < 4 * np.sqrt(expected * (1 - expected) / 20_000))


def test_top_k_keeps_the_k_largest_renormalised():
    logits = np.array([1.0, 3.0, -2.0, 2.0, 0.0])
    sampler = Sampler(FixedLogits(logits), 8, np.random.default_rng(1), top_k=2)
    found = frequencies(sampler, logits)
    expected = np.zeros(5)
    expected[[1, 3]] = np.exp([3.0, 2.0]) / np.exp([3.0, 2.0]).sum()
    assert found[[0, 2, 4]].sum() == 0
    assert np.allclose(found, expected, atol=0.02)
    assert {Sampler(FixedLogits(logits), 8, np.random.default_rng(s), top_k=1).draw(logits) for s in range(20)} == {1}


def test_huge_logits_and_a_tiny_temperature_stay_finite():
    logits = np.array([1e30, -1e30, 0.0])
    sampler = Sampler(FixedLogits(logits), 8, np.random.default_rng(0), temperature=1e-6)
    assert {sampler.draw(logits) for _ in range(50)} == {0}


@pytest.mark.filterwarnings("error")  # generate printed numpy's "overflow encountered in divide" twice
@pytest.mark.parametrize("temperature", [5e-324, 1e-310])
def test_the_smallest_temperatures_draw_the_most_likely_without_a_warning(temperature):
    logits = np.array([0.5, 2.0, -3.0, 1.9])
    sampler = Sampler(FixedLogits(logits), 8, np.random.default_rng(0), temperature=temperature)
    assert {sampler.draw(logits) for _ in range(50)} == {1}


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_recurrent_model_carries_its_state_to_the_logits_of_the_whole_sequence(kind):
    model = recurrent(kind, 7, 16, 2, rng=np.random.default_rng(0))[:-2]
    ids = np.random.default_rng(1).integers(0, 7, 30)
    expected = model.forward(ids[None])[0]  # the whole sequence at once, from a zero state
    sampler = Sampler(model, 4, np.random.default_rng(0))  # a context of 4 must not matter to it
    assert len(recurrent_layers(model)) == 2
    got = [sampler.feed(ids[:10])]  # a prompt, read once
    got += [sampler.feed([i]) for i in ids[10:]]  # then one character at a time
    np.testing.assert_allclose(np.array(got), expected[9:], rtol=1e-5, atol=1e-5)
    sampler.reset()
    np.testing.assert_allclose(sampler.feed(ids[:3]), expected[2], rtol=1e-5, atol=1e-5)


def test_a_model_without_state_reads_its_last_window():
    model = FixedLogits([0.0, 1.0, 2.0])
    sampler = Sampler(model, 4, np.random.default_rng(0))
    sampler.feed([0, 1, 2])
    sampler.feed([1, 1, 0])
    sampler.feed([2])
    assert [c.tolist() for c in model.calls] == [[[0, 1, 2]], [[2, 1, 1, 0]], [[1, 1, 0, 2]]]


def test_a_window_model_reads_positions_from_zero_each_time():
    """A positional model (Embedding + PositionalEmbedding + Linear) gives, for the window it is fed,
    exactly what a forward of that window gives: the sampler never shifts the positions."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Embedding(5, 8, rng=rng), nn.PositionalEmbedding(4, 8, rng=rng), nn.Linear(8, 5, rng=rng))
    sampler = Sampler(model, 4, np.random.default_rng(0))
    sampler.feed([1, 2, 3])
    got = sampler.feed([4, 0])
    np.testing.assert_array_equal(got, model.forward(np.array([[2, 3, 4, 0]]))[0, -1])


def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    vocabulary = Vocabulary("\nabcdefgh")
    model = recurrent("gru", len(vocabulary), 16, 1, rng=np.random.default_rng(0))[:-2]

    def text(seed):
        return sample_text(Sampler(model, 8, np.random.default_rng(seed)), vocabulary, "ab", 60)

    assert text(3) == text(3)
    assert text(3) != text(4)
    assert len(text(3)) == 60 and set(text(3)) <= set(vocabulary.chars)


def test_sample_text_streams_each_character_and_starts_from_a_newline():
    vocabulary = Vocabulary("\nab")
    model = FixedLogits([0.0, 0.0, 0.0])
    seen = []
    out = sample_text(Sampler(model, 8, np.random.default_rng(0)), vocabulary, "", 5, on_char=seen.append)
    assert "".join(seen) == out and len(out) == 5
    assert model.calls[0].tolist() == [[0]]  # the newline's id: what the model read first


def test_a_prompt_character_outside_the_vocabulary_is_named():
    sampler = Sampler(FixedLogits([0.0, 0.0]), 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"the prompt has the character 'z' \(at position 2\), which is not in"):
        sample_text(sampler, Vocabulary("ab"), "abz", 3)


class Scripted:
    """A model that writes the given lines, one character per step, then the newline (id 0)."""

    def __init__(self, vocabulary, lines):
        self.vocabulary, self.lines, self.layers = vocabulary, list(lines), []
        self.position = 0

    def forward(self, ids):
        if ids.shape[1] == 1 and ids[0, 0] == 0:  # a fresh line starts
            self.current, self.position = self.lines.pop(0) + "\n", 0
        target = self.vocabulary.encode(self.current[self.position])[0]
        self.position += 1
        logits = np.full((*ids.shape, len(self.vocabulary)), -1e4, np.float32)
        logits[..., target] = 0.0
        return logits


def test_sample_lines_drops_known_repeated_empty_and_cut_lines():
    vocabulary = Vocabulary("\nabcdefgh")
    script = ["abc", "dead", "", "abc", "bead", "abcdefgh", "face"]
    sampler = Sampler(Scripted(vocabulary, script), 20, np.random.default_rng(0))
    shown = []
    result = sample_lines(sampler, vocabulary, 3, 6, is_known=lambda line: line == "dead", on_line=shown.append)
    assert result == {"lines": ["abc", "bead", "face"], "known": 1, "repeated": 1, "empty": 1, "cut": 1, "draws": 7}
    assert shown == ["abc", "bead", "face"]


def test_sample_lines_stops_after_its_draws_and_at_max_chars():
    vocabulary = Vocabulary("\nab")
    sampler = Sampler(Scripted(vocabulary, ["a"] * 10), 20, np.random.default_rng(0))
    result = sample_lines(sampler, vocabulary, 5, 4, is_known=lambda line: True, max_draws=10)
    assert result["lines"] == [] and result["known"] == 10 and result["draws"] == 10
    sampler = Sampler(Scripted(vocabulary, ["ab", "ba", "aa", "bb"]), 20, np.random.default_rng(0))
    assert sample_lines(sampler, vocabulary, 10, 4, max_chars=5)["lines"] == ["ab", "ba"]


def test_sample_lines_begins_each_line_with_the_prompt():
    vocabulary = Vocabulary("\nab")
    model = recurrent("rnn", 3, 8, 1, rng=np.random.default_rng(0))[:-2]
    result = sample_lines(Sampler(model, 8, np.random.default_rng(0)), vocabulary, 5, 12, prefix="ba")
    assert result["lines"] and all(line.startswith("ba") for line in result["lines"])


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0.0}, r"temperature"), ({"temperature": float("nan")}, r"temperature"),
    ({"temperature": 101.0}, r"temperature"), ({"top_k": 0}, r"top_k"), ({"context": 0}, r"context"),
])
def test_bad_sampler_settings_are_refused(kwargs, message):
    settings = {"context": 4, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        Sampler(FixedLogits([0.0, 1.0]), settings.pop("context"), np.random.default_rng(0), **settings)


def test_sample_lines_stops_once_its_draws_hold_max_drawn_characters():
    # a model that only writes lines it knows: the characters drawn, not the lines kept, bound the work
    vocabulary = Vocabulary("\nab")
    sampler = Sampler(Scripted(vocabulary, ["abababab"] * 100), 20, np.random.default_rng(0))
    result = sample_lines(sampler, vocabulary, 5, 12, is_known=lambda line: True, max_drawn=25)
    assert result["lines"] == [] and result["draws"] == 3 and result["known"] == 3  # 9, 18, then 27 >= 25


def test_a_stateful_model_samples_from_zeros_and_keeps_the_state_it_carries():
    # sampling a model trained with truncated backpropagation (stateful=True) failed on the state carried
    # from its last training batch, and after reset_state() left it carrying the sampler's batch of 1
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Embedding(5, 4, rng=1), nn.LSTM(4, 6, stateful=True, rng=2), nn.Linear(6, 5, rng=3))
    plain = nn.Sequential(nn.Embedding(5, 4, rng=1), nn.LSTM(4, 6, rng=2), nn.Linear(6, 5, rng=3))
    model.forward(rng.integers(0, 5, (3, 7)))  # a training batch: the LSTM now carries a state of batch 3
    carried = [part.copy() for part in model[1]._carried]
    drawn = list(Sampler(model, 8, np.random.default_rng(4)).text([1, 2], 6))
    assert drawn == list(Sampler(plain, 8, np.random.default_rng(4)).text([1, 2], 6))
    assert model[1].stateful and all(np.array_equal(a, b) for a, b in zip(model[1]._carried, carried, strict=True))


def test_a_context_longer_than_the_model_has_positions_for_is_refused_at_once():
    # it failed only once the text outgrew the positions (max_len), after part of it was written
    model = nn.Sequential(nn.Embedding(3, 4, rng=0), nn.PositionalEmbedding(6, 4, rng=1), nn.Linear(4, 3, rng=2))
    with pytest.raises(ValueError, match=r"^Sampler: the model cannot read a context of 7 ids \(.*PositionalEmbedding: "
                                         r"the input has T = 7 positions, longer than max_len = 6"):
        Sampler(model, 7, np.random.default_rng(0))
    assert len(list(Sampler(model, 6, np.random.default_rng(0)).text([1], 20))) == 20


def test_sample_lines_gives_up_after_max_misses_draws_in_a_row_with_nothing_new():
    # a model that can only write lines it knows drew 50 x count + 100 lines: 20 minutes for --count 100000
    vocabulary = Vocabulary("\nab")
    script = ["ab", "ba"] + ["ab"] * 39 + ["bb"] + ["ab"] * 100  # 39 misses, a new line, then 40 misses
    sampler = Sampler(Scripted(vocabulary, script), 20, np.random.default_rng(0))
    result = sample_lines(sampler, vocabulary, 1000, 4, max_misses=40)
    assert result["lines"] == ["ab", "ba", "bb"] and result["draws"] == 42 + 40 and result["repeated"] == 79
