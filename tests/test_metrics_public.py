"""`dynamo_tune.metrics` as a library: its public names, pinned, and every one importable
from the package; the implementation modules are private; one default request timeout."""

from __future__ import annotations

import inspect
from pathlib import Path

import dynamo_tune.metrics as metrics
from dynamo_tune.cli.main import build_parser
from dynamo_tune.study.spec.schema import MetricsSpec


def test_public_names_are_pinned() -> None:
    assert metrics.__all__ == [
        "DEFAULT_SCORE",
        "DEFAULT_TIMEOUT_S",
        "KVE_SOURCES",
        "METRIC_QUERIES",
        "METRIC_REGISTRY",
        "USE_ENV_OR_FILE",
        "BasicAuthSpec",
        "DynamoCoreMetrics",
        "DynamoMetricsCollector",
        "DynamoMetricsConfig",
        "DynamoMetricsResult",
        "KveSource",
        "MetricSpec",
        "MetricsBackend",
        "PrometheusAPI",
        "PrometheusAccess",
        "PrometheusBackend",
        "QueryFailed",
        "ScoreConfig",
        "ScrapeBackend",
        "TlsSpec",
        "collect_core_metrics",
        "collect_dynamo_metrics",
        "histogram_quantile",
        "new_client",
        "optimization_score",
        "parse_duration",
        "url_has_credentials",
        "validate_http_url",
        "validate_weights",
        "wait_for_targets",
        "window_delta_query",
    ]


def test_the_seed_collector_names_import_from_the_package() -> None:
    from dynamo_tune.metrics import (
        METRIC_QUERIES,
        DynamoCoreMetrics,
        DynamoMetricsCollector,
        DynamoMetricsConfig,
        DynamoMetricsResult,
        collect_core_metrics,
        collect_dynamo_metrics,
    )

    assert isinstance(METRIC_QUERIES, dict) and "ttft_p95" in METRIC_QUERIES
    assert [c.__name__ for c in (DynamoCoreMetrics, DynamoMetricsConfig, DynamoMetricsResult)] == [
        "DynamoCoreMetrics",
        "DynamoMetricsConfig",
        "DynamoMetricsResult",
    ]
    assert inspect.isclass(DynamoMetricsCollector)
    assert inspect.iscoroutinefunction(collect_dynamo_metrics)
    assert inspect.iscoroutinefunction(collect_core_metrics)


def test_every_public_name_resolves_from_a_private_module() -> None:
    for name in metrics.__all__:
        value = getattr(metrics, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("dynamo_tune.metrics._"), name
    assert not hasattr(metrics, "no_such_name")


def test_the_implementation_modules_are_private() -> None:
    folder = Path(metrics.__file__).parent
    public = sorted(p.name for p in folder.glob("*.py") if not p.name.startswith("_"))
    assert public == []


def test_one_default_timeout_for_every_metrics_request() -> None:
    assert metrics.DEFAULT_TIMEOUT_S == 10.0
    defaults = {
        "study file": MetricsSpec().timeout_s,
        "seed config": metrics.DynamoMetricsConfig().timeout_s,
        "prometheus": metrics.PrometheusBackend("http://prometheus.test:9090").timeout_s,
        "scrape": metrics.ScrapeBackend(["http://worker.test:9000/metrics"]).timeout_s,
        "cli": build_parser()
        .parse_args(["metrics", "--prometheus-url", "http://prometheus.test:9090"])
        .timeout,
    }
    assert defaults == dict.fromkeys(defaults, 10.0)
