"""Dynamo request-trace replay: records -> request plan. Pure.

Prompts: every distinct block hash becomes `block_size` words (the record's
`trace_block_size`) drawn from a stream seeded by (seed, hash), so equal hashes give equal
token blocks and distinct hashes distinct ones; a prompt is its blocks concatenated and cut to
exactly `input_length` tokens (the last block may be partial). It is sent as a raw-prompt
completion, so the engine sees exactly those tokens (a chat template would add its own).

Arrivals, with `first` the earliest `received_ms` and every time divided by `speedup`:

    first request of a session: root at offset_s = (received_ms - first) / 1000 / speedup
    next request of a session:  after = (previous of its session,),
        delay_s = max(0, received_ms - (prev.received_ms + prev.total_time_ms)) / 1000 / speedup
        (prev.total_time_ms unknown: received_ms - prev.received_ms instead)

so a session's request never starts before its previous one completed, and waits the think
time the trace recorded. `max_tokens` is the recorded `output_tokens` (at least 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from dynamo_tune.workload.block_words import BlockWords
from dynamo_tune.workload.dynamo_trace import DynamoTraceRecord
from dynamo_tune.workload.plan import Message, PlannedRequest


def prompt_of(record: DynamoTraceRecord, words: BlockWords) -> tuple[int, ...]:
    """The record's prompt: its blocks concatenated, cut to `input_length` tokens."""
    size = record.block_size
    tokens = [t for h in record.hashes for t in words.block(h, size)]
    return tuple(tokens[: record.input_length])


def think_time_ms(previous: DynamoTraceRecord, record: DynamoTraceRecord) -> float:
    """Recorded gap (ms) from `previous`'s completion to `record`'s arrival, at least 0; the
    arrival gap when `previous`'s total time is unknown."""
    end = previous.finished_ms
    return max(0.0, record.received_ms - (previous.received_ms if end is None else end))


def dynamo_trace_plan(
    records: Sequence[DynamoTraceRecord], *, seed: int, speedup: float
) -> list[PlannedRequest]:
    """The replay plan of `records` in arrival order (`received_ms`, then request id)."""
    if speedup <= 0:
        raise ValueError(f"`speedup > 0` must hold, but got {speedup=}.")
    ordered = sorted(records, key=lambda r: (r.received_ms, r.request_id))
    if not ordered:
        return []
    words = BlockWords(seed, "dynamo-block")
    per_session = Counter(r.session for r in ordered)
    first = ordered[0].received_ms
    last: dict[str, tuple[int, DynamoTraceRecord]] = {}
    turns: Counter[str] = Counter()
    plan: list[PlannedRequest] = []
    for index, record in enumerate(ordered):
        session = record.session
        previous = last.get(session)
        plan.append(
            PlannedRequest(
                index=index,
                session=session,
                turn=turns[session],
                branch=0,
                messages=(Message("user", prompt_of(record, words)),),
                max_tokens=max(1, record.output_tokens),
                offset_s=None if previous else (record.received_ms - first) / 1000 / speedup,
                after=(previous[0],) if previous else (),
                delay_s=think_time_ms(previous[1], record) / 1000 / speedup if previous else 0.0,
                session_requests=per_session[session],
                raw_prompt=True,
            )
        )
        last[session] = (index, record)
        turns[session] += 1
    return plan
