"""Per-request results of a virtual-time replay and the core metrics over a set of them. Pure.

`run_trace_replay(capture_per_request=True)` returns one record per request (times in
milliseconds of simulated time): `request_id` (the trace id, `trace_writer.trace_request_id`),
`ttft_ms`, `itl_ms` (that request's mean inter-token gap), `input_length`, `output_length`,
`reused_input_tokens` (prompt tokens found in the worker's prefix cache), `terminal_status`.
`parse_requests` turns them into `ReplayedRequest`s (seconds) in plan order.

Over a chosen set of requests (default: all completed ones), `core_metrics` gives
`DynamoCoreMetrics`, so the study's own score (`to_optimization_score`) applies:

- KVE = Σ reused input tokens / Σ input tokens (0..1);
- TTFT p50/p95/p99 (s): percentiles of the per-request TTFTs (`workload.summary.percentile`,
  linear interpolation);
- ITL p50/p95/p99 (s): percentiles of the inter-token gaps, each request's mean gap counted
  once per gap it has (output tokens - 1): the replay reports no single gaps, so a request's
  gaps are taken as equal. The replay's own summary (`p95_itl_ms`) pools the real gaps and
  may differ a little.

`kv_efficiency_source` stays None: the replay is none of the live KVE sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynamo_tune.metrics import DynamoCoreMetrics
from dynamo_tune.workload.summary import percentile

MS = 1e-3  # seconds per millisecond


@dataclass(frozen=True)
class ReplayedRequest:
    """One replayed request, matched back to its plan index. Times in seconds."""

    index: int
    completed: bool
    input_tokens: int
    reused_tokens: int
    output_tokens: int
    ttft_s: float | None
    itl_s: float | None  # mean inter-token gap; None with fewer than two output tokens


def _seconds(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    return None if value is None else float(value) * MS


def parse_requests(
    records: Iterable[Mapping[str, Any]], index_of: Mapping[str, int]
) -> tuple[ReplayedRequest, ...]:
    """The replay's per-request records as `ReplayedRequest`s in plan order.

    `index_of` maps trace request id -> plan index (`ReplayTrace.index_of()`); a record of an
    unknown id is a ValueError naming it.
    """
    out: list[ReplayedRequest] = []
    for record in records:
        request_id = str(record.get("request_id"))
        if request_id not in index_of:
            raise ValueError(f"replay returned an unknown request id {request_id!r}.")
        output = int(record.get("output_length") or 0)
        out.append(
            ReplayedRequest(
                index=index_of[request_id],
                completed=record.get("terminal_status") == "completed",
                input_tokens=int(record.get("input_length") or 0),
                reused_tokens=int(record.get("reused_input_tokens") or 0),
                output_tokens=output,
                ttft_s=_seconds(record, "ttft_ms"),
                itl_s=_seconds(record, "itl_ms") if output > 1 else None,
            )
        )
    return tuple(sorted(out, key=lambda r: r.index))


def select(
    requests: Sequence[ReplayedRequest], indexes: Iterable[int] | None = None
) -> list[ReplayedRequest]:
    """The completed requests whose plan index is in `indexes` (None: every one)."""
    chosen = None if indexes is None else set(indexes)
    return [r for r in requests if r.completed and (chosen is None or r.index in chosen)]


def kv_efficiency(requests: Sequence[ReplayedRequest]) -> float | None:
    """Σ reused input tokens / Σ input tokens; None without input tokens."""
    total = sum(r.input_tokens for r in requests)
    return sum(r.reused_tokens for r in requests) / total if total else None


def itl_gaps(requests: Sequence[ReplayedRequest]) -> list[float]:
    """Every inter-token gap (s), each request's gaps set to its mean gap."""
    return [r.itl_s for r in requests if r.itl_s is not None for _ in range(r.output_tokens - 1)]


def core_metrics(
    requests: Sequence[ReplayedRequest], indexes: Iterable[int] | None = None
) -> DynamoCoreMetrics:
    """KVE, TTFT and ITL percentiles (s) over the chosen completed requests."""
    chosen = select(requests, indexes)
    ttfts = [r.ttft_s for r in chosen if r.ttft_s is not None]
    gaps = itl_gaps(chosen)
    return DynamoCoreMetrics(
        kv_efficiency=kv_efficiency(chosen),
        ttft_p50_seconds=percentile(ttfts, 50),
        ttft_p95_seconds=percentile(ttfts, 95),
        ttft_p99_seconds=percentile(ttfts, 99),
        itl_p50_seconds=percentile(gaps, 50),
        itl_p95_seconds=percentile(gaps, 95),
        itl_p99_seconds=percentile(gaps, 99),
    )
