"""The seed's collector API against a real Prometheus: window mode and `{range}` mode."""

from __future__ import annotations

import time

import pytest
from fixtures.prometheus import TTFT_BUCKETS, DynamoExporter, wait_scraped_after
from metrics_helpers import assert_unreachable

from dynamo_tune.deploy.prometheus import PrometheusServer
from dynamo_tune.metrics import (
    DynamoMetricsCollector,
    DynamoMetricsConfig,
    collect_core_metrics,
    collect_dynamo_metrics,
)
from dynamo_tune.net import free_port, loopback_url


def closed_port_url() -> str:
    """A real closed port: `free_port()` binds 127.0.0.1:0, notes the port and closes it."""
    return loopback_url(free_port())


def test_enabled_metrics_are_the_toggled_groups_with_seed_queries() -> None:
    config = DynamoMetricsConfig(
        collect_kv_cache=False,
        collect_itl=False,
        collect_inflight_requests=False,
        collect_throughput=False,
        collect_token_throughput=False,
    )
    ttft = "sum by (le) (rate(dynamo_frontend_time_to_first_token_seconds_bucket[{range}]))"
    assert DynamoMetricsCollector(config)._get_enabled_metrics() == {
        "ttft_p50": f"histogram_quantile(0.50, {ttft})",
        "ttft_p95": f"histogram_quantile(0.95, {ttft})",
        "ttft_p99": f"histogram_quantile(0.99, {ttft})",
        # the seed's always-on context group
        "sglang_running_requests": "sum(sglang:num_running_reqs)",
        "sglang_queue_depth": "sum(sglang:num_queue_reqs)",
        "sglang_utilization": "avg(sglang:utilization)",
        "thompson_routing_decisions_rate": (
            "sum(rate(dynamo_component_thompson_routing_decisions_total[{range}]))"
        ),
        "thompson_requests_rate": "sum(rate(dynamo_component_thompson_requests_total[{range}]))",
    }


async def test_unreachable_prometheus_in_range_mode_is_a_result_not_an_exception() -> None:
    url = closed_port_url()
    config = DynamoMetricsConfig.core_metrics_only(url).model_copy(update={"timeout_s": 2.0})
    result = await DynamoMetricsCollector(config).collect()
    assert result.mode == "range" and result.prometheus_url == url
    assert_unreachable(result, f"prometheus at {url} is unreachable", f"cannot reach {url}/api/v1/")
    core = await collect_core_metrics(url)  # the seed's helper: no data, no exception
    assert not core.is_complete() and core.to_optimization_score() is None


async def test_unreachable_prometheus_in_window_mode_is_a_result_not_an_exception() -> None:
    url = closed_port_url()
    config = DynamoMetricsConfig.core_metrics_only(url).model_copy(
        update={"workflow_start_timestamp": 1000.0, "workflow_end_timestamp": 1010.0}
    )
    result = await collect_dynamo_metrics(config)
    assert result.mode == "window" and (result.window_start, result.window_end) == (1000, 1010)
    assert_unreachable(
        result, f"prometheus at {url} is unreachable", f"cannot reach {url}/api/v1/targets"
    )


@pytest.mark.integration
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
    assert result.mode == "window" and result.errors == [] and result.reachable
    # TTFTs 0.012 .. 0.36 s: 18 are <= 0.22 and all 30 <= 0.47 (the Dynamo buckets); rank
    # 0.95 * 30 = 28.5 lies 10.5 of 12 into (0.22, 0.47]: 0.22 + 0.25 * 10.5 / 12
    assert TTFT_BUCKETS[7:9] == (0.22, 0.47)
    assert result.ttft_p95 == pytest.approx(0.22 + 0.25 * 10.5 / 12)
    assert result.get_core_metrics().kv_efficiency == pytest.approx(100 / 500)
    assert result.requests_per_minute is None  # toggled off by core_metrics_only


@pytest.mark.integration
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


@pytest.mark.integration
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
