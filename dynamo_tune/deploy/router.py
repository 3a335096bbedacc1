"""The router configuration of a Dynamo 1.6.1 frontend. Pure.

`RouterConfig` holds the KV-router knobs with Dynamo's own ranges; an out-of-range value is a
pydantic `ValidationError`, never a crashed frontend. The mapping to frontend flags lives in
`dynamo_tune.deploy.router_flags` (one table).

Ranges are Dynamo 1.6.1's, checked against its sources and its `KvRouterConfig` /
`RouterConfig` constructors: every float is finite; the cost weights (`overlap_score_credit`,
`prefill_load_scale`, `temperature`, `overlap_score_credit_decay`,
`decode_active_request_weight`) are >= 0; `ttl_secs` and `queue_threshold` are >= 0;
`active_decode_blocks_threshold` is in [0, 1]; `session_affinity_ttl_secs` is in
[1, 31_536_000]; `block_size` is a positive u32. `mode` lists the frontend's modes that route
plain requests (`direct` needs a worker id per request and is left out).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

RouterMode = Literal["kv", "round-robin", "random", "power-of-two", "least-loaded"]

MAX_SESSION_AFFINITY_TTL_SECS = 31_536_000
MAX_U32 = 2**32 - 1


NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class RouterConfig(BaseModel):
    """Router settings; None means "Dynamo's default" (the flag is not passed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: RouterMode = Field(default="kv", description="--router-mode")
    overlap_score_credit: NonNegative | None = Field(
        default=None, description="Credit per device-local overlap block (1.0)"
    )
    prefill_load_scale: NonNegative | None = Field(
        default=None, description="Scale of the adjusted prefill load (1.0)"
    )
    temperature: NonNegative | None = Field(
        default=None, description="Softmax temperature over worker costs (0 = argmin)"
    )
    overlap_score_credit_decay: NonNegative | None = Field(
        default=None, description="Decay of overlap credit with excess prefill load (0 = off)"
    )
    decode_active_request_weight: NonNegative | None = Field(
        default=None, description="Block-equivalent decode cost per active request (0)"
    )
    kv_events: bool | None = Field(default=None, description="Use workers' KV events (True)")
    ttl_secs: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Predicted-block TTL when KV events are off (120)",
    )
    queue_threshold: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Queue when every worker's prefill load exceeds this fraction (off)",
    )
    queue_policy: Literal["fcfs", "wspt"] | None = Field(default=None, description="(fcfs)")
    session_affinity_ttl_secs: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SESSION_AFFINITY_TTL_SECS,
        description="Sticky sessions with this idle TTL (off)",
    )
    session_affinity_mode: Literal["hard", "soft"] | None = Field(
        default=None, description="(hard)"
    )
    active_decode_blocks_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Busy when KV usage exceeds this fraction (off)",
    )
    active_prefill_tokens_threshold_frac: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Busy when prefill tokens exceed this fraction of the batch budget (off)",
    )
    block_size: int | None = Field(
        default=None, ge=1, le=MAX_U32, description="KV cache block size in tokens"
    )
