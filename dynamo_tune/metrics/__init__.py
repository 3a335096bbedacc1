"""Dynamo core metrics (KV efficiency, TTFT, ITL) over exact windows, and the score.

Public names (import from here; the `_modules` are the implementation):

- the seed's collector API: `METRIC_QUERIES`, `DynamoMetricsConfig`, `DynamoMetricsResult`,
  `DynamoCoreMetrics`, `DynamoMetricsCollector`, `collect_dynamo_metrics`,
  `collect_core_metrics`; the registry behind it, `METRIC_REGISTRY` of `MetricSpec`s;
- the two `MetricsBackend`s, `PrometheusBackend` and `ScrapeBackend`, and the default
  per-request timeout of every metrics request, `DEFAULT_TIMEOUT_S`;
- the credentials and TLS of a protected Prometheus, `PrometheusAccess` (with `BasicAuthSpec`,
  `TlsSpec`, `url_has_credentials`, the hint `USE_ENV_OR_FILE`);
- the thin Prometheus HTTP client: `new_client`, `PrometheusAPI`, its error `QueryFailed`;
  `wait_for_targets` (until a Prometheus scrapes every target, before the first window);
  the exact-window PromQL `window_delta_query`;
- the pure score `optimization_score`, its weights and targets `ScoreConfig` (`DEFAULT_SCORE`,
  `validate_weights`), the KVE sources (`KVE_SOURCES`, `KveSource`), `histogram_quantile`,
  `parse_duration` and `validate_http_url`.

The pure names are imported here; the backends, the collector and the HTTP client (the
modules that use httpx) on first use, so importing the package (as the study file's schema
does, for `PrometheusAccess` and `ScoreConfig`) loads neither httpx nor a backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dynamo_tune.metrics._access import (
    USE_ENV_OR_FILE,
    BasicAuthSpec,
    PrometheusAccess,
    TlsSpec,
    url_has_credentials,
)
from dynamo_tune.metrics._backend import MetricsBackend
from dynamo_tune.metrics._config import DEFAULT_TIMEOUT_S, DynamoMetricsConfig, validate_http_url
from dynamo_tune.metrics._durations import parse_duration
from dynamo_tune.metrics._histogram import histogram_quantile
from dynamo_tune.metrics._kve import KVE_SOURCES, KveSource
from dynamo_tune.metrics._models import DynamoCoreMetrics, DynamoMetricsResult
from dynamo_tune.metrics._prom_parse import QueryFailed
from dynamo_tune.metrics._promql import window_delta_query
from dynamo_tune.metrics._queries import METRIC_QUERIES, METRIC_REGISTRY, MetricSpec
from dynamo_tune.metrics._score import (
    DEFAULT_SCORE,
    ScoreConfig,
    optimization_score,
    validate_weights,
)

if TYPE_CHECKING:
    from dynamo_tune.metrics._collector import (
        DynamoMetricsCollector,
        collect_core_metrics,
        collect_dynamo_metrics,
    )
    from dynamo_tune.metrics._prom_api import PrometheusAPI, new_client
    from dynamo_tune.metrics._prometheus import PrometheusBackend
    from dynamo_tune.metrics._readiness import wait_for_targets
    from dynamo_tune.metrics._scrape import ScrapeBackend

_DOES_IO = {
    "DynamoMetricsCollector": "_collector",
    "PrometheusAPI": "_prom_api",
    "PrometheusBackend": "_prometheus",
    "ScrapeBackend": "_scrape",
    "collect_core_metrics": "_collector",
    "collect_dynamo_metrics": "_collector",
    "new_client": "_prom_api",
    "wait_for_targets": "_readiness",
}
"""Public name -> the module (under `dynamo_tune.metrics`) it lives in, for the names whose
modules do I/O (httpx): imported on first use by `__getattr__`."""

__all__ = [
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


def __getattr__(name: str) -> Any:
    if name not in _DOES_IO:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_DOES_IO[name]}"), name)
