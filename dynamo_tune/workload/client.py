"""The workload's HTTP client and one streamed request, measured. Does I/O: HTTP via httpx.

`make_client` is the one place the transport is chosen: httpx's interface over aiohttp
(`httpx_aiohttp.AiohttpTransport`) for http and https. A workload client times every token
of hundreds of streams per second; on a 2-core VM a streamed request of 32 chunks costs it
0.8-0.9 ms of CPU this way and 5-5.6 ms with httpx's default transport (httpcore + anyio +
h11). `benchmarks/workload.py` measures the runner's cost per request.

`send_chat` (chat completions and completions alike) fills a `RequestRecord` and never raises
for a failed request: HTTP errors, timeouts, cut streams and in-stream error events become its
`cause` and `error`. The hot path per network read is a clock read and a split; per SSE line, a
prefix check and one `json.loads`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from dynamo_tune.workload.record import FailureCause, RequestRecord, cause_for_status

ERROR_BODY_LIMIT = 400
UNBOUNDED_CONNECTIONS = 1024
KEEPALIVE_EXPIRY_S = 5.0
REQUEST_ERRORS = (httpx.HTTPError, aiohttp.ClientError)
"""What a failed request through `make_client`'s client raises: httpx's errors, and aiohttp's
that the transport passes on untranslated (a malformed response head or chunk)."""


def make_client(in_flight_limit: int | None, timeout_s: float) -> httpx.AsyncClient:
    """The workload's client: at most `in_flight_limit` connections (None: 1024).

    aiohttp keeps every released connection for reuse `KEEPALIVE_EXPIRY_S` seconds (it has no
    idle-count limit). `timeout_s` bounds connecting and each wait for data; `send_chat` also
    bounds each whole request. The aiohttp session is created by the first request, inside the
    running event loop, and closed with the client.
    """
    limits = httpx.Limits(
        max_connections=in_flight_limit or UNBOUNDED_CONNECTIONS,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s), transport=AiohttpTransport(limits=limits)
    )


async def send_chat(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    record: RequestRecord,
    timeout_s: float,
    clock: Callable[[], float],
) -> None:
    """POST `body` (a streaming chat or completions request) to `url` and record the stream
    into `record`."""
    record.sent = clock()
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                record.status = response.status_code
                if response.status_code != 200:
                    text = (await response.aread())[:ERROR_BODY_LIMIT].decode(errors="replace")
                    record.fail(
                        cause_for_status(response.status_code),
                        f"HTTP {response.status_code}: {text}",
                    )
                    return
                await _read_stream(response, record, clock)
    except (httpx.TransportError, aiohttp.ClientError) as exc:
        record.fail(*_transport_failure(exc))
    except TimeoutError:
        record.fail("timeout", f"no complete response within {timeout_s} s")
    except httpx.HTTPError as exc:  # e.g. a body that does not decode
        record.fail("stream_error", f"{type(exc).__name__}: {exc}")
    finally:
        record.end = clock()


def _transport_failure(exc: BaseException) -> tuple[FailureCause, str]:
    """`timeout` or `disconnect`, and the text of the exception that says what went wrong.

    httpx-aiohttp 0.2 turns every `aiohttp.ClientConnectionError` (refused, reset, server
    disconnected) into `httpx.ConnectTimeout`, so the aiohttp exception it chains decides:
    a timeout only when that one is a `TimeoutError`.
    """
    source = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    timed_out = isinstance(source, TimeoutError | httpx.TimeoutException)
    return ("timeout" if timed_out else "disconnect"), f"{type(source).__name__}: {source}"


async def _read_stream(
    response: httpx.Response, record: RequestRecord, clock: Callable[[], float]
) -> None:
    """Consume SSE lines: a content chunk (chat `delta.content`, completion `text`) is one
    token event; usage comes in the last chunk (the same in both APIs).

    Lines are split from raw bytes; every line of one network read gets that read's arrival
    time. After `[DONE]` the rest of the body is drained so the connection returns to the pool.
    """
    times = record.token_times
    event = b""
    buffer = b""
    done = False
    async for data in response.aiter_bytes():
        if done:
            continue
        now = clock()
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                is_error, event = event == b"error", b""
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                if not _read_chunk(payload, is_error, now, record):
                    return
            elif line.startswith(b"event:"):
                event = line[6:].strip()
    record.first_token = times[0] if times else None
    if not done:
        record.fail("disconnect", f"stream ended without [DONE] after {len(times)} tokens")


def _read_chunk(payload: bytes, is_error: bool, now: float, record: RequestRecord) -> bool:
    """Apply one `data:` payload to `record`; False when it is an error (recorded)."""
    try:
        chunk = json.loads(payload)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        record.fail("stream_error", f"unparseable stream data: {payload[:200]!r}")
        return False
    if is_error or "error" in chunk:
        text = payload[:ERROR_BODY_LIMIT].decode(errors="replace")
        record.fail("stream_error", f"error in stream: {text}")
        return False
    choices = chunk.get("choices")
    if choices:
        choice = choices[0]
        delta = choice.get("delta") or {}  # a chat chunk; a completion chunk carries `text`
        if delta.get("content") or delta.get("reasoning_content") or choice.get("text"):
            record.token_times.append(now)
    usage = chunk.get("usage")
    if usage:
        _read_usage(usage, record)
    return True


def _read_usage(usage: dict[str, object], record: RequestRecord) -> None:
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    details = usage.get("prompt_tokens_details")
    record.prompt_tokens = prompt if isinstance(prompt, int) else None
    record.output_tokens = completion if isinstance(completion, int) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    record.cached_tokens = cached if isinstance(cached, int) else None
