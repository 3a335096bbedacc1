"""The screen's foundation: plan -> replay trace, Dynamo's virtual-time replay, core metrics."""

from __future__ import annotations

import json
import os
import statistics

import pytest

from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import FLAG_TABLE, KV_ONLY, replay_simulates
from dynamo_tune.screen.kv_router_args import KV_ROUTER_ARGS, kv_router_kwargs
from dynamo_tune.screen.replay_metrics import (
    ReplayedRequest,
    core_of,
    parse_requests,
    window_report,
)
from dynamo_tune.screen.trace_writer import plan_trace
from dynamo_tune.workload import agentic_plan
from dynamo_tune.workload.plan import Message, PlannedRequest
from dynamo_tune.workload.spec import AgenticWorkloadSpec
from dynamo_tune.workload.window import WindowSpec

os.environ.setdefault("DYN_LOG", "warn")  # the replay's router logs every decision at INFO

SYSTEM = Message("system", (1, 2, 3, 4, 5, 6, 7, 8))  # two blocks of 4
U0 = Message("user", (10, 11, 12, 13))
U1 = Message("user", (14, 15, 16, 17))
A = Message("assistant", (20, 21))


def hand_plan() -> list[PlannedRequest]:
    """2 sessions x 2 turns on a shared 8-token system prompt (block size 4).

    Turn 1 of both sessions appends the same tokens (20 21 | 22 23 ...) after different
    histories; s1's last turn ends in a partial block (24).
    """
    return [
        PlannedRequest(0, "s0", 0, 0, (SYSTEM, U0), 3),
        PlannedRequest(1, "s1", 0, 0, (SYSTEM, U1), 5),
        PlannedRequest(
            2, "s0", 1, 0, (SYSTEM, U0, A, Message("user", (22, 23))), 2, after=(0,), delay_s=0.5
        ),
        PlannedRequest(
            3, "s1", 1, 0, (SYSTEM, U1, A, Message("user", (22, 23, 24))), 4, after=(1,)
        ),
    ]


def seq(parent: int, delay_ms: float = 0.0) -> dict[str, object]:
    return {
        "request_id": f"r{parent}",
        "trigger": "completion",
        "delay_ms": delay_ms,
        "relation": "sequence",
    }


def join(parent: int) -> dict[str, object]:
    return {
        "request_id": f"r{parent}",
        "trigger": "completion",
        "delay_ms": 0.0,
        "relation": "join",
    }


def test_hash_ids_chain_prefix_blocks() -> None:
    trace = plan_trace(hand_plan(), block_size=4, in_flight_limit=None)
    # system blocks 1, 2 shared; s0's user block 3, s1's 4; the same (20 21 22 23) block
    # after s0's history is 5, after s1's history 6 (a new id); s1's partial block (24) is 7.
    assert [row["hash_ids"] for row in trace.rows] == [
        [1, 2, 3],
        [1, 2, 4],
        [1, 2, 3, 5],
        [1, 2, 4, 6, 7],
    ]
    assert trace.distinct_blocks == 7
    assert [row["input_length"] for row in trace.rows] == [12, 12, 16, 17]
    assert [row["output_length"] for row in trace.rows] == [3, 5, 2, 4]
    assert [row["session_id"] for row in trace.rows] == ["s0", "s1", "s0", "s1"]
    assert trace.request_ids == ("r0", "r1", "r2", "r3")
    assert trace.index_of() == {"r0": 0, "r1": 1, "r2": 2, "r3": 3}


def test_dependencies_without_and_with_an_in_flight_limit() -> None:
    unbounded = plan_trace(hand_plan(), block_size=4, in_flight_limit=None)
    assert [row["dependencies"] for row in unbounded.rows] == [[], [], [seq(0, 500.0)], [seq(1)]]
    # limit 2: r2's slot parent is r0 and r3's is r1, already their sequence parents
    two = plan_trace(hand_plan(), block_size=4, in_flight_limit=2)
    assert [row["dependencies"] for row in two.rows] == [[], [], [seq(0, 500.0)], [seq(1)]]
    # limit 1: every request also waits for the one before it
    one = plan_trace(hand_plan(), block_size=4, in_flight_limit=1)
    assert [row["dependencies"] for row in one.rows] == [
        [],
        [join(0)],
        [seq(0, 500.0), join(1)],
        [seq(1), join(2)],
    ]


