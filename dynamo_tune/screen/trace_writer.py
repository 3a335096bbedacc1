"""A workload's request plan as a `dynamo.agentic_mooncake` v2 replay trace. Pure.

Dynamo's virtual-time replay (`dynamo.replay.run_trace_replay(...,
trace_format="agentic_mooncake")`, docs/screening.md) reads one JSON
header line, then one line per request. What this module writes, and why:

- `hash_ids`: one id per `block_size`-token block of the prompt, chained: block i's id is
  determined by the tokens of blocks 0..i (the key is the previous block's id and this block's
  tokens). Equal prefixes give equal ids; an equal block after a different prefix gets a new
  id, as the KV cache (prefix-keyed) sees it. A final partial block gets its own id. Ids are
  numbered 1, 2, ... in order of first appearance in the plan.
- `dependencies`: a dependent turn (`PlannedRequest.after`) waits for the `completion` of each
  parent, then `delay_s` (written as `delay_ms`), relation `sequence`.
- The in-flight limit (the runner's semaphore, `workload/runner.py`) as `join` dependencies:
  request i also waits for the completion of request i - limit, in plan order. The replay's
  own `replay_concurrency` caps sessions, not requests, so it is not used.
- A root with an arrival offset starts no earlier than `offset_s` (`not_before_ms`); a root
  without one at 0. Every request is in one play (`play_id`), so lanes play no part.
- `request_ids[i]` is the trace request id of plan request i (`r<i>`): the replay's
  per-request records carry it back.

The session id is written (`session_id`) but the replay does not simulate session affinity
(`deploy/router_flags.py`, `replay_simulates`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dynamo_tune.workload.plan import PlannedRequest, validate_plan

TRACE_SCHEMA = "dynamo.agentic_mooncake"
TRACE_VERSION = 2
PLAY_ID = "all"
MODEL_NAME = "dynamo-tune"


@dataclass(frozen=True)
class ReplayTrace:
    """A plan written as trace rows: `header`, one row per request, ids to match back."""

    header: dict[str, Any]
    rows: tuple[dict[str, Any], ...]
    request_ids: tuple[str, ...]  # request_ids[i]: trace id of plan request i
    distinct_blocks: int

    def jsonl(self) -> str:
        """The trace file's text: the header line, then one JSON line per request."""
        lines = [json.dumps(self.header)] + [json.dumps(row) for row in self.rows]
        return "\n".join(lines) + "\n"

    def index_of(self) -> dict[str, int]:
        """Trace request id -> plan index."""
        return {request_id: i for i, request_id in enumerate(self.request_ids)}


def trace_request_id(index: int) -> str:
    """The trace id of plan request `index`."""
    return f"r{index}"


class BlockIds:
    """Chained prefix-block ids: one id per distinct (previous block id, block tokens)."""

    def __init__(self, block_size: int) -> None:
        if block_size < 1:
            raise ValueError(f"`block_size >= 1` must hold, but got {block_size=}.")
        self.block_size = block_size
        self._ids: dict[tuple[int, tuple[int, ...]], int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def hash_ids(self, tokens: Sequence[int]) -> list[int]:
        """The id of every block of `tokens` (the last one may be partial)."""
        out: list[int] = []
        parent = 0
        for start in range(0, len(tokens), self.block_size):
            key = (parent, tuple(tokens[start : start + self.block_size]))
            parent = self._ids.setdefault(key, len(self._ids) + 1)
            out.append(parent)
        return out


def _dependency(parent: int, delay_s: float, relation: str) -> dict[str, Any]:
    return {
        "request_id": trace_request_id(parent),
        "trigger": "completion",
        "delay_ms": delay_s * 1000.0,
        "relation": relation,
    }


def plan_trace(
    plan: Sequence[PlannedRequest], *, block_size: int, in_flight_limit: int | None
) -> ReplayTrace:
    """`plan` as an agentic_mooncake v2 trace at `block_size` tokens per block.

    `in_flight_limit` (requests; None = unbounded) becomes `join` dependencies.
    """
    validate_plan(list(plan))
    if in_flight_limit is not None and in_flight_limit < 1:
        raise ValueError(f"`in_flight_limit >= 1` must hold, but got {in_flight_limit=}.")
    blocks = BlockIds(block_size)
    rows: list[dict[str, Any]] = []
    for request in plan:
        deps = [_dependency(p, request.delay_s, "sequence") for p in request.after]
        slot_parent = request.index - in_flight_limit if in_flight_limit is not None else -1
        if slot_parent >= 0 and slot_parent not in request.after:
            deps.append(_dependency(slot_parent, 0.0, "join"))
        not_before_s = request.offset_s if not request.after and request.offset_s else 0.0
        rows.append(
            {
                "request_id": trace_request_id(request.index),
                "play_id": PLAY_ID,
                "session_id": request.session,
                "model": MODEL_NAME,
                "input_length": request.prompt_length,
                "output_length": request.max_tokens,
                "hash_ids": blocks.hash_ids(request.prompt_tokens),
                "not_before_ms": not_before_s * 1000.0,
                "dependencies": deps,
            }
        )
    header = {
        "schema": TRACE_SCHEMA,
        "version": TRACE_VERSION,
        "block_size": block_size,
        "hash_id_scope": "local",
        "source": {"format": "dynamo-tune-plan", "digest": "plan"},
    }
    return ReplayTrace(
        header=header,
        rows=tuple(rows),
        request_ids=tuple(trace_request_id(r.index) for r in plan),
        distinct_blocks=len(blocks),
    )
