"""The agentic generator: determinism, prefix consistency, counts, fan-out, arrivals."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo_tune.workload.agentic import agentic_plan, session_arrivals, warmup_request
from dynamo_tune.workload.plan import validate_plan
from dynamo_tune.workload.spec import AgenticWorkloadSpec, WarmupSpec


def spec(**overrides: Any) -> AgenticWorkloadSpec:
    doc: dict[str, Any] = {
        "kind": "agentic",
        "sessions": 3,
        "turns": 3,
        "seed": 7,
        "system_prompt_tokens": 40,
        "session_context_tokens": 30,
        "appended_tokens": {"dist": "uniform", "low": 5, "high": 25},
        "output_tokens": {"dist": "uniform", "low": 4, "high": 12},
    }
    doc.update(overrides)
    return AgenticWorkloadSpec.model_validate(doc)


def prompts(s: AgenticWorkloadSpec) -> list[list[int]]:
    return [r.prompt_tokens for r in agentic_plan(s)]


def test_same_seed_same_prompts_and_lengths() -> None:
    a, b = agentic_plan(spec()), agentic_plan(spec())
    assert [r.prompt_tokens for r in a] == [r.prompt_tokens for r in b]
    assert [r.max_tokens for r in a] == [r.max_tokens for r in b]
    assert [m.content for m in a[-1].messages] == [m.content for m in b[-1].messages]


def test_other_seed_other_prompts() -> None:
    assert prompts(spec(seed=7)) != prompts(spec(seed=8))


def test_turns_extend_the_previous_prompt_and_reply() -> None:
    plan = agentic_plan(spec())
    validate_plan(plan)
    by_key = {(r.session, r.turn): r for r in plan}
    for (session, turn), request in by_key.items():
        if turn == 0:
            assert [m.role for m in request.messages] == ["system", "user"]
            continue
        before = by_key[(session, turn - 1)]
        # history = previous prompt + the generator's assistant reply, then one new user turn
        assert request.messages[: len(before.messages)] == before.messages
        reply = request.messages[len(before.messages)]
        assert reply.role == "assistant"
        assert len(reply.tokens) == before.max_tokens
        assert request.messages[-1].role == "user"
        assert request.after == (before.index,)


def test_token_counts_are_exact() -> None:
    plan = agentic_plan(spec(appended_tokens=10, output_tokens=6))
    first = [r for r in plan if r.turn == 0]
    assert all(r.prompt_length == 40 + 30 + 10 for r in first)
    third = [r for r in plan if r.turn == 2]
    assert all(r.prompt_length == 80 + 6 + 10 + 6 + 10 for r in third)
    assert all(r.max_tokens == 6 for r in plan)
    # the content renders to exactly one word per token
    assert all(len(m.content.split()) == len(m.tokens) for r in plan for m in r.messages)


def test_sessions_share_the_system_prompt_only() -> None:
    plan = agentic_plan(spec())
    s0, s1 = (next(r for r in plan if r.session == s and r.turn == 0) for s in ("s0", "s1"))
    assert s0.messages[0] is s1.messages[0]
    assert s0.messages[1].tokens[:30] != s1.messages[1].tokens[:30]


def test_fan_out_shares_history_and_next_turn_waits_for_all() -> None:
    plan = agentic_plan(spec(sessions=1, turns=2, fan_out=3))
    turn0 = [r for r in plan if r.turn == 0]
    turn1 = [r for r in plan if r.turn == 1]
    assert [r.branch for r in turn0] == [0, 1, 2]
    assert len({r.messages[:-1] for r in turn0}) == 1  # same history, own user message
    assert len({r.messages[-1].tokens for r in turn0}) == 3
    assert all(r.after == tuple(x.index for x in turn0) for r in turn1)
    assert turn1[0].messages[: len(turn0[0].messages)] == turn0[0].messages
    assert all(r.session_requests == 6 for r in plan)


def test_closed_loop_has_no_offsets_and_rate_gives_poisson_starts() -> None:
    assert all(r.offset_s is None for r in agentic_plan(spec()))
    assert spec().in_flight_limit == 8
    open_loop = spec(sessions=2000, turns=1, rate=50.0)
    assert open_loop.in_flight_limit is None
    offsets = session_arrivals(open_loop)
    assert offsets[0] == 0.0
    assert offsets == sorted(offsets)
    mean_gap = offsets[-1] / (len(offsets) - 1)  # type: ignore[operator]
    assert mean_gap == pytest.approx(1 / 50, rel=0.1)


def test_think_time_is_the_delay_of_later_turns() -> None:
    plan = agentic_plan(spec(think_time_s=0.25))
    assert {r.delay_s for r in plan if r.turn == 0} == {0.0}
    assert {r.delay_s for r in plan if r.turn > 0} == {0.25}
    assert {r.hint_iat_s for r in plan} == {0.25}


def test_warmup_prompts_share_nothing_with_the_plan() -> None:
    warm = WarmupSpec(requests=2, prompt_tokens=64)
    w0, w1 = warmup_request(warm, 7, 0), warmup_request(warm, 7, 1)
    assert w0.prompt_length == 64
    assert w0.prompt_tokens != w1.prompt_tokens
    plan_tokens = {tuple(p[:16]) for p in prompts(spec())}
    assert tuple(w0.prompt_tokens[:16]) not in plan_tokens
