"""What a captured Dynamo request trace holds: load, lengths, sessions, prefix reuse. Pure.

`summarize_trace(read)` turns the records `read_dynamo_trace` found into a `TraceSummary`:

- span = last request finished (received + total time; its arrival when not recorded) -
  first request received, in seconds; request rate = requests / span;
- input and output tokens per request, p50 and p95; requests per session, p50 and max (a
  request without a session id is a session of its own); percentiles interpolate linearly
  between order statistics (`workload.summary.percentile`);
- KVE ceiling: the prefix reuse an ideal router with unlimited cache could get. The
  definition of `workload/ceiling.py` for generated prompts, on the trace's hashes: records in
  arrival order; a record's leading full blocks count as reusable while each block's
  sequence hash was seen in an earlier record of the same model (and block size); the scan
  stops at the first block not seen. Dynamo's sequence hashes are chained (one names the whole
  prefix up to its block), so a seen hash is a seen prefix, as ceiling.py's chained keys. The
  last block of a record whose input is not a multiple of the block size is partial: it is
  hashed, but never reusable (KV caches hold whole blocks; Dynamo reports a repeated 36-token
  prompt at block size 16 with 32 cached tokens), and its actual tokens count in the total:

      kve_ceiling  = sum(reusable full blocks * block_size) / sum(input_length)

- KVE achieved: what the deployment reached while recording, from its own counts:

      kve_achieved = sum(cached_tokens) / sum(input_tokens)   (records that report cached_tokens)

  Dynamo 1.6.1 records as `cached_tokens` the router's overlap (whole matching blocks, with
  `kv_hit_rate`), not the engine's count: a prompt whose every block, the last one full,
  was cached is recorded whole (64 of 64), while the engine recomputes its last block and its
  `usage` and `dynamo_frontend_cached_tokens` say 48. So kve_achieved can sit a little above
  the frontend's KVE, and a capture that starts mid-traffic can show it above the ceiling
  (the caches held blocks from before the capture).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from dynamo_tune.workload.dynamo_trace import UNKNOWN_MODEL, DynamoTraceRecord, TraceRead
from dynamo_tune.workload.summary import percentile


class TraceSummary(BaseModel):
    """The figures of one captured trace (see the module docstring for each formula)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[str] = Field(description="The trace files read")
    models: list[str] = Field(description="Models of the summarized requests, sorted")
    block_sizes: list[int] = Field(description="`trace_block_size` values seen, sorted")
    requests: int
    sessions: int
    requests_without_session: int = Field(description="Requests sent without a session id")
    start_unix_s: float = Field(description="First request received")
    end_unix_s: float = Field(description="Last request finished")
    span_s: float
    request_rate_per_s: float | None = Field(description="requests / span; None for span 0")
    input_tokens_p50: float
    input_tokens_p95: float
    output_tokens_p50: float
    output_tokens_p95: float
    requests_per_session_p50: float
    requests_per_session_max: int
    input_tokens: int = Field(description="sum of input_tokens")
    hashed_tokens: int = Field(description="sum of replay.input_length: the ceiling's total")
    reusable_tokens: int = Field(description="Tokens in full blocks seen in an earlier request")
    kve_ceiling: float | None = Field(description="reusable_tokens / hashed_tokens")
    cached_tokens: int = Field(description="sum of cached_tokens, as the deployment recorded")
    cached_of_tokens: int = Field(
        description="sum of input_tokens of the requests that report cached_tokens"
    )
    kve_achieved: float | None = Field(description="cached_tokens / cached_of_tokens")
    requests_without_cached: int = Field(description="Requests without a cached_tokens count")
    skipped_events: dict[str, int] = Field(description="Events other than request_end, by type")
    skipped_models: dict[str, int] = Field(description="Requests of models not asked for")


def reusable_block_tokens(records: Iterable[DynamoTraceRecord]) -> list[int]:
    """For each record (in the order given: arrival), the tokens of its leading full blocks
    whose sequence hashes an earlier record of the same model and block size already had."""
    seen: set[tuple[str, int, int]] = set()
    result: list[int] = []
    for record in records:
        full_blocks = record.input_length // record.block_size
        reused = 0
        matching = True
        for sequence_hash in record.hashes[:full_blocks]:
            key = (record.model or UNKNOWN_MODEL, record.block_size, sequence_hash)
            if matching and key in seen:
                reused += record.block_size
            else:
                matching = False
                seen.add(key)
        result.append(reused)
    return result


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _quantile(values: Sequence[float], q: float) -> float:
    value = percentile(values, q)
    assert value is not None  # summarize_trace has at least one record
    return value


def summarize_trace(read: TraceRead) -> TraceSummary:
    """The `TraceSummary` of `read` (its records sorted by arrival, as `read_dynamo_trace`
    returns them); ValueError when it holds no record."""
    records = read.records
    if not records:
        raise ValueError("`read.records` must not be empty, but got no record.")
    start_ms = min(r.received_ms for r in records)
    end_ms = max(r.received_ms if r.finished_ms is None else r.finished_ms for r in records)
    span_s = (end_ms - start_ms) / 1000.0
    per_session = Counter(r.session for r in records)
    counted = [r for r in records if r.cached_tokens is not None]
    cached = sum(r.cached_tokens or 0 for r in counted)
    cached_of = sum(r.input_tokens for r in counted)
    hashed = sum(r.input_length for r in records)
    reusable = sum(reusable_block_tokens(records))
    return TraceSummary(
        files=[str(f) for f in read.files],
        models=sorted({r.model or UNKNOWN_MODEL for r in records}),
        block_sizes=sorted({r.block_size for r in records}),
        requests=len(records),
        sessions=len(per_session),
        requests_without_session=sum(r.session_id is None for r in records),
        start_unix_s=start_ms / 1000.0,
        end_unix_s=end_ms / 1000.0,
        span_s=span_s,
        request_rate_per_s=len(records) / span_s if span_s > 0 else None,
        input_tokens_p50=_quantile([r.input_tokens for r in records], 50),
        input_tokens_p95=_quantile([r.input_tokens for r in records], 95),
        output_tokens_p50=_quantile([r.output_tokens for r in records], 50),
        output_tokens_p95=_quantile([r.output_tokens for r in records], 95),
        requests_per_session_p50=_quantile(list(per_session.values()), 50),
        requests_per_session_max=max(per_session.values()),
        input_tokens=sum(r.input_tokens for r in records),
        hashed_tokens=hashed,
        reusable_tokens=reusable,
        kve_ceiling=_ratio(reusable, hashed),
        cached_tokens=cached,
        cached_of_tokens=cached_of,
        kve_achieved=_ratio(cached, cached_of),
        requests_without_cached=len(records) - len(counted),
        skipped_events=dict(sorted(read.skipped_events.items())),
        skipped_models=dict(sorted(read.skipped_models.items())),
    )
