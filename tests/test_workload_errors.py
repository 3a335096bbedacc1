"""Error paths of the runner with respx streaming mocks: each failure counted, no crash."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import WorkloadError
from dynamo_tune.net import free_port, loopback_url
from dynamo_tune.workload import AgenticWorkloadSpec, PrefixHints, Workload, make_workload

URL = "http://127.0.0.1:9"  # never contacted: respx intercepts every request
ENDPOINTS = Endpoints(frontend_url=URL, model="tiny")


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx on httpx's transport lookup (the runner's transport is aiohttp, not httpcore)."""
    with respx.mock(using="httpx") as mocked:
        yield mocked


def sse(obj: object) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def token(text: str) -> bytes:
    return sse({"choices": [{"index": 0, "delta": {"content": text}}]})


USAGE = sse(
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 16},
        },
    }
)


class Stream(httpx.AsyncByteStream):
    """Yields `parts`; a float part sleeps, an exception part is raised."""

    def __init__(self, *parts: bytes | float | Exception) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if isinstance(part, float):
                await asyncio.sleep(part)
            elif isinstance(part, Exception):
                raise part
            else:
                yield part


def stream(*parts: bytes | float | Exception) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream(*parts))


BEHAVIOUR: dict[str, httpx.Response | Exception] = {}


def by_session(request: httpx.Request) -> httpx.Response:
    session = request.headers["X-Dynamo-Session-ID"].rsplit("-", 1)[1]
    outcome = BEHAVIOUR[session]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def workload(sessions: int, timeout_s: float = 5.0) -> Workload:
    spec = AgenticWorkloadSpec(
        sessions=sessions,
        turns=1,
        concurrency=2,
        system_prompt_tokens=8,
        session_context_tokens=4,
        appended_tokens=4,
        output_tokens=2,
        request_timeout_s=timeout_s,
        max_failure_ratio=0.5,
    )
    return make_workload(spec, block_size=16)


async def test_every_failure_is_counted_under_its_cause(router: respx.MockRouter) -> None:
    router.get(f"{URL}/v1/models").respond(200, json={"data": []})
    router.post(f"{URL}/v1/chat/completions").mock(side_effect=by_session)
    BEHAVIOUR.clear()
    BEHAVIOUR.update(
        {
            "s0": stream(token(" w1"), token(" w2"), USAGE, b"data: [DONE]\n\n"),
            "s1": httpx.Response(400, json={"message": "unknown field `iat`"}),
            "s2": httpx.Response(500, text="engine died"),
            "s3": httpx.Response(529, text="busy"),
            "s4": stream(token(" w1"), httpx.RemoteProtocolError("peer closed connection")),
            "s5": stream(token(" w1"), 30.0, token(" w2")),
            "s6": stream(token(" w1"), b'event: error\ndata: {"message": "worker lost"}\n\n'),
            "s7": stream(token(" w1"), token(" w2")),  # ends without [DONE]
            "s8": httpx.ConnectError("connection refused"),
            "s9": stream(token(" w1"), b"data: [1, 2]\n\n"),
            "s10": httpx.Response(
                200, headers={"content-encoding": "gzip"}, stream=Stream(b"data: not gzip\n\n")
            ),
        }
    )
    report = await workload(11, timeout_s=0.5).run(ENDPOINTS, PrefixHints())
    assert report.requests_sent == 11
    assert report.requests_ok == 1
    assert report.failures == {
        "http_4xx": 1,
        "http_5xx": 1,
        "busy_529": 1,
        "disconnect": 3,
        "timeout": 1,
        "stream_error": 3,
    }
    assert report.failed  # 10 of 11 failed > 0.5
    by_cause = {r.session: r for r in report.records}
    assert by_cause["s1"].status == 400 and "unknown field" in (by_cause["s1"].error or "")
    assert by_cause["s4"].cause == "disconnect" and "peer closed" in (by_cause["s4"].error or "")
    assert by_cause["s7"].cause == "disconnect" and "[DONE]" in (by_cause["s7"].error or "")
    assert "DecodingError" in (by_cause["s10"].error or "")
    assert "unparseable" in (by_cause["s9"].error or "")
    assert by_cause["s5"].cause == "timeout" and by_cause["s5"].e2e_s == pytest.approx(0.5, abs=0.2)
    assert len(report.first_errors) == 5
    # the one good request is measured exactly
    good = by_cause["s0"]
    assert (good.prompt_tokens, good.cached_tokens, good.output_tokens) == (20, 16, 2)
    assert report.client_kve == pytest.approx(16 / 20)
    assert report.client_ttft_p50_seconds is not None


async def test_a_healthy_run_is_not_failed(router: respx.MockRouter) -> None:
    router.get(f"{URL}/v1/models").respond(200, json={"data": []})
    router.post(f"{URL}/v1/chat/completions").mock(
        side_effect=lambda request: stream(token(" w1"), token(" w2"), USAGE, b"data: [DONE]\n\n")
    )
    report = await workload(4).run(ENDPOINTS, PrefixHints())
    assert (report.requests_ok, report.requests_failed, report.failed) == (4, 0, False)
    assert report.client_itl_p50_seconds is not None and report.client_itl_p50_seconds >= 0


async def test_unreachable_frontend_is_a_workload_error() -> None:
    closed = Endpoints(frontend_url=loopback_url(free_port()), model="tiny")
    with pytest.raises(WorkloadError, match="unreachable"):
        await workload(1).run(closed, PrefixHints())
