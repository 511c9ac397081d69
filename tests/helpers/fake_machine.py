"""A fake machine for the thread-choice tests (tests/test_threads.py, tests/test_thread_probe.py):
a fake clock whose steps take what a table says for the thread count BLAS really has at that moment
(asked from threadpoolctl, not from the chooser), and the fixture that starts every test from a
known count. A test module uses the fixture by importing it: ``from helpers.fake_machine import
known_start  # noqa: F401 (autouse)``."""

import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from nnscratch.threads import THREAD_VARIABLES

FOUND = 3  # the count every test starts from: unlike any machine's default, so a restore shows


BLAS = ThreadpoolController().select(user_api="blas")  # found once: finding the libraries takes ~10 ms


def blas_threads() -> int:
    """The thread count numpy's BLAS has now, as the library itself reports it."""
    return max(lib.num_threads for lib in BLAS.lib_controllers)


@pytest.fixture(autouse=True)
def known_start(monkeypatch):
    """No thread variable in the environment, and BLAS at FOUND threads (put back after the test)."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if not BLAS.lib_controllers:
        pytest.skip("threadpoolctl finds no BLAS library in this numpy: nothing to choose")
    with threadpool_limits(limits=FOUND, user_api="blas"):
        assert blas_threads() == FOUND
        yield


class FakeMachine:
    """A fake clock, and steps that take ``seconds[count]`` for BLAS's real thread count."""

    def __init__(self, seconds):
        self.now, self.seconds, self.counts = 0.0, dict(seconds), []

    def clock(self) -> float:
        return self.now

    def run_step(self, extra: float = 0.0) -> None:
        count = blas_threads()
        self.counts.append(count)
        self.now += self.seconds[count] + extra

    def train(self, chooser, steps: int) -> None:
        for _ in range(steps):
            self.run_step()
            chooser.step()
