"""What the benchmarks share: percentiles, timing, and the test suite's System (a real instance)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import FINAL, System  # noqa: E402,F401  (re-exported for the benchmarks)


def pct(values, p):
    """The p-th percentile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def timed(call, rounds):
    """Milliseconds each of `rounds` calls of `call` took."""
    out = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        out.append((time.perf_counter() - began) * 1000)
    return out
