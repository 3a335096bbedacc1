"""From `/metrics` snapshots to the shared `WindowData`. Pure.

The scrape backend holds a snapshot at the start, one at the end and (optionally) periodic
samples in between, each covering the same endpoints. Counter and bucket differences come
from the start and end snapshots (`_series.counter_deltas`), counter resets from any drop
between consecutive samples (as PromQL's `resets()`), gauges from every sample (max/avg per
series, as `max_over_time` / `avg_over_time`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dynamo_tune.metrics._exposition import Snapshot
from dynamo_tune.metrics._queries import MetricSpec
from dynamo_tune.metrics._series import Labels, SeriesVector, counter_deltas, decreasing
from dynamo_tune.metrics._window import WindowData


def last_at_or_before(times: Sequence[float], moment: float) -> int:
    """Index of the last of the ascending `times` at or before `moment` (0 if none is)."""
    index = 0
    for i, taken in enumerate(times):
        if taken <= moment:
            index = i
    return index


def first_after(times: Sequence[float], moment: float) -> int:
    """Index of the first of the ascending `times` after `moment` (the last if none is)."""
    for i, taken in enumerate(times):
        if taken > moment:
            return i
    return len(times) - 1


def merge(snapshots: Sequence[Snapshot]) -> Snapshot:
    """One snapshot holding every series of `snapshots` (their `instance` labels differ)."""
    merged: Snapshot = {}
    for snapshot in snapshots:
        for name, vector in snapshot.items():
            merged.setdefault(name, {}).update(vector)
    return merged


def over_time(vectors: Sequence[SeriesVector], how: str) -> SeriesVector:
    """Per series, the max or mean of its non-NaN values across `vectors` (gauge samples)."""
    values: dict[Labels, list[float]] = {}
    for vector in vectors:
        for labels, value in vector.items():
            if not math.isnan(value):
                values.setdefault(labels, []).append(value)
    if how == "max":
        return {labels: max(vs) for labels, vs in values.items()}
    if how == "avg":
        return {labels: math.fsum(vs) / len(vs) for labels, vs in values.items()}
    raise ValueError(f"over_time must be 'max' or 'avg', but got {how!r}")


def window_from_snapshots(specs: Sequence[MetricSpec], samples: Sequence[Snapshot]) -> WindowData:
    """`WindowData` of `specs` from time-ordered `samples` (first = start, last = end)."""
    if len(samples) < 2:
        raise ValueError(f"at least a start and an end snapshot are needed, got {len(samples)}")
    before, after = samples[0], samples[-1]
    data = WindowData()
    for name in dict.fromkeys(s.series for s in specs if s.kind != "gauge"):
        data.deltas[name] = counter_deltas(before.get(name, {}), after.get(name, {}))
        data.resets[name] = decreasing([sample.get(name, {}) for sample in samples])
    for spec in specs:
        if spec.kind == "gauge":
            vectors = [sample.get(spec.series, {}) for sample in samples]
            data.gauges[spec.key] = over_time(vectors, spec.over_time)
    return data
