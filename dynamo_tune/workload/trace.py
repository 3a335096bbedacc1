"""Mooncake-format trace replay: records -> request plan. Pure, except `read_trace` (reads a file).

A record is `{"timestamp": ms, "input_length": tokens, "output_length": tokens,
"hash_ids": [...]}` with one hash id per `trace_block_size`-token block of the prompt. On
replay every id becomes `block_size` words drawn from a stream seeded by (seed, id), so equal
ids give equal token blocks, and the prompt is the concatenation of its blocks cut to the
scaled length `round(input_length * block_size / trace_block_size)` (kept within its last
block). Arrival offsets are `(timestamp - first timestamp) / 1000 / speedup` seconds.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dynamo_tune.errors import SpecError
from dynamo_tune.workload.block_words import BlockWords
from dynamo_tune.workload.plan import Message, PlannedRequest
from dynamo_tune.workload.spec import TraceWorkloadSpec


@dataclass(frozen=True)
class TraceRecord:
    """One request of a Mooncake trace."""

    timestamp_ms: float
    input_length: int
    output_length: int
    hash_ids: tuple[int, ...]


def parse_record(line: str, where: str) -> TraceRecord:
    """One JSONL line; `SpecError` naming `where` when malformed."""
    try:
        doc = json.loads(line)
        record = TraceRecord(
            timestamp_ms=float(doc["timestamp"]),
            input_length=int(doc["input_length"]),
            output_length=int(doc["output_length"]),
            hash_ids=tuple(int(h) for h in doc["hash_ids"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SpecError(f"{where}: not a Mooncake trace record ({exc!r}): {line[:120]}") from exc
    if record.input_length < 1 or record.output_length < 0 or not record.hash_ids:
        raise SpecError(f"{where}: needs input_length >= 1 and hash_ids: {line[:120]}")
    return record


def read_trace(path: Path, offset: int = 0, limit: int | None = None) -> list[TraceRecord]:
    """Records `offset .. offset+limit` of the JSONL file at `path` (blank lines skipped)."""
    records: list[TraceRecord] = []
    try:
        with path.open() as lines:
            seen = 0
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                seen += 1
                if seen <= offset:
                    continue
                if limit is not None and len(records) >= limit:
                    break
                records.append(parse_record(line, f"{path}:{number}"))
    except OSError as exc:
        raise SpecError(f"cannot read trace {path}: {exc}") from exc
    if not records:
        raise SpecError(f"trace {path} has no records to replay (offset={offset}, limit={limit})")
    return records


def scaled_length(record: TraceRecord, block_size: int, trace_block_size: int) -> int:
    """Prompt tokens on replay: input length scaled, kept inside the record's last block."""
    blocks = len(record.hash_ids)
    scaled = round(record.input_length * block_size / trace_block_size)
    return min(blocks * block_size, max((blocks - 1) * block_size + 1, scaled))


def output_length(record: TraceRecord, spec: TraceWorkloadSpec) -> int:
    """max_tokens on replay: scaled, capped, at least 1."""
    tokens = max(1, round(record.output_length * spec.output_tokens_scale))
    return min(tokens, spec.max_output_tokens) if spec.max_output_tokens else tokens


def trace_plan(
    records: list[TraceRecord], spec: TraceWorkloadSpec, block_size: int
) -> list[PlannedRequest]:
    """The replay plan of `records` (sorted by timestamp, stable)."""
    ordered = sorted(records, key=lambda r: r.timestamp_ms)
    words = BlockWords(spec.seed, "block")

    def block(hash_id: int) -> tuple[int, ...]:
        return words.block(hash_id, block_size)

    def session_of(record: TraceRecord) -> str:
        return "t" + "-".join(str(h) for h in record.hash_ids[: spec.session_prefix_blocks])

    sessions = Counter(session_of(r) for r in ordered)
    t0 = ordered[0].timestamp_ms
    plan = []
    for index, record in enumerate(ordered):
        length = scaled_length(record, block_size, spec.trace_block_size)
        tokens = [t for h in record.hash_ids for t in block(h)][:length]
        session = session_of(record)
        plan.append(
            PlannedRequest(
                index=index,
                session=session,
                turn=0,
                branch=0,
                messages=(Message("user", tuple(tokens)),),
                max_tokens=output_length(record, spec),
                offset_s=(record.timestamp_ms - t0) / 1000 / spec.speedup,
                session_requests=sessions[session],
            )
        )
    return plan
