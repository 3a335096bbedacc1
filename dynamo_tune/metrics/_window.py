"""Window values of every `MetricSpec` from per-series raw window data. Pure.

Both backends reduce what they fetched to a `WindowData`: per-series counter/bucket
differences over the window (`deltas`, by series name), series seen resetting (`resets`)
and per-series gauge statistics over the window (`gauges`, by metric key). This module
turns that into metric values, the same way for both:

- quantile: bucket differences summed by `le` across series, then `histogram_quantile`;
- counter rate: sum of differences / window seconds x scale;
- gauge: sum / avg / max across series of each series' window max or mean.

A negative difference or a reset-tagged series is a counter reset inside the window: the
metric gets no value and the reset is reported in the errors (never a silent wrong number).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dynamo_tune.metrics._histogram import histogram_quantile
from dynamo_tune.metrics._queries import MetricSpec
from dynamo_tune.metrics._series import Labels, SeriesVector, format_labels, label_value


@dataclass
class WindowData:
    """Raw window data of one backend (see module doc). Missing key = no such series."""

    deltas: dict[str, SeriesVector] = field(default_factory=dict)
    resets: dict[str, set[Labels]] = field(default_factory=dict)
    gauges: dict[str, SeriesVector] = field(default_factory=dict)


def combine(values: Iterable[float], how: str) -> float | None:
    """sum / avg / max of the non-NaN `values`; None if there are none."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    if how == "sum":
        return math.fsum(finite)
    if how == "avg":
        return math.fsum(finite) / len(finite)
    if how == "max":
        return max(finite)
    raise ValueError(f"combine must be 'sum', 'avg' or 'max', but got {how!r}")


def find_resets(series: str, data: WindowData) -> list[str]:
    """One message if any series of `series` had its counter reset inside the window."""
    vector = data.deltas.get(series, {})
    reset = set(data.resets.get(series, set()))
    reset.update(labels for labels, value in vector.items() if value < 0)
    if not reset:
        return []
    example = min(reset, key=sorted)
    return [
        f"{series}: counter reset inside the window in {len(reset)} series, "
        f"e.g. {format_labels(example)} (restart components before the window starts)"
    ]


def summed_buckets(vector: SeriesVector) -> list[tuple[float, float]]:
    """`sum by (le)` of bucket differences, as (upper bound, count); bad `le` skipped."""
    sums: dict[float, float] = {}
    for labels, value in vector.items():
        le = label_value(labels, "le")
        try:
            bound = float(le) if le is not None else math.nan
        except ValueError:
            bound = math.nan
        if not math.isnan(bound) and not math.isnan(value):
            sums[bound] = sums.get(bound, 0.0) + value
    return sorted(sums.items())


def spec_value(spec: MetricSpec, data: WindowData, duration_s: float) -> float | None:
    """The window value of `spec` (None: no data or a reset — see `find_resets`)."""
    if spec.kind == "gauge":
        return combine(data.gauges.get(spec.key, {}).values(), spec.combine)
    vector = data.deltas.get(spec.series)
    if not vector or find_resets(spec.series, data):
        return None
    if spec.match:
        vector = {
            labels: value
            for labels, value in vector.items()
            if all(label_value(labels, k) == v for k, v in spec.match)
        }
        if not vector:
            return 0.0 if spec.kind == "counter_rate" else None
    if spec.kind == "quantile":
        assert spec.quantile is not None
        value = histogram_quantile(spec.quantile, summed_buckets(vector))
        return None if math.isnan(value) else value
    total = combine(vector.values(), "sum")
    return None if total is None else total / duration_s * spec.scale


def evaluate_window(
    specs: Sequence[MetricSpec], data: WindowData, duration_s: float
) -> tuple[dict[str, float | None], list[str]]:
    """({key: value}, reset errors) for `specs` over a window of `duration_s` seconds."""
    if not duration_s > 0:
        raise ValueError(f"`duration_s > 0` must hold, but got {duration_s=}")
    values = {spec.key: spec_value(spec, data, duration_s) for spec in specs}
    errors: list[str] = []
    for series in dict.fromkeys(s.series for s in specs if s.kind != "gauge"):
        errors.extend(find_resets(series, data))
    return values, errors
