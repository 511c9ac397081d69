"""The machine the benchmark runs on: numpy's BLAS and its threads, the BLAS speed right now, the CPU
model, resident memory, CPU-time snapshots that tell how much other processes used, and the load
average.

Part of scripts/benchmark.py; every probe answers "unknown" (None) rather than fail off Linux.
"""

from __future__ import annotations

import ctypes
import os
import platform
import statistics
import sys
import time

import numpy as np


def blas_info() -> dict:
    """numpy's BLAS library and how many threads it uses (asked from the loaded library itself)."""
    info = {"library": "unknown", "threads": None, "threads_source": "unknown"}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["library"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode; the thread count below still works
        pass
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.lower() or "mkl" in line.lower()}
    except OSError:
        paths = set()
    getters = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
               "openblas_get_num_threads64_", "openblas_get_num_threads", "MKL_Get_Max_Threads")
    # numpy's own copy first: torch, when imported, may bring a BLAS of its own.
    for path in sorted((p for p in paths if p.startswith("/")), key=lambda p: ("numpy" not in p, p)):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in getters:
            if hasattr(library, name):
                info["threads"] = int(getattr(library, name)())
                info["threads_source"] = f"{name}() in {os.path.basename(path)}"
                return info
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(variable, "").isdigit():
            info["threads"], info["threads_source"] = int(os.environ[variable]), f"${variable}"
            return info
    return info


# The BLAS probe's product: the MLP's first layer, (128, 784) @ (784, 256).
PROBE_SHAPE = (128, 784, 256)


def blas_gflops(calls: int = 20, clock=time.perf_counter) -> float:
    """numpy's BLAS speed right now: GFLOP/s of the median of ``calls`` float32 products of
    ``PROBE_SHAPE`` (2 m k n floating-point operations each), with all of BLAS's threads.

    Timed between the benchmark's runs, it shows what the host gave the runs: a virtual machine's
    CPUs are not always whole. On this project's 2-vCPU VM the probe gives ~180 GFLOP/s most of the
    time, and for stretches of seconds ~75-125, about what one thread alone does, while each vCPU
    on its own still runs a one-thread product at full speed (consistent with the host putting both
    vCPUs on one physical core). Both frameworks' matrix products slow down then, and the ratios move.
    """
    m, k, n = PROBE_SHAPE
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # wakes BLAS's threads
    times = []
    for _ in range(calls):
        start = clock()
        np.matmul(a, b, out=out)
        times.append(clock() - start)
    return 2 * m * k * n / statistics.median(times) / 1e9


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc/self/statm; elsewhere the peak, from resource)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def cpu_snapshot() -> tuple:
    """(CPU seconds used by the whole machine, by this process and its live worker processes (the
    GPT-2P row's), wall clock) now.

    Two snapshots tell how much of the CPUs *other* processes used in between: the noise that a
    load average, a minute-long mean, only hints at. The machine's figure is None off Linux.
    """
    own = os.times()
    workers = _workers_cpu_seconds()
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    except (OSError, ValueError, IndexError):
        busy = None
    return busy, own.user + own.system + workers, time.perf_counter()


def _workers_cpu_seconds() -> float:
    """CPU seconds used so far by this process's live multiprocessing children (Linux; else 0)."""
    import multiprocessing

    total = 0.0
    for child in multiprocessing.active_children():
        try:
            with open(f"/proc/{child.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total


def others_cpu_share(before: tuple, after: tuple) -> float | None:
    """Fraction of all CPUs' time that other processes used between two ``cpu_snapshot``s."""
    if before[0] is None or after[0] is None or after[2] <= before[2]:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return min(max(others / ((after[2] - before[2]) * (os.cpu_count() or 1)), 0.0), 1.0)


def loadavg() -> list | None:
    """The 1, 5 and 15 minute load averages, or None where the system has none."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# -- a busy core ---------------------------------------------------------------------------------
# The busy loop's own program: pin itself to one CPU, say so, then spin until its deadline. It stops
# by itself even if whoever started it dies without killing it.
BUSY_LOOP = """
import os, sys, time
cpu, seconds = int(sys.argv[1]), float(sys.argv[2])
pinned = hasattr(os, "sched_setaffinity")
if pinned:
    os.sched_setaffinity(0, {cpu})
print("pinned" if pinned else "unpinned", flush=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    pass
"""


class BusyCore:
    """A busy-loop process on one CPU for the duration of a ``with`` block: the load of issue 15.

    The process pins itself to ``cpu`` (default: the last CPU this process may use) with
    ``os.sched_setaffinity`` where the platform has it, and spins. ``__enter__`` returns once it
    spins; ``__exit__`` kills it and waits for it. Should that never happen (this process killed
    first), it stops by itself after ``max_seconds``.
    """

    def __init__(self, cpu: int | None = None, max_seconds: float = 120.0):
        if cpu is None:
            cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
            cpu = cpus[-1]
        if not 0 < max_seconds <= 3600:
            raise ValueError(f"BusyCore: max_seconds must be in (0, 3600], got {max_seconds}")
        self.cpu, self.max_seconds, self.process, self.pinned = cpu, max_seconds, None, None

    def __enter__(self) -> BusyCore:
        import subprocess

        self.process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(self.cpu), str(self.max_seconds)],
                                        stdout=subprocess.PIPE, text=True)
        self.pinned = self.process.stdout.readline().strip() == "pinned"
        return self

    def __exit__(self, *exc_info) -> bool:
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()
            process.stdout.close()
        return False

    def describe(self) -> str:
        where = f"pinned to CPU {self.cpu}" if self.pinned else "not pinned (no os.sched_setaffinity here)"
        return f"one busy-loop process {where}, for the duration of each busy run"
