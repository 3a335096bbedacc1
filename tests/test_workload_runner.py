"""Runner scheduling: in-flight limit, dependencies and think time, warmup and window.

Timing is asserted as order (a request goes no earlier than it is due; a turn is due a think
time after the previous one ended; what was in flight together), never as a millisecond
bound: `benchmarks/timing.py` prints how late the runner is on this machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.workload import AgenticWorkloadSpec, PrefixHints, make_workload

URL = "http://127.0.0.1:9"
ENDPOINTS = Endpoints(frontend_url=URL, model="tiny")


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx on httpx's transport lookup (the runner's transport is aiohttp, not httpcore)."""
    with respx.mock(using="httpx") as mocked:
        yield mocked


DONE = b"data: [DONE]\n\n"
HOLD_S = 5.0
"""How long a stream waits for `Server.release_at` at most."""
ROUNDING_S = 1e-6
"""Float rounding of Unix-time seconds (the runner's clock is `perf_counter` + an offset)."""


class Server:
    """Streams that take `hold_s` each, or, with `release_at`, that all wait until that many
    are in flight at once (`HOLD_S` at most); records arrivals and the peak of streams in
    progress."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.release_at: int | None = None
        self.released = False
        self.in_flight = 0
        self.peak = 0
        self.arrivals: list[tuple[float, dict[str, object]]] = []

    async def _stream(self) -> AsyncIterator[bytes]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.release_at is None:
            await asyncio.sleep(self.hold_s)
        else:
            deadline = time.monotonic() + HOLD_S
            while not self.released and time.monotonic() < deadline:
                self.released = self.in_flight >= self.release_at
                await asyncio.sleep(0 if self.released else 0.005)
        self.in_flight -= 1
        yield b'data: {"choices":[{"index":0,"delta":{"content":" w1"}}]}\n\n'
        yield DONE


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, gen: AsyncIterator[bytes]) -> None:
        self.gen = gen

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self.gen:
            yield part


@pytest.fixture
def server() -> Server:
    return Server(hold_s=0.05)


def mock(router: respx.MockRouter, server: Server) -> None:
    router.get(f"{URL}/v1/models").respond(200, json={"data": []})

    def effect(request: httpx.Request) -> httpx.Response:
        server.arrivals.append((time.time(), json.loads(request.content)))
        return httpx.Response(200, stream=_AsyncStream(server._stream()))

    router.post(f"{URL}/v1/chat/completions").mock(side_effect=effect)


def small(**overrides: object) -> AgenticWorkloadSpec:
    doc: dict[str, object] = {
        "system_prompt_tokens": 4,
        "session_context_tokens": 4,
        "appended_tokens": 4,
        "output_tokens": 1,
    }
    doc.update(overrides)
    return AgenticWorkloadSpec.model_validate(doc)


async def test_in_flight_limit_is_respected(server: Server, router: respx.MockRouter) -> None:
    mock(router, server)
    workload = make_workload(small(sessions=12, turns=1, concurrency=3), block_size=4)
    report = await workload.run(ENDPOINTS, PrefixHints())
    assert report.requests_ok == 12
    assert server.peak == 3
    # 12 requests, 3 at a time, 50 ms each: at least 4 rounds
    assert report.window_end - report.window_start >= 4 * 0.05


async def test_turns_wait_for_the_previous_turn_plus_think_time(
    server: Server, router: respx.MockRouter
) -> None:
    mock(router, server)
    workload = make_workload(
        small(sessions=1, turns=3, concurrency=4, think_time_s=0.1), block_size=4
    )
    report = await workload.run(ENDPOINTS, PrefixHints())
    records = sorted(report.records, key=lambda r: r.turn)
    assert [r.turn for r in records] == [0, 1, 2]
    for previous, this in zip(records, records[1:], strict=False):
        assert previous.e2e_s is not None
        # released once the previous turn ended, due a think time later, sent no earlier
        assert this.sent >= previous.sent + previous.e2e_s + 0.1 - ROUNDING_S
    lengths = [
        sum(len(m["content"].split()) for m in body["messages"]) for _, body in server.arrivals
    ]  # type: ignore[index,union-attr]
    assert lengths == [12, 12 + 1 + 4, 12 + 1 + 4 + 1 + 4]


async def test_open_loop_rate_is_not_held_back_by_slow_responses(
    server: Server, router: respx.MockRouter
) -> None:
    server.release_at = 20  # no response ends before every request has arrived
    mock(router, server)
    workload = make_workload(small(sessions=20, turns=1, rate=100.0), block_size=4)
    report = await workload.run(ENDPOINTS, PrefixHints())
    assert report.requests_ok == 20
    assert server.peak == 20  # arrivals kept coming while every earlier stream was held
    assert report.scheduling_lag_p50_seconds is not None
    # sent in the order of the schedule's arrival times (plan order), not early
    assert [r.index for r in sorted(report.records, key=lambda r: r.sent)] == list(range(20))
    assert report.scheduling_lag_p50_seconds >= -ROUNDING_S


async def test_warmup_is_excluded_from_the_window(server: Server, router: respx.MockRouter) -> None:
    mock(router, server)
    spec = small(
        sessions=2,
        turns=1,
        warmup={"requests": 5, "quiet_gap_s": 0.2, "prompt_tokens": 7},
    )
    started = time.time()
    report = await make_workload(spec, block_size=4).run(ENDPOINTS, PrefixHints())
    assert report.warmup_requests == 5
    assert report.requests_sent == 2
    warm = [t for t, body in server.arrivals if len(body["messages"]) == 1]  # type: ignore[arg-type]
    assert len(warm) == 5
    # the window starts after every warmup request finished and the quiet gap passed
    assert report.window_start >= max(warm) + 0.05 + 0.2 - 0.01
    assert report.window_start > started


def test_one_workload_runs_in_successive_event_loops(server: Server) -> None:
    # the objective calls asyncio.run once per trial: nothing loop-bound may survive a run
    workload = make_workload(small(sessions=3, turns=2, concurrency=2), block_size=4)
    with respx.mock(using="httpx") as router:
        mock(router, server)
        first = asyncio.run(workload.run(ENDPOINTS, PrefixHints()))
        second = asyncio.run(workload.run(ENDPOINTS, PrefixHints()))
    assert first.requests_ok == second.requests_ok == 6
    assert second.window_start > first.window_end


async def test_a_steady_window_leaves_out_the_ramp_and_the_drain(
    server: Server, router: respx.MockRouter
) -> None:
    mock(router, server)
    spec = small(
        sessions=6, turns=3, concurrency=3, window={"mode": "steady", "warmup_share": 0.25}
    )
    report = await make_workload(spec, block_size=4).run(ENDPOINTS, PrefixHints())
    assert report.requests_ok == 18 and report.window_mode == "steady"
    assert report.window_note is None
    assert report.traffic_start is not None and report.traffic_end is not None
    ends = sorted(r.sent + (r.e2e_s or 0.0) for r in report.records)
    # ceil(18 / 4) = 5 requests finished before it opens; it closes before the last finish
    assert report.window_start == ends[4]
    assert report.traffic_start < report.window_start < report.window_end < report.traffic_end
    assert report.last_traffic == report.traffic_end == ends[-1]
    assert report.window_requests is not None and 0 < report.window_requests < 18
