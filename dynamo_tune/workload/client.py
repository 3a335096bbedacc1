"""One streamed `/v1/chat/completions` request, measured. Does I/O: HTTP via httpx.

`send_chat` fills a `RequestRecord` and never raises for a failed request: HTTP errors,
timeouts, cut streams and in-stream error events become its `cause` and `error`. The hot path
per streamed chunk is a clock read, a prefix check and one `json.loads`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping

import httpx

from dynamo_tune.workload.record import RequestRecord, cause_for_status

ERROR_BODY_LIMIT = 400


async def send_chat(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    record: RequestRecord,
    timeout_s: float,
    clock: Callable[[], float],
) -> None:
    """POST `body` (a streaming chat request) to `url` and record the stream into `record`."""
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
    except TimeoutError:
        record.fail("timeout", f"no complete response within {timeout_s} s")
    except httpx.TimeoutException as exc:
        record.fail("timeout", f"{type(exc).__name__}: {exc}")
    except httpx.TransportError as exc:
        record.fail("disconnect", f"{type(exc).__name__}: {exc}")
    finally:
        record.end = clock()


async def _read_stream(
    response: httpx.Response, record: RequestRecord, clock: Callable[[], float]
) -> None:
    """Consume SSE lines: a content chunk is one token event; usage comes in the last chunk."""
    times = record.token_times
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            now = clock()
            is_error, event = event == "error", ""
            data = line[5:].strip()
            if data == "[DONE]":
                record.first_token = times[0] if times else None
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                record.fail("stream_error", f"unparseable stream data: {data[:200]}")
                return
            if is_error or "error" in chunk:
                record.fail("stream_error", f"error in stream: {data[:ERROR_BODY_LIMIT]}")
                return
            choices = chunk.get("choices")
            if choices:
                delta = choices[0].get("delta") or {}
                if delta.get("content") or delta.get("reasoning_content"):
                    times.append(now)
            usage = chunk.get("usage")
            if usage:
                _read_usage(usage, record)
        elif line.startswith("event:"):
            event = line[6:].strip()
    record.first_token = times[0] if times else None
    record.fail("disconnect", f"stream ended without [DONE] after {len(times)} tokens")


def _read_usage(usage: dict[str, object], record: RequestRecord) -> None:
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    details = usage.get("prompt_tokens_details")
    record.prompt_tokens = prompt if isinstance(prompt, int) else None
    record.output_tokens = completion if isinstance(completion, int) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    record.cached_tokens = cached if isinstance(cached, int) else None
