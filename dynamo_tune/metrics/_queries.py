"""The metric registry: every collected metric as a series name plus its kind. Pure.

Each `MetricSpec` says *what* a metric is (a histogram quantile, a counter's rate, a gauge) and
over which series; `_promql.py` turns one entry into the seed's `{range}` query (no-window
mode) or into the exact-window queries, and `_window.py` computes the window value from the
raw deltas either backend fetched. So one entry is evaluated the same way everywhere.

To add a metric (the seed's steps): add a `MetricSpec` here and a field of the same name to
`DynamoMetricsResult`; nothing else unless it must be combined with others (like KVE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricKind = Literal["quantile", "counter_rate", "gauge"]
Group = Literal[
    "ttft", "itl", "kv_cache", "inflight_requests", "throughput", "token_throughput", "context"
]


@dataclass(frozen=True)
class MetricSpec:
    """One collected metric.

    - `quantile`: `metric` is a histogram's base name; value = `histogram_quantile(q, ...)`
      over the `_bucket` series summed by `le` across every series (worker, frontend).
    - `counter_rate`: `metric` is a counter; value = (sum over series of its increase) /
      seconds x `scale` (`scale=60` gives per minute).
    - `gauge`: `metric` is a gauge; value = `combine` (sum or avg) across series of each
      series' `over_time` (max or avg) over the window; without a window, its current value.

    `match` ((label, value) pairs, counters and quantiles only) keeps only the series whose
    labels all match; a series family present without a matching series counts 0.
    """

    key: str
    kind: MetricKind
    metric: str
    group: Group
    quantile: float | None = None
    scale: float = 1.0
    combine: Literal["sum", "avg", "max"] = "sum"
    over_time: Literal["max", "avg"] = "avg"
    match: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.match and self.kind == "gauge":
            raise ValueError(f"{self.key}: `match` applies to counters and quantiles only")
        if (self.kind == "quantile") != (self.quantile is not None):
            raise ValueError(f"{self.key}: `quantile` is set exactly for kind 'quantile'")
        if self.quantile is not None and not 0.0 <= self.quantile <= 1.0:
            raise ValueError(f"{self.key}: quantile must be in [0, 1], got {self.quantile}")

    @property
    def series(self) -> str:
        """The raw series whose window difference this metric needs (`_bucket` for quantiles)."""
        return f"{self.metric}_bucket" if self.kind == "quantile" else self.metric


_TTFT = "dynamo_frontend_time_to_first_token_seconds"
_ITL = "dynamo_frontend_inter_token_latency_seconds"
_THOMPSON = "dynamo_component_thompson"


def _quantiles(prefix: str, metric: str, group: Group) -> list[MetricSpec]:
    return [
        MetricSpec(f"{prefix}_p{int(q * 100)}", "quantile", metric, group, quantile=q)
        for q in (0.50, 0.95, 0.99)
    ]


METRIC_REGISTRY: tuple[MetricSpec, ...] = (
    # --- the seed's 25 keys -------------------------------------------------------------
    MetricSpec(
        "inflight_requests_frontend",
        "gauge",
        "dynamo_frontend_inflight_requests",
        "inflight_requests",
        over_time="max",
    ),
    MetricSpec(
        "inflight_requests_worker",
        "gauge",
        "dynamo_component_inflight_requests",
        "inflight_requests",
        over_time="max",
    ),
    MetricSpec(
        "queued_requests",
        "gauge",
        "dynamo_frontend_queued_requests",
        "inflight_requests",
        over_time="max",
    ),
    MetricSpec(
        "requests_per_minute",
        "counter_rate",
        "dynamo_frontend_requests_total",
        "throughput",
        scale=60.0,
    ),
    MetricSpec(
        "token_throughput",
        "counter_rate",
        "dynamo_frontend_output_tokens_total",
        "token_throughput",
    ),
    *_quantiles("ttft", _TTFT, "ttft"),
    *_quantiles("itl", _ITL, "itl"),
    MetricSpec(
        "kv_cache_usage_percent",
        "gauge",
        "dynamo_component_kvstats_gpu_cache_usage_percent",
        "kv_cache",
        combine="avg",
        over_time="max",
    ),
    MetricSpec(
        "kv_cache_hit_rate_sglang", "gauge", "sglang:cache_hit_rate", "kv_cache", combine="avg"
    ),
    MetricSpec(
        "kv_cache_hit_rate_dynamo",
        "gauge",
        "dynamo_component_kvstats_gpu_prefix_cache_hit_rate",
        "kv_cache",
        combine="avg",
    ),
    MetricSpec(
        "kve_cached_tokens_rate", "counter_rate", f"{_THOMPSON}_kve_cached_tokens_total", "kv_cache"
    ),
    MetricSpec(
        "kve_prompt_tokens_rate", "counter_rate", f"{_THOMPSON}_kve_prompt_tokens_total", "kv_cache"
    ),
    MetricSpec(
        "kve_device_blocks_rate", "counter_rate", f"{_THOMPSON}_kve_device_blocks_total", "kv_cache"
    ),
    MetricSpec(
        "kve_host_blocks_rate", "counter_rate", f"{_THOMPSON}_kve_host_blocks_total", "kv_cache"
    ),
    MetricSpec(
        "kve_disk_blocks_rate", "counter_rate", f"{_THOMPSON}_kve_disk_blocks_total", "kv_cache"
    ),
    MetricSpec(
        "sglang_running_requests", "gauge", "sglang:num_running_reqs", "context", over_time="max"
    ),
    MetricSpec("sglang_queue_depth", "gauge", "sglang:num_queue_reqs", "context", over_time="max"),
    MetricSpec("sglang_gen_throughput", "gauge", "sglang:gen_throughput", "token_throughput"),
    MetricSpec("sglang_utilization", "gauge", "sglang:utilization", "context", combine="avg"),
    MetricSpec(
        "thompson_routing_decisions_rate",
        "counter_rate",
        f"{_THOMPSON}_routing_decisions_total",
        "context",
    ),
    MetricSpec("thompson_requests_rate", "counter_rate", f"{_THOMPSON}_requests_total", "context"),
    # --- stock Dynamo 1.6 sources (docs/architecture.md#kve-sources) ---------------------
    MetricSpec(
        "frontend_cached_tokens_rate",
        "counter_rate",
        "dynamo_frontend_cached_tokens_sum",
        "kv_cache",
    ),
    MetricSpec(
        "frontend_input_tokens_rate",
        "counter_rate",
        "dynamo_frontend_input_sequence_tokens_sum",
        "kv_cache",
    ),
    MetricSpec(
        "kv_cache_hit_rate_engine",
        "gauge",
        "dynamo_component_kv_cache_hit_rate",
        "kv_cache",
        combine="avg",
    ),
    MetricSpec(
        "vllm_prefix_cache_hits_rate", "counter_rate", "vllm:prefix_cache_hits_total", "kv_cache"
    ),
    MetricSpec(
        "vllm_prefix_cache_queries_rate",
        "counter_rate",
        "vllm:prefix_cache_queries_total",
        "kv_cache",
    ),
    MetricSpec(
        "vllm_kv_cache_usage_perc",
        "gauge",
        "vllm:kv_cache_usage_perc",
        "kv_cache",
        combine="avg",
        over_time="max",
    ),
    MetricSpec(
        "vllm_running_requests",
        "gauge",
        "vllm:num_requests_running",
        "inflight_requests",
        over_time="max",
    ),
    MetricSpec(
        "vllm_waiting_requests",
        "gauge",
        "vllm:num_requests_waiting",
        "inflight_requests",
        over_time="max",
    ),
    # --- the KV router's own evidence (is its KV signal alive?) ---------------------------
    # KV cache events the router's indexer applied successfully, events/s: status="ok" only
    # (every `event_type`); a failed application is not a live KV signal. 0 in kv mode means
    # the workers' events do not reach the router.
    MetricSpec(
        "router_kv_events_rate",
        "counter_rate",
        "dynamo_component_kv_cache_events_applied",
        "kv_cache",
        match=(("status", "ok"),),
    ),
    # Predicted KV hit rate at routing time (a histogram of per-request ratios): the window's
    # mean is router_kv_hit_rate_sum_rate / router_kv_hit_rate_count_rate (decisions/s).
    MetricSpec(
        "router_kv_hit_rate_sum_rate",
        "counter_rate",
        "dynamo_component_router_kv_hit_rate_sum",
        "kv_cache",
    ),
    MetricSpec(
        "router_kv_hit_rate_count_rate",
        "counter_rate",
        "dynamo_component_router_kv_hit_rate_count",
        "kv_cache",
    ),
)

METRIC_SPECS: dict[str, MetricSpec] = {spec.key: spec for spec in METRIC_REGISTRY}
"""The registry by key."""


def seed_template(spec: MetricSpec) -> str:
    """The seed-style PromQL of `spec`, aggregated across series, with `{range}`. Pure."""
    name = spec.series
    if spec.match:
        name += "{" + ",".join(f'{k}="{v}"' for k, v in spec.match) + "}"
    if spec.kind == "quantile":
        return f"histogram_quantile({spec.quantile:.2f}, sum by (le) (rate({name}[{{range}}])))"
    if spec.kind == "counter_rate":
        scaled = f" * {spec.scale:g}" if spec.scale != 1.0 else ""
        return f"sum(rate({name}[{{range}}])){scaled}"
    return f"{spec.combine}({name})"


METRIC_QUERIES: dict[str, str] = {spec.key: seed_template(spec) for spec in METRIC_REGISTRY}
"""Seed-compatible: metric key -> PromQL with the `{range}` placeholder (no-window mode)."""
