"""Client-side prefix hints: the client half of a candidate configuration. Pure.

See docs/architecture.md#request-hints for what Dynamo 1.6.1 accepts. The request-shaping
code that turns a `PrefixHints` into headers and `nvext` body fields lives beside it
(`hint_fields`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PrefixHints(BaseModel):
    """How each request carries prefix / session hints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dialect: Literal["dynamo", "nat-headers", "none"] = "dynamo"
    session_id: bool = Field(default=True, description="Send a per-session id")
    osl: Literal["none", "exact", "bucketed"] = Field(
        default="none", description="Expected output length hint"
    )
    priority: int | None = Field(default=None, description="nvext.agent_hints.priority")
    latency_sensitivity: float | None = Field(
        default=None, ge=0, description="nvext.agent_hints.latency_sensitivity"
    )
