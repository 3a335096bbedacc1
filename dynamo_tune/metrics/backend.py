"""The metrics seam: how a trial gets a `DynamoMetricsResult` for its window. Pure (types only).

A backend is told when the workload is about to start (`mark_start`, where the scrape
backend snapshots every /metrics endpoint) and then asked for the result of the exact window
`[start, end]` (unix seconds, from the workload's report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dynamo_tune.metrics.models import DynamoMetricsResult


@runtime_checkable
class MetricsBackend(Protocol):
    """Prometheus or scrape; both return the same result type and field names."""

    async def mark_start(self) -> None:
        """Called right before the measured workload starts."""

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        """Metrics of exactly the window `[start, end]`; per-query errors in `result.errors`."""
