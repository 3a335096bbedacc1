"""The metrics seam: how a trial gets a `DynamoMetricsResult` for its window. Pure (types only).

A backend is told when the workload is about to start (`mark_start`, where the scrape
backend snapshots every /metrics endpoint) and then asked for the result of the exact window
`[start, end]` (unix seconds, from the workload's report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dynamo_tune.metrics._models import DynamoMetricsResult


@runtime_checkable
class MetricsBackend(Protocol):
    """Prometheus or scrape; both return the same result type and field names.

    Failure contract (the seed's "None if no data or error"), shared by every backend and
    by `DynamoMetricsCollector.collect()`:

    - a failing query or endpoint leaves its metrics None and is listed in `result.errors`;
    - a source that cannot be read at all (refused, timed out, stopped answering) is not an
      exception either: `collect` returns a result with `reachable=False`, every metric None
      and the reason in `errors` (`mark_start` only records what it saw);
    - whenever the source could not measure the window (unreachable; Prometheus: no active
      target, a target down or not scraped inside the window, a failed window query; scrape:
      an endpoint that did not answer at the window's start or end) `result.fault` says why
      (also listed in `errors`): a study FAILs such a trial and measures it again;
    - `MetricsError` / `ValueError` are raised only for misuse: a bad URL or argument at
      construction, `end <= start`, `collect()` before `mark_start()`.
    """

    async def mark_start(self) -> None:
        """Called right before the measured workload starts."""

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        """Metrics of exactly the window `[start, end]` (see the failure contract above)."""
