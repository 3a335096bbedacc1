"""Where the window's edges fall among Prometheus scrapes. Pure.

`t0 = start`: an instant vector at `start` is the last scrape at or before it, which holds
none of the window's traffic. `t1` is just after the FIRST scrape that follows `end` (so it
holds all of the window's traffic and nothing fed after that scrape): the collector polls
`/api/v1/targets` until every target's `lastScrape` is past `end`, then reads the raw `up`
samples after `end` (`up[3i] @ end+3i`) to find each target's first scrape after `end`;
`t1` = the latest of those + 1 ms. (`up` is committed with the scrape's samples, so its
presence also proves the scrape's data is queryable.)

Whether the scrapes measured the window at all (`window_faults`): Prometheus had an active
target; every target is up at the window end (its first scrape past `end`); and each has at
least one `up` sample in `(t0, t1]`, none of them 0. Anything else is a measurement fault
(`DynamoMetricsResult.fault`), not data about the deployment.
"""

from __future__ import annotations

from collections.abc import Sequence

from dynamo_tune.metrics._prom_parse import Matrix, TargetState
from dynamo_tune.metrics._series import Labels

DEFAULT_SCRAPE_INTERVAL_S = 15.0
"""Prometheus's default `scrape_interval`, used when neither caller nor targets tell."""
EDGE_EPSILON_S = 0.001


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
    """How often to poll while waiting (a tenth of an interval, within 50-250 ms)."""
    return min(0.25, max(0.05, interval_s / 10))


def up_after_query(end: float, interval_s: float) -> tuple[str, float]:
    """(query, evaluation time) returning each target's raw `up` samples in (end, end+3i]."""
    span_ms = max(1, round(3 * interval_s * 1000))
    return f"up[{span_ms}ms]", end + span_ms / 1000


def first_scrapes_after(up_samples: Matrix, end: float) -> dict[Labels, float]:
    """Per target (its `up` series), the time of its first scrape after `end`."""
    first: dict[Labels, float] = {}
    for labels, samples in up_samples:
        after = [timestamp for timestamp, _ in samples if timestamp > end]
        if after:
            first[labels] = min(after)
    return first


def end_edge(first_after: dict[Labels, float], expected: int) -> float | None:
    """`t1` = latest first-scrape-after-end + 1 ms, once all `expected` targets have one."""
    if not first_after or len(first_after) < expected:
        return None
    return max(first_after.values()) + EDGE_EPSILON_S


def range_step_s(start: float, end: float) -> float:
    """Step of a range-fallback query: ~250 points, at least 1 s."""
    return max(1.0, (end - start) / 250)


def up_in_window_query(t0: float, t1: float) -> tuple[str, float]:
    """(query, evaluation time) returning each target's raw `up` samples in `(t0, t1]`."""
    span_ms = max(1, round((t1 - t0) * 1000))
    return f"up[{span_ms}ms]", t1


def window_faults(
    targets: Sequence[TargetState], up_samples: Matrix | None, known_targets: bool
) -> list[str]:
    """Why the scrapes did not measure the window, in words (empty: they did).

    `targets`: the active targets after the wait for the scrape past `end` (`known_targets`
    False without a targets API: then only the `up` series found are judged); `up_samples`:
    the answer of `up_in_window_query` (None when it could not be read: not judged here).
    """
    if known_targets and not targets:
        return ["prometheus has no active targets"]
    faults = [
        f"target {t.instance} is {t.health} at the window end"
        + (f" ({t.last_error})" if t.last_error else "")
        for t in targets
        if t.health != "up"
    ]
    if up_samples is None:
        return faults
    values: dict[str, list[float]] = {}
    for labels, samples in up_samples:
        instance = dict(labels).get("instance", "?")
        values.setdefault(instance, []).extend(value for _, value in samples)
    wanted = [t.instance for t in targets] if known_targets else sorted(values)
    for instance in wanted:
        seen = values.get(instance, [])
        if not seen:
            faults.append(f"target {instance} was not scraped inside the window")
        elif 0.0 in seen:
            down = seen.count(0.0)
            faults.append(f"target {instance} was down at {down} of {len(seen)} scrapes inside it")
    return faults
