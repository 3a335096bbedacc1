"""The seed's no-window mode, corrected: how answers become values. Pure.

A metric's `{range}` query is asked as an instant query; if that gives no value (empty,
NaN) or fails, a range query over the fallback span is asked and its MOST RECENT sample is
used (the seed averaged all samples — a mean of sliding p95s). A genuine 0 is a value.
Several series are combined by the metric's kind: counters sum, gauges `spec.combine`,
quantiles take the max (a query grouped by other labels than `le`).
"""

from __future__ import annotations

import math

from dynamo_tune.metrics._prom_parse import Matrix
from dynamo_tune.metrics._queries import MetricSpec
from dynamo_tune.metrics._series import SeriesVector
from dynamo_tune.metrics._window import combine

DEFAULT_LOOKBACK_S = 600.0


def how_to_combine(spec: MetricSpec) -> str:
    """sum / avg / max: how several series of `spec`'s answer become one value."""
    if spec.kind == "quantile":
        return "max"
    if spec.kind == "counter_rate":
        return "sum"
    return spec.combine


def instant_value(spec: MetricSpec, vector: SeriesVector) -> float | None:
    """The value of an instant answer (None when empty or all NaN)."""
    return combine(vector.values(), how_to_combine(spec))


def latest_value(spec: MetricSpec, matrix: Matrix) -> float | None:
    """The most recent non-NaN sample of a range answer (series combined at that time)."""
    by_time: dict[float, list[float]] = {}
    for _, samples in matrix:
        for timestamp, value in samples:
            if not math.isnan(value):
                by_time.setdefault(timestamp, []).append(value)
    if not by_time:
        return None
    return combine(by_time[max(by_time)], how_to_combine(spec))


def fallback_span(
    now: float, lookback_s: float, workflow_start: float | None
) -> tuple[float, float]:
    """(start, end) of the range fallback: since the workflow start, else the lookback
    (600 s when 0), ending now."""
    if workflow_start is not None:
        return workflow_start, max(now, workflow_start + 1.0)
    return now - (lookback_s if lookback_s > 0 else DEFAULT_LOOKBACK_S), now
