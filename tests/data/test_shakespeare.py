"""nnscratch.data.shakespeare: tiny shakespeare downloaded once from a mirror (served over loopback),
verified, cached, and read again without the network; mirrors named as folders or as the file."""

from __future__ import annotations

import hashlib
import os

import pytest

from nnscratch.data import shakespeare
from nnscratch.data.shakespeare import (
    CANONICAL_URL, NAME, SHA256, SIZE, TextCacheError, TextDownloadError, cache_path, download_tiny_shakespeare,
    file_url, load_tiny_shakespeare, resolve_text_dir, resolve_text_mirrors,
)


def test_the_pinned_facts_are_the_shared_files(text_mirror):
    data = (text_mirror.directory / NAME).read_bytes()
    assert len(data) == SIZE and hashlib.sha256(data).hexdigest() == SHA256


@pytest.mark.parametrize("mirror, url", [
    ("http://127.0.0.1:8000/", f"http://127.0.0.1:8000/{NAME}"),
    ("http://127.0.0.1:8000", f"http://127.0.0.1:8000/{NAME}"),
    ("http://h/data/text/", f"http://h/data/text/{NAME}"),
    ("http://h/data/text/input.txt", "http://h/data/text/input.txt"),
    (CANONICAL_URL, CANONICAL_URL),
])
def test_a_folder_url_gets_the_file_name_and_a_file_url_is_kept(mirror, url):
    assert file_url(mirror) == url


def test_mirrors_from_the_argument_the_environment_or_the_canonical_address(monkeypatch):
    monkeypatch.delenv(shakespeare.MIRROR_ENV, raising=False)
    assert resolve_text_mirrors() == [CANONICAL_URL]
    monkeypatch.setenv(shakespeare.MIRROR_ENV, "http://a/, http://b/t.txt")
    assert resolve_text_mirrors() == [f"http://a/{NAME}", "http://b/t.txt"]
    assert resolve_text_mirrors("http://c/") == [f"http://c/{NAME}"]
    with pytest.raises(ValueError, match=r"expected an http:// or https:// base URL, got 'ftp://x/'"):
        resolve_text_mirrors(["ftp://x/"])


def test_the_text_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(shakespeare.DATA_DIR_ENV, raising=False)
    assert resolve_text_dir() == (shakespeare.DEFAULT_DATA_DIR).absolute()
    monkeypatch.setenv(shakespeare.DATA_DIR_ENV, str(tmp_path))
    assert cache_path() == tmp_path / NAME
    with pytest.raises(TypeError, match="data_dir: expected a path"):
        resolve_text_dir(3)


def test_downloads_once_then_reads_the_cache(text_mirror, tmp_path):
    text = load_tiny_shakespeare(tmp_path / "cache", text_mirror, progress=False)
    assert len(text) == SIZE and len(set(text)) == 65 and text.startswith("First Citizen:\n")
    assert text_mirror.requests == [f"/{NAME}"]
    assert load_tiny_shakespeare(tmp_path / "cache", text_mirror, progress=False) == text
    assert text_mirror.requests == [f"/{NAME}"]  # no second request
    assert sorted(os.listdir(tmp_path / "cache")) == [NAME]  # no temporary left


def test_a_file_url_mirror_and_an_altered_cache(text_mirror, tmp_path):
    path = tmp_path / NAME
    path.write_text("First Citizen:\nnot quite\n")
    url = f"{text_mirror}{NAME}"
    assert download_tiny_shakespeare(tmp_path, url, progress=False) == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def test_a_mirror_with_the_wrong_content_then_a_good_one(text_mirror, http_server, tmp_path, dead_url):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / NAME).write_text("To be or not to be\n")
    bad_url = http_server(bad)
    path = download_tiny_shakespeare(tmp_path / "cache", [dead_url, bad_url, text_mirror], progress=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def test_no_mirror_delivers_is_one_message_naming_each_try(http_server, tmp_path, dead_url):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / NAME).write_text("To be or not to be\n")
    with pytest.raises(TextDownloadError) as caught:
        download_tiny_shakespeare(tmp_path / "cache", [dead_url, http_server(bad)], progress=False)
    message = str(caught.value)
    assert message.startswith(f"Could not download tiny shakespeare into {tmp_path / 'cache' / NAME}")
    assert f"  {dead_url}{NAME}: cannot connect" in message
    assert "SHA-256" in message and CANONICAL_URL in message
    assert not (tmp_path / "cache" / NAME).exists() and os.listdir(tmp_path / "cache") == []


def test_something_that_is_not_a_file_in_the_cache_is_refused(tmp_path):
    (tmp_path / NAME).mkdir()
    with pytest.raises(TextCacheError, match=r"is not a regular file .*; move it away"):
        download_tiny_shakespeare(tmp_path, "http://127.0.0.1:9/", progress=False)
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / NAME)
    with pytest.raises(TextCacheError, match="is not a regular file"):
        load_tiny_shakespeare(fifo, "http://127.0.0.1:9/", progress=False)
