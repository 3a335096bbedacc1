"""Wait until a Prometheus scrapes its targets, before the first window. Does I/O: HTTP.

`wait_for_targets` returns once the Prometheus has at least one active target and every
active target is up and was scraped after the wait began (`lastScrape` after its start):
from then on a window can be measured. A freshly started Prometheus has no active target yet
(its service discovery runs first), so a window measured at once would have nothing to read.
The wait is bounded by `ready_bound_s`: 10 scrape intervals plus 10 s (the interval: the
caller's, else the longest the targets report, else 15 s). It says once that it waits (when
a target is missing or down, or the wait outlasts one interval) and raises `MetricsError`
naming what is missing once the bound passes. A Prometheus-compatible store without a
targets API is not waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics._edges import poll_every_s, scrape_interval
from dynamo_tune.metrics._prom_api import PrometheusAPI
from dynamo_tune.metrics._prom_parse import QueryFailed, TargetState


def ready_bound_s(interval_s: float) -> float:
    """How long `wait_for_targets` waits at most: 10 scrape intervals plus 10 s."""
    return 10 * interval_s + 10.0


def not_ready(targets: Sequence[TargetState], since: float) -> str | None:
    """What keeps the targets from measuring a window, in words; None when nothing does."""
    if not targets:
        return "it has no active targets"
    down = [
        t.instance + (f" ({t.last_error})" if t.last_error else "")
        for t in targets
        if t.health != "up"
    ]
    if down:
        return f"targets not up: {', '.join(down)}"
    late = [t.instance for t in targets if t.last_scrape is None or t.last_scrape <= since]
    if late:
        return f"targets not scraped since the check began: {', '.join(late)}"
    return None


def waiting_message(targets: Sequence[TargetState], bound_s: float) -> str:
    """The one line said while waiting."""
    if not targets:
        return f"waiting for Prometheus to find its scrape targets (up to {bound_s:.0f} s)"
    return f"waiting for Prometheus to scrape {len(targets)} targets (up to {bound_s:.0f} s)"


async def wait_for_targets(
    api: PrometheusAPI, interval_hint_s: float | None, notify: Callable[[str], None]
) -> None:
    """Wait (bounded, see the module docstring) until every active target of `api`'s
    Prometheus is up and scraped since now; `MetricsError` past the bound, `QueryFailed`
    when the Prometheus gives no HTTP answer."""
    since, began = time.time(), time.monotonic()
    bound: float | None = None
    said = False
    while True:
        try:
            targets = await api.targets()
        except QueryFailed as exc:
            if exc.unreachable:
                raise
            return  # no targets API: nothing to wait for
        interval = scrape_interval(targets, interval_hint_s)
        bound = bound if bound is not None else ready_bound_s(interval)
        missing = not_ready(targets, since)
        if missing is None:
            return
        waited = time.monotonic() - began
        if waited > bound:
            raise MetricsError(
                f"prometheus at {api.base_url} cannot measure a window after {bound:.0f} s: "
                f"{missing}"
            )
        obvious = not targets or any(t.health != "up" for t in targets)
        if not said and (obvious or waited > interval):
            notify(waiting_message(targets, bound))
            said = True
        await asyncio.sleep(poll_every_s(interval))
