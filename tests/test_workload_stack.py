"""The workload against the real local stack (Dynamo frontend + KV router + mocker workers)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.workload import (
    AgenticWorkloadSpec,
    PrefixHints,
    TraceWorkload,
    TraceWorkloadSpec,
    WorkloadReport,
    make_workload,
)
from dynamo_tune.workload.agentic import agentic_plan
from dynamo_tune.workload.client import make_client, send_chat
from dynamo_tune.workload.payload import BASE_HEADERS, CHAT_PATH
from dynamo_tune.workload.record import RequestRecord
from dynamo_tune.workload.runner import make_clock

pytestmark = pytest.mark.integration

# 7 sessions (odd, so round-robin cannot keep a session on one worker by accident) x 4 turns;
# small prompts so 2 workers x 512 blocks never evict.
SPEC: dict[str, Any] = {
    "kind": "agentic",
    "sessions": 7,
    "turns": 4,
    "concurrency": 7,
    "seed": 3,
    "system_prompt_tokens": 64,
    "session_context_tokens": 96,
    "appended_tokens": 32,
    "output_tokens": 8,
    "think_time_s": 0.02,
    "request_timeout_s": 30,
}


def spec(**overrides: Any) -> AgenticWorkloadSpec:
    return AgenticWorkloadSpec.model_validate({**SPEC, **overrides})


async def frontend_kv_sums(url: str) -> tuple[float, float]:
    """(cached_tokens_sum, input_sequence_tokens_sum) from the frontend's /metrics."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{url}/metrics")).text
    sums = {"dynamo_frontend_cached_tokens": 0.0, "dynamo_frontend_input_sequence_tokens": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            base = sample.name.removesuffix("_sum")
            if sample.name.endswith("_sum") and base in sums:
                sums[base] += sample.value
    return sums["dynamo_frontend_cached_tokens"], sums["dynamo_frontend_input_sequence_tokens"]


async def run(stack: LocalStack, s: AgenticWorkloadSpec, hints: PrefixHints) -> WorkloadReport:
    workload = make_workload(s, block_size=stack.spec.block_size)
    return await workload.run(stack.endpoints(), hints)


@pytest.mark.parametrize(
    "hints",
    [
        PrefixHints(dialect="dynamo", osl="exact", priority=1, latency_sensitivity=0.5),
        PrefixHints(dialect="dynamo", session_id=False, osl="bucketed"),
        PrefixHints(dialect="nat-headers", osl="bucketed"),
        PrefixHints(dialect="none"),
    ],
    ids=["dynamo-exact", "dynamo-bucketed", "nat-headers", "none"],
)
async def test_each_hint_dialect_is_accepted(local_stack: LocalStack, hints: PrefixHints) -> None:
    s = spec(sessions=3, turns=2, warmup={"requests": 2, "quiet_gap_s": 0})
    report = await run(local_stack, s, hints)
    assert report.first_errors == []
    assert (report.requests_sent, report.requests_ok, report.requests_failed) == (6, 6, 0)
    assert report.warmup_requests == 2
    assert not report.failed


async def test_client_kve_matches_the_frontend_and_token_counts_are_exact(
    local_stack: LocalStack,
) -> None:
    await local_stack.reset()  # cold caches
    url = local_stack.endpoints().frontend_url
    cached0, prompt0 = await frontend_kv_sums(url)
    s = spec()
    report = await run(local_stack, s, PrefixHints())
    cached1, prompt1 = await frontend_kv_sums(url)
    assert report.requests_failed == 0
    planned = {r.index: r.prompt_length for r in agentic_plan(s)}
    assert all(r.prompt_tokens == planned[r.index] for r in report.records)
    assert report.prompt_tokens == sum(planned.values())
    assert report.client_kve == pytest.approx(
        sum(r.cached_tokens or 0 for r in report.records) / report.prompt_tokens
    )
    # the frontend's own token-weighted counters over the same requests agree exactly
    assert (cached1 - cached0, prompt1 - prompt0) == (report.cached_tokens, report.prompt_tokens)
    assert report.client_kve is not None and report.kve_ceiling is not None
    assert 0 < report.client_kve <= report.kve_ceiling
    print(f"kv routing: client KVE {report.client_kve:.3f}, ceiling {report.kve_ceiling:.3f}")


async def test_round_robin_reuses_less_than_kv_routing(stack_factory: Any) -> None:
    stack: LocalStack = stack_factory(isolation="restart", workers=3)
    results = {}
    for mode in ("round-robin", "kv"):
        await stack.apply(RouterConfig(mode=mode))  # restarts workers: cold caches
        # 3 in flight: the router's load term rarely outweighs the prefix overlap
        report = await run(stack, spec(concurrency=3), PrefixHints(dialect="none"))
        assert report.requests_failed == 0
        results[mode] = report.client_kve
    print(
        f"same seed, 3 workers: KVE round-robin {results['round-robin']:.3f}, "
        f"kv {results['kv']:.3f} (ceiling {report.kve_ceiling:.3f})"
    )
    assert results["round-robin"] is not None and results["kv"] is not None
    assert results["round-robin"] < results["kv"]


async def test_trace_replay_on_the_real_stack(local_stack: LocalStack) -> None:
    trace = TraceWorkloadSpec.model_validate(
        {
            "kind": "trace",
            "path": "/work/shared/traces/mooncake-conversation-trace.jsonl",
            "limit": 40,
            "speedup": 100,
            "max_output_tokens": 8,
            "concurrency": 8,
        }
    )
    workload = make_workload(trace, block_size=local_stack.spec.block_size)
    assert isinstance(workload, TraceWorkload)
    report = await workload.run(local_stack.endpoints(), PrefixHints())
    assert (report.requests_ok, report.requests_failed) == (40, 0)
    planned = {r.index: r.prompt_length for r in workload.plan}
    assert all(r.prompt_tokens == planned[r.index] for r in report.records)
    assert report.client_kve is not None and report.client_kve > 0


async def test_a_real_400_is_recorded_as_http_4xx(local_stack: LocalStack) -> None:
    # Dynamo 1.6.1 rejects unknown nvext keys: the reason hint_fields never sends any
    endpoints = local_stack.endpoints()
    body = {
        "model": endpoints.model,
        "messages": [{"role": "user", "content": "w1 w2"}],
        "max_tokens": 2,
        "stream": True,
        "nvext": {"agent_hints": {"iat": 250}},
    }
    record = RequestRecord(index=0, session="s", turn=0, due=0.0)
    async with make_client(None, 10.0) as client:
        await send_chat(
            client,
            endpoints.frontend_url + CHAT_PATH,
            json.dumps(body).encode(),
            BASE_HEADERS,
            record,
            10.0,
            make_clock(),
        )
    assert (record.status, record.cause) == (400, "http_4xx")
    assert "unknown field `iat`" in (record.error or "")
