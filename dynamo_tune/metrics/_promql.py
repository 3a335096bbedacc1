"""PromQL builders for both modes of a `MetricSpec`. Pure.

Exact-window mode (docs/architecture.md#exact-window) never uses `rate`/`increase` (their
edge extrapolation distorts per-window quantiles). It fetches, per series, the exact
difference of the raw cumulative samples at the window's edges with the `@` modifier:

    x @ t1 - (x @ t0 or x @ t1 * 0)

(`or ... * 0` keeps series born inside the window), together with the series whose counter
was reset since the scrape at `t0`, tagged with the label `RESET_LABEL`. Gauges are fetched as
`max_over_time(x[W] @ t1)` / `avg_over_time(...)` with `W = t1 - t0`. Aggregation across
series and the quantile are computed by `_window.py`, the same code the scrape backend uses.
"""

from __future__ import annotations

from dynamo_tune.metrics._durations import format_duration
from dynamo_tune.metrics._queries import MetricSpec

RESET_LABEL = "dynamo_tune_reset"


def at(timestamp: float) -> str:
    """A unix time for the `@` modifier (millisecond precision)."""
    return f"{timestamp:.3f}"


def render_range(template: str, query_range: str) -> str:
    """The seed's `{range}` substitution."""
    return template.replace("{range}", query_range)


def window_delta_query(selector: str, t0: float, t1: float, interval_s: float) -> str:
    """Per-series `selector @ t1 - selector @ t0`, plus reset-tagged series (see module doc).

    The reset check spans `(t0 - interval, t1]`, so it starts from the last scrape at or
    before `t0` (the one the difference starts from) and catches a drop right after it.
    """
    s, a0, a1 = selector, at(t0), at(t1)
    span = format_duration(t1 - t0 + interval_s)
    return (
        f"({s} @ {a1} - ({s} @ {a0} or {s} @ {a1} * 0))"
        f' or label_replace(resets({s}[{span}] @ {a1}) > 0, "{RESET_LABEL}", "1", "", "")'
    )


def window_gauge_query(spec: MetricSpec, t0: float, t1: float) -> str:
    """Per-series `max_over_time` / `avg_over_time` of a gauge over `(t0, t1]`."""
    span = format_duration(t1 - t0)
    return f"{spec.over_time}_over_time({spec.series}[{span}] @ {at(t1)})"
