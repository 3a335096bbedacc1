"""What one workload run measured: its exact window and per-request truth. Pure (types only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RequestOutcome(BaseModel):
    """One measured request, compactly: the per-request truth behind the percentiles."""

    model_config = ConfigDict(extra="forbid")

    index: int
    session: str
    turn: int
    sent: float = Field(description="Unix seconds")
    ttft_s: float | None = None
    e2e_s: float | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    status: int | None = None
    cause: str | None = Field(default=None, description="Failure cause; None when ok")
    error: str | None = None


class WorkloadReport(BaseModel):
    """Summary of one workload run. Times are unix seconds; latencies are seconds.

    The measured window is first measured request sent -> last measured response finished
    (warmup excluded). Client latencies are exact per-request measurements: TTFT per request;
    ITL over every inter-token gap (the seed's definition); e2e per request.
    """

    model_config = ConfigDict(extra="forbid")

    window_start: float
    window_end: float
    requests_sent: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    failures: dict[str, int] = Field(
        default_factory=dict,
        description="Failed requests by cause: http_4xx, http_5xx, busy_529, timeout, disconnect",
    )
    first_errors: list[str] = Field(default_factory=list, description="First few error texts")
    failed: bool = Field(default=False, description="Failure ratio above the threshold")
    client_ttft_p50_seconds: float | None = None
    client_ttft_p95_seconds: float | None = None
    client_ttft_p99_seconds: float | None = None
    client_itl_p50_seconds: float | None = None
    client_itl_p95_seconds: float | None = None
    client_itl_p99_seconds: float | None = None
    client_e2e_p50_seconds: float | None = None
    client_e2e_p95_seconds: float | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    client_kve: float | None = Field(default=None, description="sum(cached) / sum(prompt)")
    kve_ceiling: float | None = Field(
        default=None, description="Best KVE any router could reach with unlimited cache"
    )
    output_tokens: int = 0
    output_tokens_per_s: float | None = None
    client_request_itl_p50_seconds: float | None = Field(
        default=None, description="Per-request mean gap, p50 across requests (AIPerf's ITL)"
    )
    client_request_itl_p95_seconds: float | None = Field(
        default=None, description="Per-request mean gap, p95 across requests (AIPerf's ITL)"
    )
    scheduling_lag_p50_seconds: float | None = Field(
        default=None, description="Send time minus due time (client overhead), p50"
    )
    scheduling_lag_p99_seconds: float | None = None
    warmup_requests: int = Field(default=0, description="Warmup requests sent before the window")
    records: list[RequestOutcome] = Field(
        default_factory=list, description="Every measured request, in send order"
    )
