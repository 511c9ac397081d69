"""What the benchmark scripts' tests check in every row: speed figures that are positive and finite,
and memory that does not grow from step to step (tests/scripts/test_benchmark.py and
test_benchmark_gpt.py)."""

import gc
import math
import tracemalloc


def check_speed(row):
    """A row of timings from a run with --repeats 2: a finite median, its best and both runs."""
    assert row["median"] > 0 and math.isfinite(row["median"])
    assert row["best"] == max(row["runs"]) >= row["median"]
    assert len(row["runs"]) == 2 and all(r > 0 and math.isfinite(r) for r in row["runs"])


def traced_growth(step, warmup=3, steps=30) -> int:
    """Bytes still allocated (numpy arrays included) after ``steps`` more steps than a warmed-up start."""
    tracemalloc.start()
    try:
        for _ in range(warmup):
            step()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            step()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
