"""`DynamoMetricsConfig`: what the seed collector collects, from where, over which time. Pure.

Seed semantics: without both workflow timestamps, metrics come from `{range}` queries
(`query_range`) with a range-query fallback over `lookback_seconds` (600 s if 0). With both
timestamps set, every metric describes exactly `[workflow_start, workflow_end]`.
"""

from __future__ import annotations

from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dynamo_tune.metrics._access import PrometheusAccess
from dynamo_tune.metrics._durations import parse_duration
from dynamo_tune.metrics._queries import METRIC_REGISTRY, Group

DEFAULT_TIMEOUT_S = 10.0
"""Per-request HTTP timeout (seconds) of every metrics request, Prometheus query or /metrics
scrape: the default of each backend, of this config, of the study file's `metrics.timeout_s`
and of `dynamo-tune metrics --timeout`."""


def validate_http_url(url: str) -> str:
    """`url` without trailing slash if it is `http(s)://host[:port][/path]`, else ValueError."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"an http(s)://host[:port] URL is required, but got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a base URL without query or fragment is required, but got {url!r}")
    return url.rstrip("/")


class DynamoMetricsConfig(BaseModel):
    """Configuration of the Dynamo metrics collector (the seed's fields, validated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enable: bool = Field(default=False, description="Enable Dynamo metrics collection")
    prometheus_url: str = Field(
        default="http://localhost:9090", description="Prometheus server URL"
    )
    collect_kv_cache: bool = Field(default=True, description="[core] KV efficiency and cache")
    collect_ttft: bool = Field(default=True, description="[core] TTFT p50/p95/p99")
    collect_itl: bool = Field(default=True, description="[core] ITL p50/p95/p99")
    collect_inflight_requests: bool = Field(default=True, description="Inflight/queued gauges")
    collect_throughput: bool = Field(default=True, description="Requests per minute")
    collect_token_throughput: bool = Field(default=True, description="Output tokens per second")
    query_range: str = Field(
        default="30s", description="Range of rate()/{range} queries (no-window mode), e.g. '1m'"
    )
    lookback_seconds: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="Range-fallback lookback in seconds (0: 600 s)"
    )
    workflow_start_timestamp: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Window start (unix s); with the end: exact-window mode"
    )
    workflow_end_timestamp: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Window end (unix s)"
    )
    timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=DEFAULT_TIMEOUT_S, description="Per-request HTTP timeout against Prometheus"
    )
    concurrency: Annotated[int, Field(ge=1, le=64)] = Field(
        default=8, description="Queries in flight at once"
    )
    scrape_interval_s: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Prometheus scrape interval (read from /api/v1/targets if None)"
    )
    access: PrometheusAccess | None = Field(
        default=None, description="Credentials and TLS of a protected Prometheus (not seed)"
    )

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_http_url(value)

    @field_validator("query_range")
    @classmethod
    def _range(cls, value: str) -> str:
        parse_duration(value)
        return value.strip()

    @model_validator(mode="after")
    def _window(self) -> Self:
        start, end = self.workflow_start_timestamp, self.workflow_end_timestamp
        if end is not None and start is None:
            raise ValueError("workflow_end_timestamp is set but workflow_start_timestamp is not")
        if start is not None and end is not None and end <= start:
            raise ValueError(
                f"`workflow_start_timestamp < workflow_end_timestamp` must hold, but got "
                f"({start=}, {end=})"
            )
        return self

    @property
    def has_window(self) -> bool:
        """True when both workflow timestamps are set (exact-window mode)."""
        return self.workflow_start_timestamp is not None and self.workflow_end_timestamp is not None

    def enabled_groups(self) -> set[Group]:
        """Registry groups the toggles enable (`context` is always on, as in the seed)."""
        groups: set[Group] = {"context"}
        toggles: dict[Group, bool] = {
            "kv_cache": self.collect_kv_cache,
            "ttft": self.collect_ttft,
            "itl": self.collect_itl,
            "inflight_requests": self.collect_inflight_requests,
            "throughput": self.collect_throughput,
            "token_throughput": self.collect_token_throughput,
        }
        groups.update(group for group, on in toggles.items() if on)
        return groups

    def enabled_keys(self) -> list[str]:
        """Registry keys to collect, in registry order."""
        groups = self.enabled_groups()
        return [spec.key for spec in METRIC_REGISTRY if spec.group in groups]

    @classmethod
    def core_metrics_only(
        cls, prometheus_url: str = "http://localhost:9090", query_range: str = "30s"
    ) -> DynamoMetricsConfig:
        """A config collecting only KV efficiency, TTFT and ITL (plus the always-on context)."""
        return cls(
            enable=True,
            prometheus_url=prometheus_url,
            query_range=query_range,
            collect_inflight_requests=False,
            collect_throughput=False,
            collect_token_throughput=False,
        )
