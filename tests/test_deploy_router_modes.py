"""The flag table's "inert in round-robin" claims, checked on the real local stack.

One stack (3 mocker workers, `isolation: restart`, so every apply starts with cold caches) runs
one deterministic agentic workload per router configuration. The routing evidence is the
client KVE (Σcached/Σprompt) and every request's cached-token count, in plan order.

Round-robin is deterministic here only at concurrency 1: with 7 in flight, completions reorder
the next turns and one configuration gave KVE 0.43 then 0.52. At concurrency 1 the plan's order
is the send order (turn 0 of every session, then turn 1, ...), so request k goes to worker
k mod 3 (up to a relabelling of identical cold workers, which leaves every count unchanged).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures.stack import make_local_spec, run_sync

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import FLAG_BY_FIELD, FLAG_TABLE, knob_used_in
from dynamo_tune.workload import AgenticWorkloadSpec, PrefixHints, make_workload

pytestmark = pytest.mark.integration

# 7 sessions x 4 turns = 28 requests; small prompts so 3 workers x 512 blocks never evict.
WORKLOAD = AgenticWorkloadSpec.model_validate(
    {
        "sessions": 7,
        "turns": 4,
        "concurrency": 1,
        "seed": 3,
        "system_prompt_tokens": 64,
        "session_context_tokens": 96,
        "appended_tokens": 32,
        "output_tokens": 8,
        "think_time_s": 0.0,
        "request_timeout_s": 30,
    }
)
NO_HINTS = PrefixHints(dialect="none")  # no session id: routing is the router's alone
ROUND_ROBIN = RouterConfig(mode="round-robin")

# Two extreme values of every knob the table says round-robin ignores.
EXTREMES: dict[str, tuple[Any, Any]] = {
    "overlap_score_credit": (0.0, 10.0),
    "prefill_load_scale": (0.0, 100.0),
    "temperature": (0.0, 5.0),
    "overlap_score_credit_decay": (0.0, 10.0),
    "decode_active_request_weight": (0.0, 1000.0),
    "kv_events": (True, False),
    "ttl_secs": (0.0, 10_000.0),
    "queue_threshold": (0.0, 100.0),
    "queue_policy": ("fcfs", "wspt"),
}
# What a knob needs to act at all in kv mode: the TTL only without events, the policy only
# with a queue.
COMPANIONS: dict[str, dict[str, Any]] = {
    "ttl_secs": {"kv_events": False},
    "queue_policy": {"queue_threshold": 0.0},
}


@dataclass(frozen=True)
class Evidence:
    """What a run shows of the routing: client KVE and per-request cached tokens."""

    kve: float
    cached: tuple[int | None, ...]


class Probe:
    """Applies a router configuration to the shared stack and runs the workload once."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self._reference: Evidence | None = None

    async def measure(self, router: RouterConfig) -> Evidence:
        applied = await self.stack.apply(router)
        assert "worker-0" in applied.restarted  # cold caches
        workload = make_workload(WORKLOAD, block_size=self.stack.spec.block_size)
        report = await workload.run(self.stack.endpoints(), NO_HINTS)
        assert (report.requests_ok, report.requests_failed) == (28, 0), report.first_errors
        assert report.client_kve is not None
        records = sorted(report.records, key=lambda r: r.index)
        return Evidence(report.client_kve, tuple(r.cached_tokens for r in records))

    async def reference(self) -> Evidence:
        """Round-robin with no knob passed (measured once per module)."""
        if self._reference is None:
            self._reference = await self.measure(ROUND_ROBIN)
        return self._reference


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    run_dir: Path = tmp_path_factory.mktemp("router-modes")
    spec = make_local_spec(run_dir, workers=3, isolation="restart", prometheus=False)
    stack = LocalStack(spec)
    run_sync(stack.start())
    try:
        yield Probe(stack)
    finally:
        run_sync(stack.stop())


def with_knob(mode: str, field: str, value: Any) -> RouterConfig:
    return RouterConfig(mode=mode, **{**COMPANIONS.get(field, {}), field: value})


def test_every_knob_inert_in_round_robin_has_extremes_here() -> None:
    inert = {rule.field for rule in FLAG_TABLE if not knob_used_in(rule.field, "round-robin")}
    assert set(EXTREMES) == inert


async def test_round_robin_at_concurrency_1_is_deterministic(probe: Probe) -> None:
    first = await probe.reference()
    again = await probe.measure(ROUND_ROBIN)
    print(f"round-robin twice: KVE {first.kve:.4f}, {again.kve:.4f}")
    assert again == first
    assert 0 < first.kve < 1


@pytest.mark.parametrize("field", sorted(EXTREMES))
async def test_knob_is_inert_in_round_robin(probe: Probe, field: str) -> None:
    reference = await probe.reference()
    low, high = EXTREMES[field]
    at_low = await probe.measure(with_knob("round-robin", field, low))
    at_high = await probe.measure(with_knob("round-robin", field, high))
    print(
        f"round-robin {field}: KVE {at_low.kve:.4f} at {low!r}, {at_high.kve:.4f} at {high!r} "
        f"(no flag: {reference.kve:.4f})"
    )
    assert at_low == reference
    assert at_high == reference


# The control: the same kind of change moves kv routing, so the evidence can tell.
@pytest.mark.parametrize("field", ["temperature", "overlap_score_credit"])
async def test_the_same_change_moves_kv_routing(probe: Probe, field: str) -> None:
    assert knob_used_in(field, "kv") and FLAG_BY_FIELD[field].modes == {"kv"}
    low, high = EXTREMES[field]
    at_low = await probe.measure(with_knob("kv", field, low))
    at_high = await probe.measure(with_knob("kv", field, high))
    reference = await probe.reference()
    print(
        f"kv {field}: KVE {at_low.kve:.4f} at {low!r}, {at_high.kve:.4f} at {high!r} "
        f"(round-robin: {reference.kve:.4f})"
    )
    assert at_low.kve != at_high.kve
    assert max(at_low.kve, at_high.kve) > reference.kve  # kv routing finds the prefixes
