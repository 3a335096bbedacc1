"""The collector's result types: `DynamoMetricsResult` and `DynamoCoreMetrics`. Pure.

Every metric is optional (None = no data: the component is absent, the window held no
traffic, or its query failed — failures are listed in `errors`). A genuine 0 is a value.
`reachable` is False when the metrics source could not be read at all (see `_backend.py`);
`fault` says why the source could not measure the window (always set when not `reachable`).
In window mode, `*_rate` fields are per-second averages over the window, quantiles describe
every observation made inside it, and gauges are the window's max or mean (see `_queries.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynamo_tune.metrics._kve import KveSource, resolve_kve, token_ratio
from dynamo_tune.metrics._queries import METRIC_SPECS
from dynamo_tune.metrics._score import (
    DEFAULT_SCORE,
    optimization_score,
    validate_targets,
    validate_weights,
)

_Opt = float | None


class DynamoCoreMetrics(BaseModel):
    """The three optimization targets: KV efficiency (maximize), TTFT and ITL (minimize).

    `kv_efficiency` is the token-weighted KVE from the first source of the chain in `_kve.py`
    (thompson, frontend, engine); `kv_efficiency_fallback` is SGLang's `cache_hit_rate`;
    `kv_efficiency_source` names the source `get_effective_kv_efficiency()` returns.
    Latencies are seconds.
    """

    model_config = ConfigDict(extra="forbid")

    kv_efficiency: _Opt = Field(default=None, description="cached / prompt tokens (0-1)")
    kv_efficiency_fallback: _Opt = Field(default=None, description="SGLang cache_hit_rate")
    kv_efficiency_source: KveSource | None = Field(
        default=None, description="Which source served the effective KVE"
    )
    ttft_p50_seconds: _Opt = None
    ttft_p95_seconds: _Opt = Field(default=None, description="Primary latency target")
    ttft_p99_seconds: _Opt = None
    itl_p50_seconds: _Opt = None
    itl_p95_seconds: _Opt = Field(default=None, description="Primary streaming target")
    itl_p99_seconds: _Opt = None

    def get_effective_kv_efficiency(self) -> float | None:
        """`kv_efficiency` if available, else the SGLang fallback, else None (not clamped)."""
        if self.kv_efficiency is not None:
            return self.kv_efficiency
        return self.kv_efficiency_fallback

    def effective_kv_source(self) -> str | None:
        """The source of `get_effective_kv_efficiency()` (`"kve"` / `"sglang"` if unrecorded)."""
        if self.kv_efficiency is not None:
            return self.kv_efficiency_source or "kve"
        return "sglang" if self.kv_efficiency_fallback is not None else None

    def is_complete(self) -> bool:
        """True if a KV efficiency (or fallback), TTFT p95 and ITL p95 are all available."""
        return (
            self.get_effective_kv_efficiency() is not None
            and self.ttft_p95_seconds is not None
            and self.itl_p95_seconds is not None
        )

    def get_optimization_summary(self) -> dict[str, float | str | None]:
        """The three targets plus the KVE source, for optimization loops and reports."""
        return {
            "kv_efficiency": self.get_effective_kv_efficiency(),
            "kv_efficiency_source": self.effective_kv_source(),
            "ttft_p95_seconds": self.ttft_p95_seconds,
            "itl_p95_seconds": self.itl_p95_seconds,
        }

    def to_optimization_score(
        self,
        kv_weight: float = DEFAULT_SCORE.kv_weight,
        ttft_weight: float = DEFAULT_SCORE.ttft_weight,
        itl_weight: float = DEFAULT_SCORE.itl_weight,
        ttft_target_seconds: float = DEFAULT_SCORE.ttft_target_seconds,
        itl_target_seconds: float = DEFAULT_SCORE.itl_target_seconds,
    ) -> float | None:
        """`_score.optimization_score` of these metrics, or None unless `is_complete()`.

        Defaults: `score.ScoreConfig`'s (a config passes as `**config.score_kwargs()`).
        Weights and targets are validated (ValueError naming them) even when incomplete.
        """
        validate_weights(kv_weight, ttft_weight, itl_weight)
        validate_targets(ttft_target_seconds, itl_target_seconds)
        kve = self.get_effective_kv_efficiency()
        if kve is None or self.ttft_p95_seconds is None or self.itl_p95_seconds is None:
            return None
        return optimization_score(
            kve,
            self.ttft_p95_seconds,
            self.itl_p95_seconds,
            kv_weight=kv_weight,
            ttft_weight=ttft_weight,
            itl_weight=itl_weight,
            ttft_target_seconds=ttft_target_seconds,
            itl_target_seconds=itl_target_seconds,
        )


class DynamoMetricsResult(BaseModel):
    """Every collected metric (field name = `queries.METRIC_REGISTRY` key) plus metadata.

    To add a metric: a `MetricSpec` in `_queries.py` and a field here with the same name.
    """

    model_config = ConfigDict(extra="forbid")

    # --- core: KV efficiency sources --------------------------------------------------
    kve_cached_tokens_rate: _Opt = Field(default=None, description="Thompson KVE numerator, tok/s")
    kve_prompt_tokens_rate: _Opt = Field(
        default=None, description="Thompson KVE denominator, tok/s"
    )
    kve_device_blocks_rate: _Opt = Field(default=None, description="KV blocks from GPU, blocks/s")
    kve_host_blocks_rate: _Opt = Field(default=None, description="KV blocks from host, blocks/s")
    kve_disk_blocks_rate: _Opt = Field(default=None, description="KV blocks from disk, blocks/s")
    frontend_cached_tokens_rate: _Opt = Field(
        default=None, description="Frontend cached prompt tokens, tok/s (KVE numerator)"
    )
    frontend_input_tokens_rate: _Opt = Field(
        default=None, description="Frontend input (prompt) tokens, tok/s (KVE denominator)"
    )
    kv_cache_hit_rate_engine: _Opt = Field(
        default=None, description="dynamo_component_kv_cache_hit_rate (0-1), mean over series"
    )
    vllm_prefix_cache_hits_rate: _Opt = Field(default=None, description="vLLM prefix hits, tok/s")
    vllm_prefix_cache_queries_rate: _Opt = Field(
        default=None, description="vLLM prefix-cache queries, tok/s"
    )
    kv_cache_usage_percent: _Opt = Field(default=None, description="KV cache usage (0-100 %)")
    kv_cache_hit_rate_sglang: _Opt = Field(
        default=None, description="[fallback] SGLang cache_hit_rate (0-1)"
    )
    kv_cache_hit_rate_dynamo: _Opt = Field(
        default=None, description="kvstats prefix cache hit rate (0-1; removed in 2026 Dynamo)"
    )
    vllm_kv_cache_usage_perc: _Opt = Field(default=None, description="vLLM KV usage (0-1)")
    router_kv_events_rate: _Opt = Field(
        default=None,
        description="KV cache events the KV router applied to its index, events/s (0: none "
        "reach it; the router then routes on load only)",
    )
    router_kv_hit_rate_sum_rate: _Opt = Field(
        default=None, description="Sum of the router's predicted per-request KV hit rates, /s"
    )
    router_kv_hit_rate_count_rate: _Opt = Field(
        default=None, description="KV routing decisions (predicted hit rates recorded), /s"
    )
    # --- core: latencies (seconds) --------------------------------------------------------
    ttft_p50: _Opt = Field(default=None, description="Time to first token, p50 (s)")
    ttft_p95: _Opt = Field(default=None, description="[core] Time to first token, p95 (s)")
    ttft_p99: _Opt = Field(default=None, description="Time to first token, p99 (s)")
    itl_p50: _Opt = Field(default=None, description="Inter-token latency, p50 (s)")
    itl_p95: _Opt = Field(default=None, description="[core] Inter-token latency, p95 (s)")
    itl_p99: _Opt = Field(default=None, description="Inter-token latency, p99 (s)")
    # --- supplementary ------------------------------------------------------------------
    inflight_requests_frontend: _Opt = Field(default=None, description="Frontend inflight")
    inflight_requests_worker: _Opt = Field(default=None, description="Worker inflight")
    queued_requests: _Opt = Field(default=None, description="Frontend queued requests")
    vllm_running_requests: _Opt = Field(default=None, description="vLLM/mocker running requests")
    vllm_waiting_requests: _Opt = Field(default=None, description="vLLM/mocker waiting requests")
    requests_per_minute: _Opt = Field(default=None, description="Frontend requests per minute")
    token_throughput: _Opt = Field(default=None, description="Output tokens per second")
    sglang_running_requests: _Opt = Field(default=None, description="SGLang running requests")
    sglang_queue_depth: _Opt = Field(default=None, description="SGLang queued requests")
    sglang_gen_throughput: _Opt = Field(default=None, description="SGLang generation throughput")
    sglang_utilization: _Opt = Field(default=None, description="SGLang utilization")
    thompson_routing_decisions_rate: _Opt = Field(default=None, description="Routing decisions/s")
    thompson_requests_rate: _Opt = Field(default=None, description="Thompson processor req/s")
    # --- metadata ---------------------------------------------------------------------
    collection_timestamp: _Opt = Field(default=None, description="Unix time of collection")
    prometheus_url: str | None = Field(default=None, description="Prometheus queried, if any")
    backend: Literal["prometheus", "scrape"] | None = Field(default=None)
    mode: Literal["window", "range"] | None = Field(
        default=None, description="window: exact [start, end]; range: the seed's {range} mode"
    )
    window_start: _Opt = Field(default=None, description="Window start (unix s)")
    window_end: _Opt = Field(default=None, description="Window end (unix s)")
    scrape_wait_seconds: _Opt = Field(
        default=None, description="Time spent waiting for the first scrape past the window end"
    )
    reachable: bool = Field(
        default=True,
        description=(
            "False: the metrics source could not be read (Prometheus answered no request or "
            "stopped answering; no /metrics endpoint answered both the start and the end "
            "snapshot); every metric is None and `errors` says why"
        ),
    )
    errors: list[str] = Field(default_factory=list, description="Per-query errors")
    fault: str | None = Field(
        default=None,
        description=(
            "Why the source could not measure the window, when it could not: unreachable, no "
            "active target, a target down or not scraped inside it, a failed window query. "
            "Not the deployment's behaviour: a study FAILs such a trial and measures it again. "
            "None: every target was up and scraped, so a metric without a value had no data"
        ),
    )

    @model_validator(mode="after")
    def _unreachable_has_no_values(self) -> Self:
        if not self.reachable:
            values = {k: v for k, v in self.metric_values().items() if v is not None}
            if values or not self.errors:
                raise ValueError(
                    "`reachable=False` needs every metric None and a reason in `errors`, "
                    f"but got values {values} and errors {self.errors}"
                )
            if self.fault is None:  # an unreachable source is always a measurement fault
                self.fault = "the metrics source could not be read: " + "; ".join(self.errors[:3])
        return self

    @classmethod
    def from_values(cls, values: Mapping[str, float | None], **meta: Any) -> DynamoMetricsResult:
        """A validated result from {metric key: value} plus metadata fields."""
        return cls.model_validate({**values, **meta})

    @classmethod
    def unreachable(cls, reason: str, **meta: Any) -> DynamoMetricsResult:
        """The result of a source that could not be read: no values, `reason` in `errors`."""
        return cls.model_validate({**meta, "reachable": False, "errors": [reason]})

    def metric_values(self) -> dict[str, float | None]:
        """{metric key: value} of every metric of the registry (`queries.METRIC_SPECS`)."""
        return {key: getattr(self, key) for key in METRIC_SPECS}

    def compute_kv_efficiency(self) -> float | None:
        """The seed's KVE: Thompson cached / prompt tokens, or None without both (or prompt 0)."""
        return token_ratio(self.kve_cached_tokens_rate, self.kve_prompt_tokens_rate)

    def _resolved_kve(self) -> tuple[float | None, KveSource | None]:
        return resolve_kve(
            thompson_cached=self.kve_cached_tokens_rate,
            thompson_prompt=self.kve_prompt_tokens_rate,
            frontend_cached=self.frontend_cached_tokens_rate,
            frontend_input=self.frontend_input_tokens_rate,
            engine_hit_rate=self.kv_cache_hit_rate_engine,
            vllm_hits=self.vllm_prefix_cache_hits_rate,
            vllm_queries=self.vllm_prefix_cache_queries_rate,
            sglang_hit_rate=self.kv_cache_hit_rate_sglang,
        )

    @property
    def kv_efficiency_source(self) -> KveSource | None:
        """Which source of the chain serves KVE: thompson, frontend, engine, sglang (or None)."""
        return self._resolved_kve()[1]

    def get_core_metrics(self) -> DynamoCoreMetrics:
        """The three core metrics, KVE from the source chain (source recorded)."""
        value, source = self._resolved_kve()
        return DynamoCoreMetrics(
            kv_efficiency=value if source != "sglang" else None,
            kv_efficiency_fallback=self.kv_cache_hit_rate_sglang,
            kv_efficiency_source=source,
            ttft_p50_seconds=self.ttft_p50,
            ttft_p95_seconds=self.ttft_p95,
            ttft_p99_seconds=self.ttft_p99,
            itl_p50_seconds=self.itl_p50,
            itl_p95_seconds=self.itl_p95,
            itl_p99_seconds=self.itl_p99,
        )

    def has_core_metrics(self) -> bool:
        """True if `get_core_metrics().is_complete()`."""
        return self.get_core_metrics().is_complete()
