"""Turns `PrefixHints` into a request's headers and `nvext` body field. Pure.

Dialects (docs/architecture.md#request-hints):
- `dynamo`: header `X-Dynamo-Session-ID` (when `session_id`), body
  `nvext.agent_hints` with `osl` (`exact`: the request's max_tokens; `bucketed`: 128, 512 or
  2048, the bucket nearest on a log scale), `priority`, `latency_sensitivity`. Only keys
  Dynamo 1.6.1 accepts are sent (it answers HTTP 400 to unknown `nvext` keys).
- `nat-headers`: NeMo Agent Toolkit's headers `x-prefix-id` and `x-prefix-total-requests`
  (when `session_id`), `x-prefix-osl` (when `osl` is not `none`) and `x-prefix-iat` (when the
  request knows its session's inter-arrival time) with values LOW / MEDIUM / HIGH
  (osl 128 / 512 / 2048 tokens, iat 50 / 250 / 750 ms; nearest on a log scale).
  `priority` and `latency_sensitivity` have no header in this dialect and are not sent.
- `none`: nothing.
"""

from __future__ import annotations

import math
from typing import Any

from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.plan import PlannedRequest

OSL_BUCKETS = (128, 512, 2048)
IAT_BUCKETS_MS = (50.0, 250.0, 750.0)
LEVELS = ("LOW", "MEDIUM", "HIGH")


def nearest_bucket(value: float, buckets: tuple[float, ...]) -> int:
    """Index of the bucket nearest to `value` on a log scale (values <= 0 map to 0)."""
    if value <= 0:
        return 0
    logs = [abs(math.log(value) - math.log(b)) for b in buckets]
    return logs.index(min(logs))


def hint_fields(
    hints: PrefixHints, request: PlannedRequest, run_id: str
) -> tuple[dict[str, str], dict[str, Any] | None]:
    """(headers, nvext or None) for `request`; session ids are `<run_id>-<session>`."""
    session = f"{run_id}-{request.session}"
    headers: dict[str, str] = {}
    if hints.dialect == "dynamo":
        if hints.session_id:
            headers["X-Dynamo-Session-ID"] = session
        agent_hints: dict[str, Any] = {}
        if hints.osl == "exact":
            agent_hints["osl"] = request.max_tokens
        elif hints.osl == "bucketed":
            agent_hints["osl"] = OSL_BUCKETS[nearest_bucket(request.max_tokens, OSL_BUCKETS)]
        if hints.priority is not None:
            agent_hints["priority"] = hints.priority
        if hints.latency_sensitivity is not None:
            agent_hints["latency_sensitivity"] = hints.latency_sensitivity
        return headers, ({"agent_hints": agent_hints} if agent_hints else None)
    if hints.dialect == "nat-headers":
        if hints.session_id:
            headers["x-prefix-id"] = session
            headers["x-prefix-total-requests"] = str(request.session_requests)
        if hints.osl != "none":
            headers["x-prefix-osl"] = LEVELS[nearest_bucket(request.max_tokens, OSL_BUCKETS)]
        if request.hint_iat_s is not None:
            iat_ms = request.hint_iat_s * 1000
            headers["x-prefix-iat"] = LEVELS[nearest_bucket(iat_ms, IAT_BUCKETS_MS)]
    return headers, None
