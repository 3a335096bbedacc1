"""Both backends honour the `MetricsBackend` seam; bad construction fails clearly."""

from __future__ import annotations

import time
from pathlib import Path

import fixtures.prometheus as prometheus_fixtures
import pytest
from fixtures.prometheus import DynamoExporter

from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics import (
    METRIC_REGISTRY,
    DynamoMetricsResult,
    MetricsBackend,
    PrometheusBackend,
    ScrapeBackend,
)
from dynamo_tune.net import free_port, loopback_url


def assert_unreachable(result: DynamoMetricsResult, *fragments: str) -> None:
    assert result.reachable is False
    assert [spec.key for spec in METRIC_REGISTRY if getattr(result, spec.key) is not None] == []
    assert not result.get_core_metrics().is_complete()
    assert len(result.errors) == 1, result.errors
    for fragment in fragments:
        assert fragment in result.errors[0], result.errors


def test_both_backends_are_metrics_backends() -> None:
    assert isinstance(PrometheusBackend("http://127.0.0.1:9090"), MetricsBackend)
    assert isinstance(ScrapeBackend(["http://127.0.0.1:8000/metrics"]), MetricsBackend)


def test_bad_backend_arguments_are_rejected() -> None:
    with pytest.raises(MetricsError, match="prometheus_url"):
        PrometheusBackend("127.0.0.1:9090")
    with pytest.raises(ValueError, match="unknown metric keys \\['ttft_p42'\\]"):
        PrometheusBackend("http://127.0.0.1:9090", metrics=["ttft_p95", "ttft_p42"])
    with pytest.raises(MetricsError, match="at least one /metrics URL"):
        ScrapeBackend([])


async def test_window_must_be_ordered_and_scrape_needs_mark_start() -> None:
    with pytest.raises(MetricsError, match="end must be after its start"):
        await PrometheusBackend("http://127.0.0.1:9").collect(10.0, 10.0)
    with pytest.raises(MetricsError, match="needs mark_start"):
        await ScrapeBackend(["http://127.0.0.1:9/metrics"]).collect(1.0, 2.0)


class TestUnreachableSource:
    """The `MetricsBackend` failure contract on a real closed loopback port (`free_port()`
    binds 127.0.0.1:0, notes the port and closes the socket): a result, never an exception."""

    async def test_prometheus_backend(self) -> None:
        url = loopback_url(free_port())
        backend = PrometheusBackend(url, timeout_s=2.0)
        await backend.mark_start()
        result = await backend.collect(time.time() - 10, time.time())
        assert result.backend == "prometheus" and result.mode == "window"
        assert_unreachable(
            result, f"prometheus at {url} is unreachable", f"cannot reach {url}/api/v1/targets"
        )

    async def test_scrape_backend(self) -> None:
        url = loopback_url(free_port(), "/metrics")
        backend = ScrapeBackend([url], timeout_s=2.0, sample_interval_s=None)
        assert backend.unreachable_at_start is None  # nothing seen yet
        await backend.mark_start()  # records, does not raise
        assert backend.unreachable_at_start == (
            f"no /metrics endpoint answered: {url}: ConnectError: All connection attempts failed"
        )
        start = time.time()
        result = await backend.collect(start, start + 0.5)
        assert result.backend == "scrape" and result.window_start == start
        assert_unreachable(
            result,
            "no /metrics endpoint answered both at the window start and end",
            f"start snapshot: {url}: ConnectError",
        )

    async def test_scrape_endpoint_stopping_before_the_end(self) -> None:
        exporter = DynamoExporter()
        try:
            backend = ScrapeBackend([exporter.url], timeout_s=2.0, sample_interval_s=None)
            await backend.mark_start()
            assert backend.unreachable_at_start is None
            start = time.time()
            exporter.feed("w0", 0.1, [0.01], 100, 50)
        finally:
            exporter.stop()
        result = await backend.collect(start, time.time())
        assert_unreachable(result, f"end: {exporter.url}: ConnectError")

    async def test_scrape_one_endpoint_down_is_reachable_with_an_error(self) -> None:
        exporter = DynamoExporter()
        closed = loopback_url(free_port(), "/metrics")
        try:
            backend = ScrapeBackend([exporter.url, closed], timeout_s=2.0, sample_interval_s=None)
            await backend.mark_start()
            start = time.time()
            for _ in range(4):
                exporter.feed("w0", 0.1, [0.01], 100, 25)
            result = await backend.collect(start, time.time())
        finally:
            exporter.stop()
        assert result.reachable
        assert result.get_core_metrics().kv_efficiency == pytest.approx(100 / 400)
        assert [e.split(": ")[:2] for e in result.errors] == [
            ["start snapshot", closed],
            [closed, "ConnectError"],
        ]


def test_an_unreachable_result_has_no_values_and_a_reason() -> None:
    result = DynamoMetricsResult.unreachable("down", backend="scrape")
    assert result.reachable is False and result.errors == ["down"]
    assert DynamoMetricsResult().reachable is True
    with pytest.raises(ValueError, match="every metric None and a reason"):
        DynamoMetricsResult(reachable=False, ttft_p95=0.2, errors=["down"])
    with pytest.raises(ValueError, match="every metric None and a reason"):
        DynamoMetricsResult(reachable=False)


async def test_prometheus_fixture_fails_loudly_without_the_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(prometheus_fixtures, "prometheus_binary", lambda: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y prometheus"):
        await prometheus_fixtures.start_prometheus(tmp_path, {})
