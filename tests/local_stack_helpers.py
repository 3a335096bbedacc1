"""The real local stack in tests: its study-file sections, and what its frontend reports.

- `LOCAL`, `TINY_WORKLOAD`: the `deployment` and `workload` sections of a study on the real
  local stack (2 mocker workers at speed-up 20, Prometheus, kv router; 4 short sessions).
- `events_applied` / `wait_events_applied_above`: the frontend's counter of KV cache events
  its router's index applied, read from its `/metrics` with prometheus_client's parser (not
  the code under test). KV events travel worker -> event plane -> router asynchronously, so
  a test that needs them polls this counter until it has risen instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from wait_helpers import async_wait_for

TINY_WORKLOAD: dict[str, Any] = {
    "kind": "agentic",
    "sessions": 4,
    "turns": 2,
    "concurrency": 4,
    "system_prompt_tokens": 200,
    "session_context_tokens": 200,
    "appended_tokens": 50,
    "output_tokens": 8,
    "seed": 0,
}
LOCAL: dict[str, Any] = {
    "kind": "local",
    "workers": 2,
    "mocker": {"speedup_ratio": 20, "block_size": 16, "num_gpu_blocks": 512},
    "isolation": "restart",
    "prometheus": True,
    "router": {"mode": "kv"},
}

EVENTS_APPLIED = "dynamo_component_kv_cache_events_applied"
"""The frontend's counter of KV cache events its router's index applied (labels `event_type`,
`status`, `worker_id`, ...)."""


async def events_applied(
    client: httpx.AsyncClient, metrics_url: str, labels: Mapping[str, str] | None = None
) -> float:
    """The frontend's applied-KV-events counter summed over its series whose labels include
    `labels` (e.g. `{"event_type": "stored", "status": "ok"}`); every series when None."""
    wanted = dict(labels or {})
    response = await client.get(metrics_url)
    response.raise_for_status()
    # the parser names a counter's samples `<name>_total` (Dynamo exports them without it)
    names = (EVENTS_APPLIED, f"{EVENTS_APPLIED}_total")
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name in names and wanted.items() <= sample.labels.items()
    )


async def wait_events_applied_above(
    client: httpx.AsyncClient,
    metrics_url: str,
    before: float,
    labels: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
) -> float:
    """Poll `events_applied(...)` until it is above `before`; its value then.
    AssertionError after `timeout_s`."""
    seen = [before]

    async def risen() -> bool:
        seen.append(await events_applied(client, metrics_url, labels))
        return seen[-1] > before

    await async_wait_for(
        risen, timeout_s, poll_s=0.1, what=f"{EVENTS_APPLIED}{dict(labels or {})} above {before:g}"
    )
    return seen[-1]