def test_trace_text_is_a_v2_header_then_one_line_per_request() -> None:
    lines = plan_trace(hand_plan(), block_size=4, in_flight_limit=1).jsonl().splitlines()
    header = json.loads(lines[0])
    assert (header["schema"], header["version"], header["block_size"]) == (
        "dynamo.agentic_mooncake",
        2,
        4,
    )
    rows = [json.loads(line) for line in lines[1:]]
    assert [r["request_id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    assert {r["play_id"] for r in rows} == {"all"} and {r["not_before_ms"] for r in rows} == {0.0}


def test_a_root_with_an_arrival_offset_starts_no_earlier() -> None:
    plan = [PlannedRequest(0, "s0", 0, 0, (SYSTEM,), 1, offset_s=1.25)]
    assert plan_trace(plan, block_size=4, in_flight_limit=None).rows[0]["not_before_ms"] == 1250.0


@pytest.mark.parametrize(("block_size", "limit"), [(0, None), (4, 0)])
def test_bad_block_size_or_limit_is_refused(block_size: int, limit: int | None) -> None:
    with pytest.raises(ValueError, match="block_size|in_flight_limit"):
        plan_trace(hand_plan(), block_size=block_size, in_flight_limit=limit)


def test_core_metrics_over_the_full_window() -> None:
    """Hand-computed: the live summary's rules applied to replayed requests."""

    def req(i: int, inp: int, reused: int, out: int, sent: float, ttft: float, itl: float):
        first = sent + ttft
        end = first + itl * max(out - 1, 0)
        return ReplayedRequest(i, True, inp, reused, out, ttft, itl, sent, first, end)

    requests = [
        req(0, 100, 0, 3, 0.0, 0.4, 0.02),  # 2 gaps of 0.02
        req(1, 100, 50, 2, 0.0, 0.2, 0.04),  # 1 gap of 0.04
        req(2, 200, 150, 1, 0.5, 0.1, 0.0),  # no gap
        ReplayedRequest(3, False, 100, 100, 0, None, None, 0.1),  # not completed: failed
    ]
    report = window_report(requests, WindowSpec(), closed_loop=True)
    m = core_of(report)
    assert report.requests_sent == 4 and report.requests_failed == 1
    assert m.kv_efficiency == pytest.approx(200 / 400)
    assert m.ttft_p50_seconds == pytest.approx(0.2)
    assert m.ttft_p95_seconds == pytest.approx(0.2 + 0.2 * 0.9)  # rank 1.9 of 0.1/.2/.4
    assert m.itl_p50_seconds == pytest.approx(0.02)  # gaps 0.02, 0.02, 0.04
    assert m.itl_p95_seconds == pytest.approx(0.02 + 0.02 * 0.9)
    assert m.to_optimization_score(0.5, 0.5, 0.0, 1.0, 1.0) == pytest.approx(
        0.5 * 0.5 + 0.5  # TTFT p95 0.38 s is under the 1 s target: full TTFT credit
    )


def test_per_request_records_are_matched_back_by_trace_id() -> None:
    records = [
        {"request_id": "r1", "terminal_status": "completed", "input_length": 12,
         "reused_input_tokens": 8, "output_length": 5, "ttft_ms": 30.0, "itl_ms": 5.0},
        {"request_id": "r0", "terminal_status": "completed", "input_length": 12,
         "reused_input_tokens": 0, "output_length": 1, "ttft_ms": 40.0, "itl_ms": 0.0},
    ]  # fmt: skip
    parsed = parse_requests(records, {"r0": 0, "r1": 1})
    assert [(r.index, r.reused_tokens, r.ttft_s, r.itl_s) for r in parsed] == [
        (0, 0, 0.04, None),
        (1, 8, 0.03, 0.005),
    ]
    with pytest.raises(ValueError, match="'r9'"):
        parse_requests([{"request_id": "r9"}], {"r0": 0})


def test_replay_simulates_follows_the_table() -> None:
    simulated = {rule.field for rule in FLAG_TABLE if replay_simulates(rule.field)}
    assert simulated == {
        "mode",
        "overlap_score_credit",
        "prefill_load_scale",
        "temperature",
        "overlap_score_credit_decay",
        "decode_active_request_weight",
        "queue_threshold",
        "queue_policy",
        "block_size",
    }
    assert not replay_simulates("session_affinity_ttl_secs")
    assert not replay_simulates("session_affinity_mode")
    with pytest.raises(ValueError, match="nope"):
        replay_simulates("nope")


def test_kv_router_args_are_the_simulated_kv_knobs_and_dynamo_accepts_them() -> None:
    from dynamo._core import KvRouterConfig

    kv_simulated = {r.field for r in FLAG_TABLE if r.modes == KV_ONLY and replay_simulates(r.field)}
    assert set(KV_ROUTER_ARGS) == kv_simulated
    cfg = RouterConfig(
        overlap_score_credit=1.5,
        prefill_load_scale=2.0,
        temperature=0.25,
        overlap_score_credit_decay=0.5,
        decode_active_request_weight=3.0,
        queue_threshold=0.75,
        queue_policy="wspt",
        session_affinity_ttl_secs=30,
    )
    kwargs = kv_router_kwargs(cfg)
    assert kwargs["router_temperature"] == 0.25 and "session_affinity_ttl_secs" not in kwargs
    KvRouterConfig(**kwargs)  # Dynamo's constructor accepts every name and value
    assert kv_router_kwargs(RouterConfig()) == {}


# Replays with Dynamo (in-process, virtual time: milliseconds each).


def test_replay_of_the_hand_plan_in_both_modes() -> None:
    from dynamo_tune.screen.replay import engine_args, replay_plan

    for router in (RouterConfig(mode="round-robin"), RouterConfig(mode="kv")):
        result = replay_plan(
            hand_plan(),
            engine=engine_args(block_size=4, num_gpu_blocks=64, speedup_ratio=1.0),
            workers=2,
            router=router,
            in_flight_limit=2,
        )
        assert [r.index for r in result.requests] == [0, 1, 2, 3]
        assert all(r.completed for r in result.requests)
        assert [r.input_tokens for r in result.requests] == [12, 12, 16, 17]
        assert [r.output_tokens for r in result.requests] == [3, 5, 2, 4]
        assert result.metrics.is_complete()
        assert 0 <= (result.metrics.kv_efficiency or 0) <= 1
        assert result.simulated_s > 0


@pytest.mark.parametrize("mode", ["random", "power-of-two", "least-loaded"])
def test_a_mode_the_replay_cannot_simulate_is_refused(mode: str) -> None:
    from dynamo_tune.screen.replay import engine_args, replay_plan

    with pytest.raises(ValueError, match=mode):
        replay_plan(
            hand_plan(),
            engine=engine_args(block_size=4, num_gpu_blocks=64, speedup_ratio=1.0),
            workers=2,
            router=RouterConfig(mode=mode),  # type: ignore[arg-type]
            in_flight_limit=2,
        )


def test_kv_with_overlap_credit_reuses_at_least_as_much_as_round_robin() -> None:
    """16 sessions x 3 turns on a shared system prompt, 8 in flight on 4 workers.

    (With 8 or 10 sessions at 4 in flight, round-robin's fixed rotation happens to put many
    turns back on their session's worker, and the kv router, spreading load, reuses less.)
    """
    from dynamo_tune.screen.replay import engine_args, replay_plan

    spec = AgenticWorkloadSpec.model_validate(
        {
            "sessions": 16,
            "turns": 3,
            "concurrency": 8,
            "system_prompt_tokens": 256,
            "session_context_tokens": 256,
            "appended_tokens": 32,
            "output_tokens": {"dist": "uniform", "low": 4, "high": 16},
            "seed": 0,
        }
    )
    plan = agentic_plan(spec)

    def kve(router: RouterConfig) -> float:
        values = [
            replay_plan(
                plan,
                engine=engine_args(block_size=16, num_gpu_blocks=1024, speedup_ratio=1.0),
                workers=4,
                router=router,
                in_flight_limit=spec.in_flight_limit,
            ).metrics.kv_efficiency
            or 0.0
            for _ in range(3)  # kv replays break ties at random
        ]
        return statistics.mean(values)

    credit = RouterConfig(mode="kv", overlap_score_credit=2.0, prefill_load_scale=8.0)
    assert kve(credit) >= kve(RouterConfig(mode="round-robin"))
