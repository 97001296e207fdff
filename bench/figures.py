"""What the benchmarks share to turn their measurements into figures (imported from the bench folder, which
is on ``sys.path`` when a bench runs as ``python bench/NAME.py``)."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between the sorted values; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
