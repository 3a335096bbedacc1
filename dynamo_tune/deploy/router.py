"""The router configuration of a Dynamo 1.6.1 frontend. Pure.

`RouterConfig` holds the KV-router knobs with Dynamo's own ranges; an out-of-range value is a
pydantic `ValidationError`, never a crashed frontend. The mapping to frontend flags lives in
`dynamo_tune.deploy.router_flags` (one table).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RouterMode = Literal["kv", "round-robin", "random", "power-of-two", "least-loaded"]


class RouterConfig(BaseModel):
    """Router settings; None means "Dynamo's default" (the flag is not passed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: RouterMode = "kv"
    overlap_score_credit: float | None = Field(default=None, ge=0)
    prefill_load_scale: float | None = Field(default=None, ge=0)
    temperature: float | None = Field(default=None, ge=0)
    overlap_score_credit_decay: float | None = Field(default=None, ge=0)
    decode_active_request_weight: float | None = Field(default=None, ge=0)
    kv_events: bool | None = None
    ttl_secs: float | None = Field(default=None, gt=0)
    queue_threshold: float | None = Field(default=None, ge=0)
    queue_policy: Literal["fcfs", "wspt"] | None = None
    session_affinity_ttl_secs: int | None = Field(default=None, ge=1)
    session_affinity_mode: Literal["hard", "soft"] | None = None
    active_decode_blocks_threshold: float | None = Field(default=None, ge=0, le=1)
    active_prefill_tokens_threshold_frac: float | None = Field(default=None, ge=0)
    block_size: int | None = Field(default=None, ge=1)
