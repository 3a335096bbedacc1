"""Prometheus's `histogram_quantile` over cumulative bucket counts. Pure.

Same semantics as Prometheus 2.x `bucketQuantile`: buckets sorted by upper bound, equal
bounds merged, counts forced monotonic; the quantile's rank `q * total` is located in the
first bucket whose cumulative count reaches it and interpolated linearly inside that bucket.
The lowest bucket's lower bound is 0 (if its upper bound is > 0; otherwise its upper bound is
returned); a rank in the `+Inf` bucket returns the upper bound of the highest finite bucket.
No observations, a missing `+Inf` bucket or fewer than two buckets give NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The `q`-quantile of cumulative `(upper_bound, count)` buckets (any order); NaN if none."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if len(ordered) < 2 or ordered[-1][0] != math.inf:
        return math.nan
    bounds = [bound for bound, _ in ordered]
    counts = _monotonic([count for _, count in ordered])
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank or i == len(counts) - 1)
    if index == len(counts) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, in_bucket = 0.0, bounds[index], counts[index]
    if index > 0:
        start = bounds[index - 1]
        in_bucket -= counts[index - 1]
        rank -= counts[index - 1]
    return start + (end - start) * (rank / in_bucket)


def _monotonic(counts: list[float]) -> list[float]:
    """Cumulative counts with any dip raised to the running maximum (Prometheus's fix-up)."""
    out: list[float] = []
    highest = -math.inf
    for count in counts:
        highest = max(highest, count)
        out.append(highest)
    return out


def cumulative_from_observations(
    bounds: Iterable[float], observations: Iterable[float]
) -> list[tuple[float, float]]:
    """Cumulative `(le, count)` buckets (plus `+Inf`) that `observations` fill. Pure.

    An observation equal to a bound falls in that bound's bucket (Prometheus `le` semantics).
    """
    finite = sorted(set(bounds))
    values = list(observations)
    out = [(bound, float(sum(1 for v in values if v <= bound))) for bound in finite]
    out.append((math.inf, float(len(values))))
    return out
