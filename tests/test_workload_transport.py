"""StreamsTransport against a real loopback TCP server the test scripts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from dynamo_tune.net import free_port, loopback_url
from dynamo_tune.workload.transport import StreamsTransport

Script = Callable[[int], list[bytes | float | None]]
"""Given the connection's request number, the pieces to send: bytes, a pause, None = close."""


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.handlers: list[asyncio.Task[None]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self.handlers.append(task)  # type: ignore[arg-type]
        try:
            for n in range(1000):
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                for piece in self.script(n):
                    if piece is None:
                        writer.close()
                        return
                    if isinstance(piece, float):
                        await writer.drain()
                        await asyncio.sleep(piece)
                    else:
                        writer.write(piece)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


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


async def post(client: httpx.AsyncClient, url: str, body: bytes = b'{"a": 1}') -> list[bytes]:
    async with client.stream("POST", url + "/v1/chat/completions", content=body) as response:
        assert response.status_code == 200
        return [part async for part in response.aiter_bytes()]


async def test_chunked_body_split_at_awkward_places_and_keep_alive() -> None:
    body = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
    pieces: list[bytes | float | None] = [CHUNKED, body[:2], 0.02, body[2:9], 0.02, body[9:]]
    async with (
        serve(lambda n: pieces) as (scripted, url),
        httpx.AsyncClient(transport=StreamsTransport()) as client,
    ):
        for _ in range(3):
            assert b"".join(await post(client, url)) == b"hello, world"
    assert scripted.connections == 1  # reused
    first = scripted.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"content-length: 8\r\n" in first and first.endswith(b'\r\n\r\n{"a": 1}')


async def test_each_network_read_is_yielded_as_it_arrives() -> None:
    pieces: list[bytes | float | None] = [
        CHUNKED,
        b"3\r\nabc\r\n",
        0.05,
        b"3\r\ndef\r\n3\r\nghi\r\n",
        0.05,
        b"0\r\n\r\n",
    ]
    async with (
        serve(lambda n: pieces) as (_, url),
        httpx.AsyncClient(transport=StreamsTransport()) as client,
    ):
        assert await post(client, url) == [b"abc", b"defghi"]


async def test_content_length_and_read_until_close() -> None:
    def script(n: int) -> list[bytes | float | None]:
        if n == 0:
            return [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab", 0.01, b"cd"]
        return [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-eof", None]

    async with (
        serve(script) as (scripted, url),
        httpx.AsyncClient(transport=StreamsTransport()) as client,
    ):
        assert b"".join(await post(client, url)) == b"abcd"
        assert b"".join(await post(client, url)) == b"until-eof"
        assert b"".join(await post(client, url)) == b"abcd"  # the closed one was not reused
    assert scripted.connections == 2


async def test_a_stale_keep_alive_connection_is_retried_on_a_fresh_one() -> None:
    pieces: list[bytes | float | None] = [CHUNKED, b"2\r\nok\r\n0\r\n\r\n", 0.05, None]
    async with (
        serve(lambda n: pieces) as (scripted, url),
        httpx.AsyncClient(transport=StreamsTransport()) as client,
    ):
        assert b"".join(await post(client, url)) == b"ok"
        await asyncio.sleep(0.1)  # the server has closed the idle connection by now
        assert b"".join(await post(client, url)) == b"ok"
    assert scripted.connections == 2


async def test_cut_body_and_refused_connection_are_httpx_errors() -> None:
    pieces: list[bytes | float | None] = [CHUNKED, b"5\r\nhel", None]
    async with (
        serve(lambda n: pieces) as (_, url),
        httpx.AsyncClient(transport=StreamsTransport()) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            await post(client, url)
        with pytest.raises(httpx.ConnectError):
            await post(client, loopback_url(free_port()))
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("https://127.0.0.1:1/")


async def test_status_and_headers_reach_the_response() -> None:
    pieces: list[bytes | float | None] = [
        b"HTTP/1.1 429 Too Many Requests\r\nX-Why: busy\r\ncontent-length: 4\r\n\r\nslow"
    ]
    async with (
        serve(lambda n: pieces) as (_, url),
        httpx.AsyncClient(transport=StreamsTransport()) as client,
    ):
        response = await client.get(url + "/x")
    assert (response.status_code, response.headers["x-why"], response.text) == (429, "busy", "slow")
