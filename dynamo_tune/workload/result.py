"""What one workload run measured: its exact window and per-request truth. Pure (types only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dynamo_tune.workload.window import WindowMode


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

    The measured window `[window_start, window_end]` is what the trial collects the server's
    metrics over: the whole run (`full`: first measured request sent -> last measured response
    finished, warmup excluded) or its steady part (`steady`, `workload/window.py`). The
    client numbers count the requests the frontend counts in that window (which moment of a
    request each metric is recorded at: `workload/summary.py`). Client latencies are exact
    per-request measurements: TTFT per request; ITL over every inter-token gap (the seed's
    definition); e2e per request. `traffic_start` / `traffic_end` bound every measured
    request (the full window); the next window keeps its quiet gap after `traffic_end`.
    """

    model_config = ConfigDict(extra="forbid")

    window_start: float
    window_end: float
    window_mode: WindowMode = Field(
        default="full", description="Which window was measured (after any fallback)"
    )
    window_note: str | None = Field(
        default=None, description="Why the window differs from what was asked, if it does"
    )
    window_requests: int | None = Field(
        default=None, description="Successful requests whose first token lies in the window"
    )
    traffic_start: float | None = Field(
        default=None, description="First measured request sent (None: window_start)"
    )
    traffic_end: float | None = Field(
        default=None, description="Last measured request finished (None: window_end)"
    )
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
    client_kve: float | None = Field(
        default=None, description="sum(cached) / sum(prompt) over the window (summary.py)"
    )
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

    @property
    def last_traffic(self) -> float:
        """When the run's last measured request finished: the next window's quiet gap counts
        from here (a steady window closes before the drain)."""
        return (
            self.window_end if self.traffic_end is None else max(self.traffic_end, self.window_end)
        )
