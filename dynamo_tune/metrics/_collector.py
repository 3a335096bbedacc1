"""The seed's collector API: `DynamoMetricsCollector` and helpers. Does I/O: HTTP.

With both workflow timestamps in the config, `collect()` is the exact-window collection
of `PrometheusBackend`. Otherwise it runs the seed's `{range}` queries (concurrently, one
client, bounded), each an instant query with a range fallback (see `_rangemode.py`); an
HTTP error on one query is listed in `errors` and neither stops the others nor skips its
fallback. Failures in both modes follow the `MetricsBackend` contract (`_backend.py`; the
seed's "None if no data or error"): a Prometheus that answers no request, or rejects the
credentials of `config.access`, gives `reachable=False`, never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import time

from dynamo_tune.metrics._config import DynamoMetricsConfig
from dynamo_tune.metrics._edges import range_step_s
from dynamo_tune.metrics._models import DynamoCoreMetrics, DynamoMetricsResult
from dynamo_tune.metrics._prom_api import PrometheusAPI, new_client
from dynamo_tune.metrics._prom_parse import QueryFailed
from dynamo_tune.metrics._prometheus import PrometheusBackend
from dynamo_tune.metrics._promql import render_range
from dynamo_tune.metrics._queries import METRIC_QUERIES, METRIC_SPECS, MetricSpec
from dynamo_tune.metrics._rangemode import fallback_span, instant_value, latest_value

logger = logging.getLogger(__name__)


class DynamoMetricsCollector:
    """Collects Dynamo metrics from Prometheus as `config` says."""

    def __init__(self, config: DynamoMetricsConfig) -> None:
        self.config = config
        self.prometheus_url = config.prometheus_url

    def _get_enabled_metrics(self) -> dict[str, str]:
        """Seed-compatible: {key: `{range}` query} of the metrics the toggles enable."""
        return {key: METRIC_QUERIES[key] for key in self.config.enabled_keys()}

    async def collect(self) -> DynamoMetricsResult:
        """Every enabled metric: exact window if both timestamps are set, else range mode.

        Never raises for an unreachable Prometheus: see `result.reachable`.
        """
        config = self.config
        start, end = config.workflow_start_timestamp, config.workflow_end_timestamp
        if start is not None and end is not None:
            backend = PrometheusBackend(
                config.prometheus_url,
                timeout_s=config.timeout_s,
                scrape_interval_s=config.scrape_interval_s,
                concurrency=config.concurrency,
                metrics=config.enabled_keys(),
                access=config.access,
            )
            return await backend.collect(start, end)
        return await self._collect_range()

    async def _collect_range(self) -> DynamoMetricsResult:
        config = self.config
        specs = [METRIC_SPECS[key] for key in config.enabled_keys()]
        now = time.time()
        async with new_client(config.timeout_s, config.access) as client:
            api = PrometheusAPI(client, config.prometheus_url, config.concurrency)
            outcomes = await asyncio.gather(*(self._one(api, spec, now) for spec in specs))
        meta = {
            "collection_timestamp": now,
            "prometheus_url": config.prometheus_url,
            "backend": "prometheus",
            "mode": "range",
            "window_start": config.workflow_start_timestamp,
        }
        errors = [err for _, errs in outcomes for err in errs]
        if api.rejection is not None:
            logger.warning("%s", api.rejection)
            return DynamoMetricsResult.unreachable(api.rejection, **meta)
        if specs and api.answered == 0:
            reason = (
                f"prometheus at {config.prometheus_url} is unreachable "
                f"({len(errors)} requests unanswered): {errors[0]}"
            )
            logger.warning("%s", reason)
            return DynamoMetricsResult.unreachable(reason, **meta)
        values = {spec.key: value for spec, (value, _) in zip(specs, outcomes, strict=True)}
        logger.info("collected %d metrics, %d errors", len(values), len(errors))
        return DynamoMetricsResult.from_values(values, errors=errors, **meta)

    async def _one(
        self, api: PrometheusAPI, spec: MetricSpec, now: float
    ) -> tuple[float | None, list[str]]:
        """One metric: instant query, then the range fallback if it gave nothing."""
        query = render_range(METRIC_QUERIES[spec.key], self.config.query_range)
        errors: list[str] = []
        try:
            value = instant_value(spec, await api.query(query, at=now))
        except QueryFailed as exc:
            errors.append(f"{spec.key}: instant query failed: {exc}")
            value = None
        if value is not None:
            return value, errors
        start, end = fallback_span(
            now, self.config.lookback_seconds, self.config.workflow_start_timestamp
        )
        try:
            matrix = await api.query_range(query, start, end, range_step_s(start, end))
        except QueryFailed as exc:
            errors.append(f"{spec.key}: range fallback failed: {exc}")
            return None, errors
        return latest_value(spec, matrix), errors


async def collect_dynamo_metrics(config: DynamoMetricsConfig) -> DynamoMetricsResult:
    """Collect Dynamo metrics as `config` says."""
    return await DynamoMetricsCollector(config).collect()


async def collect_core_metrics(
    prometheus_url: str = "http://localhost:9090", query_range: str = "30s"
) -> DynamoCoreMetrics:
    """Collect only the three core optimization metrics (range mode)."""
    config = DynamoMetricsConfig.core_metrics_only(prometheus_url, query_range)
    return (await collect_dynamo_metrics(config)).get_core_metrics()
