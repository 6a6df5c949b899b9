"""How the benchmarks print a series: ``name_median`` and ``name_p99`` lines, in ms."""

from __future__ import annotations

import math
import statistics

__all__ = ["print_ms"]


def print_ms(name: str, samples: list[float], *, digits: int = 3) -> float:
    """Print the median and p99 (nearest rank) of ``samples`` (seconds) in ms; return the median."""
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p99 = ordered[max(0, math.ceil(len(ordered) * 0.99) - 1)]
    print(f"{name}_median: {median * 1e3:.{digits}f} ms")
    print(f"{name}_p99: {p99 * 1e3:.{digits}f} ms")
    return median
