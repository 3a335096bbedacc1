"""The workload's HTTP client (`make_client` + `send_chat`) against a loopback server the
test scripts byte by byte: keep-alive, streaming, connection limit, failure causes.

Timing is asserted as order against what the server did (when it wrote each piece, on the
client's own clock), never as milliseconds; `benchmarks/timing.py` prints the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from wait_helpers import async_wait_for

from dynamo_tune.net import free_port, loopback_url
from dynamo_tune.workload.client import make_client, send_chat
from dynamo_tune.workload.payload import CHAT_PATH
from dynamo_tune.workload.record import RequestRecord
from dynamo_tune.workload.runner import make_clock

CLOCK = make_clock()
"""The clock of every request these tests send, and of the server's write times."""
HOLD_S = 5.0
"""How long a hold piece waits for its condition at most."""

Piece = bytes | float | None | Callable[[], bool]
Script = Callable[[int], list[Piece]]
"""Given the request's number (counted over all connections), the pieces to send: bytes,
a pause, None = close the connection, a condition = hold until it is true (`HOLD_S` at most,
then go on)."""


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.open = 0
        self.peak_open = 0
        self.requests: list[bytes] = []
        self.written: list[list[float]] = []
        """Per request, the `CLOCK` time at which each bytes piece was handed to the socket."""
        self.writers: list[asyncio.StreamWriter] = []
        self.handlers: list[asyncio.Task[None]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self.handlers.append(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                self.written.append([])
                for piece in self.script(len(self.requests) - 1):
                    if piece is None:
                        writer.close()
                        return
                    if isinstance(piece, float):
                        await writer.drain()
                        await asyncio.sleep(piece)
                    elif callable(piece):
                        await writer.drain()
                        deadline = time.monotonic() + HOLD_S
                        while not piece() and time.monotonic() < deadline:
                            await asyncio.sleep(0.005)
                    else:
                        self.written[-1].append(CLOCK())
                        writer.write(piece)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        finally:
            self.open -= 1


@contextlib.asynccontextmanager
async def serve(script: Script) -> AsyncIterator[tuple[ScriptedServer, str]]:
    """The scripted server on a free port; on exit every server-side socket is closed."""
    scripted = ScriptedServer(script)
    port = free_port()
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", port)
    try:
        yield scripted, loopback_url(port)
    finally:
        server.close()
        for writer in scripted.writers:
            writer.close()
        await asyncio.gather(*scripted.handlers, return_exceptions=True)
        for writer in scripted.writers:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()


CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
END = b"0\r\n\r\n"


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def token(text: str) -> bytes:
    event = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return chunk(b"data: " + json.dumps(event).encode() + b"\n\n")


USAGE_DONE = chunk(
    b'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, '
    b'"prompt_tokens_details": {"cached_tokens": 4}}}\n\n'
) + chunk(b"data: [DONE]\n\n")
GOOD = CHUNKED + token(" w1") + token(" w2") + USAGE_DONE + END
BODY = b'{"messages": []}'


async def chat(url: str, timeout_s: float = 5.0, limit: int | None = None) -> RequestRecord:
    """One `send_chat` on a fresh client."""
    async with make_client(limit, timeout_s) as client:
        return await send(client, url, timeout_s)


def new_record() -> RequestRecord:
    return RequestRecord(index=0, session="s", turn=0, due=0.0)


async def send(
    client: httpx.AsyncClient,
    url: str,
    timeout_s: float = 5.0,
    record: RequestRecord | None = None,
) -> RequestRecord:
    """One `send_chat` timed by `CLOCK`, into `record` (a new one if None)."""
    record = record if record is not None else new_record()
    await send_chat(
        client,
        url + CHAT_PATH,
        BODY,
        {"content-type": "application/json"},
        record,
        timeout_s,
        CLOCK,
    )
    return record


def measured_ok(record: RequestRecord) -> bool:
    return (
        record.cause is None
        and len(record.token_times) == 2
        and (record.prompt_tokens, record.cached_tokens, record.output_tokens) == (9, 4, 2)
    )


async def test_a_chunked_stream_split_anywhere_is_read_whole_on_one_kept_alive_connection() -> None:
    cuts = [0, 5, 70, 71, 100, len(GOOD) - 3, len(GOOD)]
    pieces: list[Piece] = []
    for start, stop in zip(cuts, cuts[1:], strict=False):
        pieces += [GOOD[start:stop], 0.01]
    async with serve(lambda n: pieces) as (scripted, url), make_client(None, 5.0) as client:
        records = [await send(client, url) for _ in range(3)]
    assert all(measured_ok(r) for r in records), [r.error for r in records]
    assert scripted.connections == 1
    first = scripted.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert first.endswith(b"\r\n\r\n" + BODY)
    assert b"content-length: %d\r\n" % len(BODY) in first.lower()


async def test_each_token_is_timed_when_it_arrives() -> None:
    record = new_record()

    def timed(n: int) -> Callable[[], bool]:
        return lambda: len(record.token_times) >= n

    # the server writes each next piece once the client has timed the token before it (a
    # client that timed tokens later, e.g. at the end of the stream, meets a 5 s hold and
    # times them after the next write)
    pieces: list[Piece] = [CHUNKED, token(" w1"), timed(1), token(" w2"), timed(2)]
    pieces += [USAGE_DONE + END]
    async with serve(lambda n: pieces) as (scripted, url), make_client(None, 5.0) as client:
        await send(client, url, record=record)
    assert measured_ok(record), record.error
    assert record.first_token == record.token_times[0]
    _, first, second, last = scripted.written[0]
    # each token's time is after its write and before the next write: the time it arrived
    assert first <= record.token_times[0] < second <= record.token_times[1] < last
    assert record.end is not None and last <= record.end


async def test_connections_are_limited_to_the_in_flight_limit() -> None:
    pieces: list[Piece] = [CHUNKED, token(" w1"), 0.1, token(" w2"), USAGE_DONE]
    pieces += [END]
    async with serve(lambda n: pieces) as (scripted, url), make_client(2, 5.0) as client:
        started = asyncio.get_running_loop().time()
        records = await asyncio.gather(*(send(client, url) for _ in range(6)))
        elapsed = asyncio.get_running_loop().time() - started
    assert all(measured_ok(r) for r in records), [r.error for r in records]
    assert (scripted.connections, scripted.peak_open) == (2, 2)
    assert elapsed >= 3 * 0.1  # 6 streams of 0.1 s, two at a time


def client_ends_open(server_port: int) -> list[str]:
    """TCP states (/proc/net/tcp{,6}: 01 established, 08 close-wait) of the connections to
    `server_port` whose client end is not closed yet."""
    states = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/self/net/{table}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            remote, state = fields[2], fields[3]
            if int(remote.rsplit(":", 1)[1], 16) == server_port and state in ("01", "08"):
                states.append(state)
    return states


async def test_a_keep_alive_connection_the_server_closed_is_not_a_failure() -> None:
    pieces: list[Piece] = [GOOD, 0.05, None]
    async with serve(lambda n: pieces) as (scripted, url), make_client(None, 5.0) as client:
        port = httpx.URL(url).port
        assert port is not None

        def closed() -> bool:
            return scripted.open == 0 and not client_ends_open(port)

        first = await send(client, url)
        # the server closes the idle connection; the client's pool has seen that close once
        # the client closed its end too (a reuse racing the close is another matter)
        await async_wait_for(closed, 5.0, poll_s=0.01, what="the idle connection closed")
        second = await send(client, url)
    assert measured_ok(first) and measured_ok(second), (first.error, second.error)
    assert scripted.connections == 2


@pytest.mark.parametrize(
    ("pieces", "cause", "text", "tokens"),
    [
        ([None], "disconnect", "ServerDisconnectedError", 0),
        ([b"HTTP/1.1 200 OK\r\ncontent-", None], "disconnect", "ServerDisconnectedError", 0),
        ([CHUNKED, token(" w1"), 0.05, b"5\r\nhel", None], "disconnect", "not completed", 1),
        ([CHUNKED, token(" w1"), USAGE_DONE[:20], 0.05, None], "disconnect", "not completed", 1),
        ([CHUNKED, token(" w1"), END], "disconnect", "without [DONE]", 1),
        ([b"HTTZ/1.1 200 OK\r\n\r\n", None], "disconnect", "Bad status line", 0),
        ([CHUNKED, token(" w1"), 5.0], "timeout", "", 1),
        ([b"HTTP/1.1 529 Busy\r\ncontent-length: 4\r\n\r\nbusy"], "busy_529", "HTTP 529: busy", 0),
        ([b"HTTP/1.1 503 No\r\ncontent-length: 4\r\n\r\ngone"], "http_5xx", "HTTP 503: gone", 0),
        ([b"HTTP/1.1 400 Bad\r\ncontent-length: 2\r\n\r\nno"], "http_4xx", "HTTP 400: no", 0),
    ],
    ids=[
        "closed-before-response",
        "closed-mid-head",
        "closed-mid-chunk",
        "closed-between-chunks",
        "ended-without-done",
        "malformed-status-line",
        "stalled-stream",
        "529",
        "503",
        "400",
    ],
)
async def test_a_failed_request_is_recorded_with_its_cause(
    pieces: list[Piece], cause: str, text: str, tokens: int
) -> None:
    async with serve(lambda n: pieces) as (_, url):
        record = await chat(url, timeout_s=0.4)
    assert (record.cause, len(record.token_times)) == (cause, tokens), record.error
    assert text in (record.error or "")
    assert record.end is not None
    if cause == "timeout":
        assert record.end - record.sent == pytest.approx(0.4, abs=0.15)


async def test_a_malformed_chunk_mid_stream_fails_within_the_request_timeout() -> None:
    # aiohttp 3.14 reports a bad chunk size in the first network read of a body, but after
    # that it waits for more data forever; the whole-request bound of `send_chat` ends it
    pieces: list[Piece] = [CHUNKED, token(" w1"), 0.05, b"zz\r\nhi\r\n", None]
    async with serve(lambda n: pieces) as (_, url):
        record = await chat(url, timeout_s=0.4)
    assert record.cause in ("timeout", "disconnect")
    assert record.end is not None and record.end - record.sent < 0.4 + 0.15


async def test_a_refused_connection_is_a_disconnect() -> None:
    record = await chat(loopback_url(free_port()))
    assert record.cause == "disconnect"
    assert "Cannot connect" in (record.error or "")


async def test_a_connection_left_mid_stream_is_not_reused() -> None:
    error_event = chunk(b'event: error\ndata: {"message": "worker lost"}\n\n')

    def script(n: int) -> list[Piece]:
        if n == 0:  # stalls: the client times out
            return [CHUNKED, token(" w1"), 2.0, token(" w2"), USAGE_DONE, END]
        if n == 1:  # an error event, then more of the body the client does not read
            return [CHUNKED, error_event, 0.05, token(" w2"), USAGE_DONE, END]
        return [GOOD]

    async with serve(script) as (scripted, url), make_client(None, 5.0) as client:
        stalled = await send(client, url, timeout_s=0.3)
        errored = await send(client, url)
        good = await send(client, url)
    assert (stalled.cause, errored.cause) == ("timeout", "stream_error")
    assert measured_ok(good), good.error
    assert scripted.connections == 3
