"""Mooncake trace replay: equal hash ids give equal blocks, scaled lengths, offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynamo_tune.errors import SpecError
from dynamo_tune.workload.ceiling import kve_ceiling
from dynamo_tune.workload.spec import TraceWorkloadSpec
from dynamo_tune.workload.trace import read_trace, trace_plan

REAL_TRACE = Path("/work/shared/traces/mooncake-conversation-trace.jsonl")


def write(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def spec(path: Path, **overrides: object) -> TraceWorkloadSpec:
    return TraceWorkloadSpec.model_validate({"kind": "trace", "path": str(path), **overrides})


ROWS: list[dict[str, object]] = [
    {"timestamp": 1000, "input_length": 1100, "output_length": 40, "hash_ids": [7, 8, 9]},
    {"timestamp": 3000, "input_length": 600, "output_length": 10, "hash_ids": [7, 5]},
    {"timestamp": 0, "input_length": 512, "output_length": 0, "hash_ids": [7]},
]


def test_equal_hash_ids_give_equal_token_blocks(tmp_path: Path) -> None:
    s = spec(write(tmp_path, ROWS), speedup=2.0)
    plan = trace_plan(read_trace(s.path), s, block_size=16)
    # sorted by timestamp: [7] at 0 ms, [7,8,9] at 1000 ms, [7,5] at 3000 ms
    assert [r.offset_s for r in plan] == [0.0, 0.5, 1.5]
    first, second, third = (r.prompt_tokens for r in plan)
    assert first == second[:16] == third[:16]
    assert second[16:32] != third[16:32]
    # 1100 * 16 / 512 = 34.4 -> 34 tokens (inside block 3); 600 -> 18.75 -> 19; 512 -> 16
    assert [len(p) for p in (first, second, third)] == [16, 34, 19]
    assert [r.max_tokens for r in plan] == [1, 40, 10]
    assert kve_ceiling([first, second, third], 16) == pytest.approx(32 / (16 + 34 + 19))


def test_same_seed_same_words_other_seed_other_words(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS)
    a = trace_plan(read_trace(path), spec(path), 16)
    b = trace_plan(read_trace(path), spec(path), 16)
    c = trace_plan(read_trace(path), spec(path, seed=1), 16)
    assert [r.prompt_tokens for r in a] == [r.prompt_tokens for r in b]
    assert [r.prompt_tokens for r in a] != [r.prompt_tokens for r in c]


def test_offset_limit_and_output_scaling(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS)
    records = read_trace(path, offset=1, limit=1)
    assert [r.hash_ids for r in records] == [(7, 5)]
    s = spec(path, output_tokens_scale=0.5, max_output_tokens=15)
    assert [r.max_tokens for r in trace_plan(read_trace(path), s, 16)] == [1, 15, 5]


def test_sessions_are_named_by_leading_blocks(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS)
    plan = trace_plan(read_trace(path), spec(path, session_prefix_blocks=1), 16)
    assert {r.session for r in plan} == {"t7"}
    assert {r.session_requests for r in plan} == {3}


def test_bad_records_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"trace.jsonl:2"):
        read_trace(write(tmp_path, [ROWS[0], {"timestamp": 1}]))
    with pytest.raises(SpecError, match="no records"):
        read_trace(write(tmp_path, ROWS), offset=10)


def test_real_trace_keeps_its_prefix_structure() -> None:
    s = spec(REAL_TRACE, limit=2000)
    records = read_trace(REAL_TRACE, limit=2000)
    plan = trace_plan(records, s, 16)
    assert len(plan) == 2000
    # block-level reuse of the original hash ids equals the token-level ceiling on replay
    # (up to the partial last blocks, which the scaled prompts keep partial too)
    seen: set[tuple[int, ...]] = set()
    reused = total = 0
    for r in sorted(records, key=lambda r: r.timestamp_ms):
        full = len(r.hash_ids) - (1 if r.input_length % 512 else 0)
        prefix_hits = 0
        for i in range(full):
            if r.hash_ids[: i + 1] in seen:
                prefix_hits += 1
            else:
                break
        for i in range(len(r.hash_ids)):
            seen.add(r.hash_ids[: i + 1])
        reused += prefix_hits
    total = sum(r.prompt_length for r in plan)
    ceiling = kve_ceiling((r.prompt_tokens for r in plan), 16)
    assert ceiling == pytest.approx(reused * 16 / total)
    assert 0.2 < (ceiling or 0) < 0.6
