"""nnscratch.data.text: reading a user's text, its vocabulary, and the batches of both corpus kinds."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data.text import (
    IGNORE_INDEX,
    CharCorpus,
    LineCorpus,
    TextFileError,
    Vocabulary,
    read_text,
)

SHARED_TEXT = Path(__file__).resolve().parents[3] / "shared" / "data" / "text"
needs_shared = pytest.mark.skipif(not (SHARED_TEXT / "tinyshakespeare.txt").is_file(),
                                  reason=f"the text corpora are not in {SHARED_TEXT}")


# -- read_text -------------------------------------------------------------------------------------
def test_reads_utf8_and_drops_a_byte_order_mark(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffhé llo\n".encode("utf-8"))
    assert read_text(path) == "hé llo\n"


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"aaaa", "the text holds only the character 'a'; a language model needs at least two distinct characters"),
    ("\ufeff".encode("utf-8"), "the text holds nothing but a byte-order mark"),
    (b"abc\xffdef", r"not UTF-8 text: byte 0xff at offset 3 \(invalid start byte\); save the file as UTF-8"),
    ("ab".encode("utf-8") + "é".encode("utf-8")[:1], r"not UTF-8 text: byte 0xc3 at offset 2 \(unexpected end of data\)"),
])
def test_bad_text_files_get_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(TextFileError, match=rf"^{path}: {message}"):
        read_text(path)


def test_missing_directory_and_oversized(tmp_path):
    with pytest.raises(TextFileError, match=r"no such file$"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(TextFileError, match=r"is a directory, expected a text file$"):
        read_text(tmp_path)
    path = tmp_path / "big.txt"
    path.write_bytes(b"ab" * 600)
    with pytest.raises(TextFileError, match=r"more than 1,000 bytes, the most a text may have here$"):
        read_text(path, max_bytes=1000)
    assert read_text(path, max_bytes=1200) == "ab" * 600


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome = {}

    def read():
        try:
            read_text(fifo)
        except TextFileError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "read_text waited on a FIFO"
    assert outcome["error"] == f"{fifo}: not a regular file (a FIFO, device or socket cannot be read as a text)"


# -- Vocabulary ------------------------------------------------------------------------------------
def test_vocabulary_is_the_sorted_distinct_characters_and_round_trips():
    text = "hello, world\n🙂é"
    vocab = Vocabulary.from_text(text)
    assert vocab.chars == "".join(sorted(set(text))) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert [vocab.chars[i] for i in ids] == list(text)
    assert vocab.decode(ids) == text


def test_a_character_outside_the_vocabulary_is_named_with_its_position():
    vocab = Vocabulary("abc")
    with pytest.raises(ValueError, match=r"the prompt has the character 'z' \(at position 2\), which is not in the "
                                         r"model's vocabulary of 3 characters: 'abc'"):
        vocab.encode("abzab", what="the prompt")
    with pytest.raises(ValueError, match=r"decode: ids must be in \[0, 3\), got 0..3"):
        vocab.decode([0, 3])


def test_a_byte_that_was_not_utf8_in_a_prompt_is_named_as_outside_the_vocabulary():
    # a command-line argument with a byte that is not UTF-8 reaches Python as a lone surrogate; it was
    # a UnicodeEncodeError of the 'utf-32-le' codec, naming neither the prompt nor the vocabulary
    prompt = b"ab\xffa".decode("utf-8", "surrogateescape")
    with pytest.raises(ValueError, match=r"^the prompt has the character '\\udcff' \(at position 2\), which is not in "
                                         r"the model's vocabulary of 3 characters: 'abc' \(a byte that is not UTF-8\)$"):
        Vocabulary("abc").encode(prompt, what="the prompt")


@pytest.mark.parametrize("chars", ["a", "ba", "aab", ["ab", "c"], [1, 2]])
def test_a_vocabulary_must_be_distinct_sorted_single_characters(chars):
    with pytest.raises(ValueError, match="Vocabulary: "):
        Vocabulary(chars)


# -- CharCorpus ------------------------------------------------------------------------------------
def test_char_corpus_splits_90_10_and_batches_are_next_character_windows():
    text = "".join(chr(97 + i % 7) for i in range(1000))
    corpus = CharCorpus(text)
    assert len(corpus.train) == 900 and len(corpus.validation) == 100
    np.testing.assert_array_equal(np.concatenate([corpus.train, corpus.validation]), corpus.vocabulary.encode(text))
    x, y = corpus.batch(np.random.default_rng(0), 5, 8)
    assert x.shape == y.shape == (5, 8) and x.dtype == np.int64
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    # every window is a stretch of the training split, and a seed gives the same windows
    data = corpus.train
    for row_x, row_y in zip(x, y):
        starts = [s for s in range(len(data) - 8) if (data[s : s + 8] == row_x).all() and (data[s + 1 : s + 9] == row_y).all()]
        assert starts
    x2, y2 = corpus.batch(np.random.default_rng(0), 5, 8)
    np.testing.assert_array_equal(x, x2)


def test_the_whole_validation_split_predicts_each_character_once():
    corpus = CharCorpus("abcdefghij" * 10 + "xyz")  # validation: the last 11 characters
    targets = []
    for x, y in corpus.validation_batches(block_size=4, batch_size=2):
        kept = y != IGNORE_INDEX
        np.testing.assert_array_equal(x[:, 1:][kept[:, 1:]], y[:, :-1][kept[:, 1:]])
        targets.extend(y[kept].tolist())
    np.testing.assert_array_equal(targets, corpus.validation[1:])


def test_a_block_size_longer_than_a_split_is_refused():
    corpus = CharCorpus("ab" * 50)
    assert corpus.check_block_size(9) == 9
    with pytest.raises(ValueError, match=r"the text is too short for windows of 10 characters: its smaller split has 10"):
        corpus.check_block_size(10)


@needs_shared
def test_tiny_shakespeare_facts_from_its_readme():
    corpus = CharCorpus(read_text(SHARED_TEXT / "tinyshakespeare.txt"))
    assert len(corpus.vocabulary) == 65
    assert corpus.vocabulary.chars == "\n !$&',-.3:;?" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz"
    assert (len(corpus.train), len(corpus.validation)) == (1_003_854, 111_540)


# -- LineCorpus ------------------------------------------------------------------------------------
def test_line_examples_are_framed_by_newlines_and_padded_with_ignored_targets():
    corpus = LineCorpus("ann\nbo\r\n\neve\nzed\nkim\n")
    vocab = corpus.vocabulary
    assert vocab.chars == "\nabdeikmnovz"
    assert sorted(corpus.train_lines + corpus.validation_lines) == ["ann", "bo", "eve", "kim", "zed"]
    x, y = corpus._examples([vocab.encode("bo")], 5)
    assert vocab.decode(x[0]) == "\nbo\n\n"  # the start marker, the line, then padding
    assert y[0].tolist() == [*vocab.encode("bo\n").tolist(), IGNORE_INDEX, IGNORE_INDEX]
    with pytest.raises(ValueError, match=r"the longest line has 3 characters: line mode needs a --block-size of at least 4"):
        corpus.check_block_size(3)
    x, y = corpus.batch(np.random.default_rng(1), 6, 4)
    assert x.shape == (6, 4) and set(vocab.decode(x[:, 1:][y[:, :-1] != IGNORE_INDEX])) <= set("abdeikmnovz\n")


def test_the_line_split_is_fixed_whatever_the_run():
    text = "\n".join(f"w{i}" for i in range(100))
    a, b = LineCorpus(text), LineCorpus(text)
    assert a.validation_lines == b.validation_lines and len(a.validation_lines) == 10
    assert not set(a.validation_lines) & set(a.train_lines)


def test_every_validation_line_is_walked_once():
    corpus = LineCorpus("\n".join(f"n{i:02d}" for i in range(40)))
    seen = []
    for x, y in corpus.validation_batches(block_size=5, batch_size=3):
        for row in y:
            seen.append(corpus.vocabulary.decode(row[row != IGNORE_INDEX]))
    assert sorted(seen) == sorted(line + "\n" for line in corpus.validation_lines)


@needs_shared
def test_names_facts_from_its_readme():
    corpus = LineCorpus(read_text(SHARED_TEXT / "names.txt"))
    # 32,032 newlines (its README counts lines as wc -l does) and a last line without one: 32,033 names
    assert len(corpus.train_lines) + len(corpus.validation_lines) == 32_033
    assert len(corpus.vocabulary) == 27 and corpus.longest == 15
