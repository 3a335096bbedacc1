"""The seed's collector API against a real Prometheus: window mode and `{range}` mode."""

from __future__ import annotations

import time

import pytest
from fixtures.prometheus import TTFT_BUCKETS, DynamoExporter, wait_scraped_after

from dynamo_tune.deploy.prometheus import PrometheusServer
from dynamo_tune.metrics import (
    DynamoMetricsCollector,
    DynamoMetricsConfig,
    collect_core_metrics,
    collect_dynamo_metrics,
    histogram_quantile,
)
from dynamo_tune.metrics.histogram import cumulative_from_observations

pytestmark = pytest.mark.integration


async def test_config_with_both_timestamps_collects_the_exact_window(
    prometheus: PrometheusServer, dynamo_exporter: DynamoExporter
) -> None:
    await wait_scraped_after(prometheus.url, time.time())
    start = time.time()
    ttfts = [0.012 * (i + 1) for i in range(30)]
    for i, ttft in enumerate(ttfts):
        dynamo_exporter.feed(f"w{i % 2}", ttft, [0.004], 500, 100)
    end = time.time()
    await wait_scraped_after(prometheus.url, end)
    config = DynamoMetricsConfig.core_metrics_only(prometheus.url).model_copy(
        update={"workflow_start_timestamp": start, "workflow_end_timestamp": end}
    )
    result = await collect_dynamo_metrics(config)
    assert result.mode == "window" and result.errors == []
    expected = histogram_quantile(0.95, cumulative_from_observations(TTFT_BUCKETS, ttfts))
    assert result.ttft_p95 == pytest.approx(expected)
    assert result.get_core_metrics().kv_efficiency == pytest.approx(0.2)
    assert result.requests_per_minute is None  # toggled off by core_metrics_only
    assert set(DynamoMetricsCollector(config)._get_enabled_metrics()) == set(config.enabled_keys())


async def test_range_mode_reads_recent_traffic(
    prometheus: PrometheusServer, dynamo_exporter: DynamoExporter
) -> None:
    for i in range(10):
        dynamo_exporter.feed(f"w{i % 2}", 0.3, [0.02, 0.02], 800, 400)
    # rate() over 30s needs two samples that differ: wait for two scrapes after the traffic.
    await wait_scraped_after(prometheus.url, time.time())
    await wait_scraped_after(prometheus.url, time.time())
    core = await collect_core_metrics(prometheus.url, query_range="30s")
    assert core.ttft_p95_seconds is not None and 0 < core.ttft_p95_seconds <= 4.7
    assert core.itl_p95_seconds is not None
    assert core.kv_efficiency_source == "frontend" and core.kv_efficiency is not None
    assert 0 < core.kv_efficiency < 1
    assert core.is_complete()


async def test_range_mode_genuine_zero_gauge_from_real_prometheus(
    prometheus: PrometheusServer, dynamo_exporter: DynamoExporter
) -> None:
    dynamo_exporter.inflight.labels(model="tiny", worker="w0").set(0)
    dynamo_exporter.inflight.labels(model="tiny", worker="w1").set(0)
    await wait_scraped_after(prometheus.url, time.time())
    config = DynamoMetricsConfig(prometheus_url=prometheus.url, collect_kv_cache=False)
    result = await collect_dynamo_metrics(config)
    assert result.mode == "range"
    assert result.inflight_requests_frontend == 0.0  # a real 0, not "no data"
    assert result.queued_requests is None  # not exported here: no data
