"""Dynamo core metrics (KV efficiency, TTFT, ITL) over exact windows, and the score.

Public names (import from here): the seed's `METRIC_QUERIES`, `DynamoMetricsConfig`,
`DynamoMetricsResult`, `DynamoCoreMetrics`, `DynamoMetricsCollector`,
`collect_dynamo_metrics`, `collect_core_metrics`; the two `MetricsBackend`s
(`PrometheusBackend`, `ScrapeBackend`); the credentials and TLS of a protected Prometheus,
`PrometheusAccess` (with `BasicAuthSpec`, `TlsSpec`); the pure score `optimization_score` and its
weights and targets, `ScoreConfig`.
"""

from dynamo_tune.metrics.access import BasicAuthSpec, PrometheusAccess, TlsSpec
from dynamo_tune.metrics.backend import MetricsBackend
from dynamo_tune.metrics.collector import (
    DynamoMetricsCollector,
    collect_core_metrics,
    collect_dynamo_metrics,
)
from dynamo_tune.metrics.config import DynamoMetricsConfig
from dynamo_tune.metrics.histogram import histogram_quantile
from dynamo_tune.metrics.kve import KVE_SOURCES, KveSource
from dynamo_tune.metrics.models import DynamoCoreMetrics, DynamoMetricsResult
from dynamo_tune.metrics.prometheus import PrometheusBackend
from dynamo_tune.metrics.queries import METRIC_QUERIES, METRIC_REGISTRY, MetricSpec
from dynamo_tune.metrics.score import ScoreConfig, optimization_score, validate_weights
from dynamo_tune.metrics.scrape import ScrapeBackend

__all__ = [
    "KVE_SOURCES",
    "METRIC_QUERIES",
    "METRIC_REGISTRY",
    "BasicAuthSpec",
    "DynamoCoreMetrics",
    "DynamoMetricsCollector",
    "DynamoMetricsConfig",
    "DynamoMetricsResult",
    "KveSource",
    "MetricSpec",
    "MetricsBackend",
    "PrometheusAccess",
    "PrometheusBackend",
    "ScoreConfig",
    "ScrapeBackend",
    "TlsSpec",
    "collect_core_metrics",
    "collect_dynamo_metrics",
    "histogram_quantile",
    "optimization_score",
    "validate_weights",
]
