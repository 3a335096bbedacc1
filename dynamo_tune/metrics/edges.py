"""Where the window's edges fall among Prometheus scrapes. Pure.

`t0 = start`: an instant vector at `start` is the last scrape at or before it, which holds
none of the window's traffic. `t1` must be after the first scrape that follows `end`: the
collector polls `/api/v1/targets` until every target's `lastScrape` is past `end`
(`pending`), then takes `t1` = now — or, for a window long past, `end + 1.5 intervals`, so
gauges do not average in what happened after.
"""

from __future__ import annotations

from collections.abc import Sequence

from dynamo_tune.metrics.prom_parse import TargetState

DEFAULT_SCRAPE_INTERVAL_S = 15.0
"""Prometheus's default `scrape_interval`, used when neither caller nor targets tell."""


def scrape_interval(targets: Sequence[TargetState], hint_s: float | None) -> float:
    """The caller's interval, else the longest interval of the targets, else 15 s."""
    if hint_s is not None:
        return hint_s
    known = [t.interval_s for t in targets if t.interval_s is not None]
    return max(known) if known else DEFAULT_SCRAPE_INTERVAL_S


def pending(targets: Sequence[TargetState], end: float) -> list[str]:
    """Targets not yet scraped after `end` (their samples may miss the window's tail)."""
    return [t.instance for t in targets if t.last_scrape is None or t.last_scrape <= end]


def max_wait_s(interval_s: float) -> float:
    """How long to wait for the first scrape past `end`: three intervals plus 2 s."""
    return 3 * interval_s + 2.0


def poll_every_s(interval_s: float) -> float:
    """How often to poll the targets while waiting (a tenth of an interval, 50-250 ms)."""
    return min(0.25, max(0.05, interval_s / 10))


def commit_margin_s(interval_s: float) -> float:
    """Pause after `lastScrape` moves (it is updated before the samples are committed)."""
    return min(0.2, interval_s / 5)


def end_edge(now: float, end: float, interval_s: float, waited: bool) -> float:
    """`t1`: `now` after a live wait; for an old window `min(now, end + 1.5 intervals)`."""
    if waited:
        return now
    return min(now, end + 1.5 * interval_s)


def range_step_s(start: float, end: float) -> float:
    """Step of a range-fallback query: ~250 points, at least 1 s."""
    return max(1.0, (end - start) / 250)
