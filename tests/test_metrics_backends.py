"""Both backends honour the `MetricsBackend` seam; bad construction fails clearly."""

from __future__ import annotations

from pathlib import Path

import fixtures.prometheus as prometheus_fixtures
import pytest

from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics import MetricsBackend, PrometheusBackend, ScrapeBackend


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


async def test_prometheus_fixture_fails_loudly_without_the_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(prometheus_fixtures, "prometheus_binary", lambda: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y prometheus"):
        await prometheus_fixtures.start_prometheus(tmp_path, {})


def test_public_names_are_pinned() -> None:
    import dynamo_tune.metrics as metrics

    seed = {
        "METRIC_QUERIES",
        "DynamoMetricsConfig",
        "DynamoMetricsResult",
        "DynamoCoreMetrics",
        "DynamoMetricsCollector",
        "collect_dynamo_metrics",
        "collect_core_metrics",
    }
    ours = {"MetricsBackend", "PrometheusBackend", "ScrapeBackend", "optimization_score"}
    assert seed | ours <= set(metrics.__all__)
    assert all(hasattr(metrics, name) for name in metrics.__all__)
