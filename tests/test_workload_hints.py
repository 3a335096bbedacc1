"""Hint dialects: which headers and nvext fields each sends."""

from __future__ import annotations

import json
from typing import Any

from dynamo_tune.workload.hint_fields import hint_fields, nearest_bucket
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.payload import chat_request
from dynamo_tune.workload.plan import Message, PlannedRequest


def request(max_tokens: int = 300, iat: float | None = 0.3) -> PlannedRequest:
    return PlannedRequest(
        index=0,
        session="s4",
        turn=1,
        branch=0,
        messages=(Message("system", (1, 2)), Message("user", (3,))),
        max_tokens=max_tokens,
        hint_iat_s=iat,
        session_requests=12,
    )


def fields(**hints: Any) -> tuple[dict[str, str], dict[str, Any] | None]:
    return hint_fields(PrefixHints(**hints), request(), "run1")


def test_dynamo_defaults_send_only_the_session_header() -> None:
    assert fields() == ({"X-Dynamo-Session-ID": "run1-s4"}, None)
    assert fields(session_id=False) == ({}, None)


def test_dynamo_agent_hints() -> None:
    headers, nvext = fields(osl="exact", priority=2, latency_sensitivity=0.5)
    assert nvext == {"agent_hints": {"osl": 300, "priority": 2, "latency_sensitivity": 0.5}}
    assert fields(osl="bucketed")[1] == {"agent_hints": {"osl": 512}}


def test_nat_headers() -> None:
    headers, nvext = fields(dialect="nat-headers", osl="exact", priority=3)
    assert nvext is None
    assert headers == {
        "x-prefix-id": "run1-s4",
        "x-prefix-total-requests": "12",
        "x-prefix-osl": "MEDIUM",
        "x-prefix-iat": "MEDIUM",
    }
    headers, _ = hint_fields(
        PrefixHints(dialect="nat-headers", session_id=False), request(iat=None), "r"
    )
    assert headers == {}


def test_none_dialect_sends_nothing() -> None:
    assert fields(dialect="none", osl="exact", priority=1) == ({}, None)


def test_buckets_are_nearest_on_a_log_scale() -> None:
    buckets = (128.0, 512.0, 2048.0)
    assert [nearest_bucket(v, buckets) for v in (0, 1, 255, 257, 1000, 1100, 10**6)] == [
        0,
        0,
        0,
        1,
        1,
        2,
        2,
    ]


def test_body_is_a_streaming_chat_request_with_usage() -> None:
    body, headers = chat_request(
        request(), "tiny", PrefixHints(osl="exact"), "run1", ignore_eos=True
    )
    doc = json.loads(body)
    assert doc == {
        "model": "tiny",
        "messages": [
            {"role": "system", "content": "w1 w2"},
            {"role": "user", "content": "w3"},
        ],
        "max_tokens": 300,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
        "nvext": {"agent_hints": {"osl": 300}},
    }
    assert headers["X-Dynamo-Session-ID"] == "run1-s4"
    assert headers["content-type"] == "application/json"
