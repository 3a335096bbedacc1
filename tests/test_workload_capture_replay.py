"""Capture -> replay round trip on the real local stack: an agentic load captured with
`request_trace`, replayed with the `dynamo-trace` workload on the same stack, captured again.
The replay sends the same prompt lengths per session and order, and its blocks share exactly
as the captured ones did (the captured hashes map one-to-one onto the replayed ones)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.workload import AgenticWorkloadSpec, DynamoTraceWorkloadSpec, make_workload
from dynamo_tune.workload.dynamo_trace import DynamoTraceRecord, read_dynamo_trace
from dynamo_tune.workload.hints import PrefixHints

SESSIONS, TURNS = 4, 3


async def _records(path: Path, count: int, timeout_s: float = 20.0) -> list[DynamoTraceRecord]:
    """The capture's records once it holds `count` (the frontend writes within ~1 s)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        records = read_dynamo_trace(path).records if path.stat().st_size else []
        if len(records) >= count:
            return records
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(records)} of {count} records in {path}")
        await asyncio.sleep(0.2)


def _by_session(
    records: list[DynamoTraceRecord], strip: bool
) -> dict[str, list[DynamoTraceRecord]]:
    out: dict[str, list[DynamoTraceRecord]] = defaultdict(list)
    for r in records:
        out[r.session.split("-", 1)[1] if strip else r.session].append(r)
    return out


@pytest.mark.integration
async def test_a_replayed_capture_repeats_the_captured_prompts_and_their_sharing(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    capture = tmp_path / "traffic.jsonl"
    stack = stack_factory(request_trace=capture)
    hints = PrefixHints(dialect="dynamo", session_id=True)
    agentic = AgenticWorkloadSpec(
        sessions=SESSIONS, turns=TURNS, concurrency=4, system_prompt_tokens=64,
        session_context_tokens=40, appended_tokens=20, output_tokens=4, hints=hints,
    )  # fmt: skip
    captured_run = await make_workload(agentic, block_size=16).run(stack.endpoints(), hints)
    assert captured_run.requests_ok == SESSIONS * TURNS
    captured = await _records(capture, SESSIONS * TURNS)

    replay = DynamoTraceWorkloadSpec(kind="dynamo-trace", path=capture, hints=hints)
    workload = make_workload(replay, block_size=16)
    replayed_run = await workload.run(stack.endpoints(), hints)
    assert replayed_run.requests_ok == SESSIONS * TURNS
    both = await _records(capture, 2 * SESSIONS * TURNS)
    ids = {r.request_id for r in captured}
    replayed = [r for r in both if r.request_id not in ids]

    original, again = _by_session(captured, False), _by_session(replayed, True)
    assert original.keys() == again.keys() and len(original) == SESSIONS
    for session, records in original.items():
        assert [r.input_length for r in again[session]] == [r.input_length for r in records]
    forward: dict[int, int] = {}
    backward: dict[int, int] = {}
    for session, records in original.items():
        for a, b in zip(records, again[session], strict=True):
            for ha, hb in zip(a.hashes, b.hashes, strict=True):
                assert forward.setdefault(ha, hb) == hb and backward.setdefault(hb, ha) == ha
    # every request starts with the shared system prompt: one first block, in both runs
    assert len({r.hashes[0] for r in captured}) == 1 and len({r.hashes[0] for r in replayed}) == 1
    sent = sorted(o.prompt_tokens or 0 for o in replayed_run.records)
    assert sent == sorted(r.input_length for r in replayed)  # usage agrees with the capture
