"""The KV-efficiency source chain (docs/architecture.md#kve-sources). Pure.

KVE = cached prompt tokens / prompt tokens over the window, taken from the first source
that has data:

1. `thompson`: NeMo Agent Toolkit's processor counters (`kve_cached_tokens_rate` /
   `kve_prompt_tokens_rate`);
2. `frontend`: stock Dynamo 1.6 frontend histogram sums (`frontend_cached_tokens_rate` /
   `frontend_input_tokens_rate`), token-weighted;
3. `engine`: the backends' `dynamo_component_kv_cache_hit_rate` gauge, else vLLM's
   `prefix_cache_hits / prefix_cache_queries` counters;
4. `sglang`: `sglang:cache_hit_rate` (the seed's fallback).

Ratios of two rates over the same window equal the ratio of the window's counter deltas.
A source with zero prompt tokens in the window has no data (not KVE 0).
"""

from __future__ import annotations

from typing import Literal

KveSource = Literal["thompson", "frontend", "engine", "sglang"]
KVE_SOURCES: tuple[KveSource, ...] = ("thompson", "frontend", "engine", "sglang")


def token_ratio(cached: float | None, prompt: float | None) -> float | None:
    """`cached / prompt`, or None when either is missing or `prompt <= 0`."""
    if cached is None or prompt is None or prompt <= 0:
        return None
    return cached / prompt


def resolve_kve(
    *,
    thompson_cached: float | None,
    thompson_prompt: float | None,
    frontend_cached: float | None,
    frontend_input: float | None,
    engine_hit_rate: float | None,
    vllm_hits: float | None,
    vllm_queries: float | None,
    sglang_hit_rate: float | None,
) -> tuple[float | None, KveSource | None]:
    """(KVE, source) from the first source of the chain that has data, else (None, None)."""
    chain: tuple[tuple[KveSource, float | None], ...] = (
        ("thompson", token_ratio(thompson_cached, thompson_prompt)),
        ("frontend", token_ratio(frontend_cached, frontend_input)),
        ("engine", engine_hit_rate),
        ("engine", token_ratio(vllm_hits, vllm_queries)),
        ("sglang", sglang_hit_rate),
    )
    for source, value in chain:
        if value is not None:
            return value, source
    return None, None
