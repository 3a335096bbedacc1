"""A lean HTTP/1.1 transport for httpx over asyncio streams. Does I/O: TCP sockets.

httpx's default transport (httpcore + anyio + h11) costs about 0.3 ms of CPU per streamed
chunk on a small VM; a workload client timing every token of hundreds of streams per second
spends most of its core there. `StreamsTransport` plugs into `httpx.AsyncClient` (httpx's
one-method transport interface) for plain `http://` URLs: keep-alive connections per host,
request written in one call, response body yielded as it arrives (chunked, sized or
until close). Errors are httpx's own (`ConnectError`, `RemoteProtocolError`, `ReadError`), so
callers see the same exceptions as with the default transport. Timeouts are not applied here:
the runner bounds each whole request itself. A reused keep-alive connection that turns out to
be closed before any response byte is retried once on a fresh connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

READ_SIZE = 65536
HEAD_LIMIT = 65536


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class StreamsTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for `http://` URLs with at most `max_idle` idle connections per host."""

    def __init__(self, max_idle: int = 32) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"StreamsTransport serves http:// only: {request.url}")
        host = request.url.host
        port = request.url.port or 80
        body = await request.aread()
        head = _request_head(request, len(body))
        idle = self._idle.setdefault((host, port), [])
        while True:
            reused = bool(idle)
            conn = idle.pop() if reused else await _connect(host, port)
            try:
                conn.writer.write(head + body)
                status, headers = await _read_head(conn.reader)
            except (_NoResponse, ConnectionError) as exc:
                conn.close()
                if reused:
                    continue  # a stale keep-alive connection: try the next or a fresh one
                if isinstance(exc, httpx.RemoteProtocolError):
                    raise
                raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
            except OSError as exc:
                conn.close()
                raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                conn.close()
                raise
            stream = _Body(self, (host, port), conn, headers, request.method == "HEAD")
            return httpx.Response(
                status, headers=headers, stream=stream, extensions={"http_version": b"HTTP/1.1"}
            )

    def _release(self, key: tuple[str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < self.max_idle and not conn.reader.at_eof():
            idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


async def _connect(host: str, port: int) -> _Connection:
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
    except OSError as exc:
        raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
    return _Connection(reader, writer)


def _request_head(request: httpx.Request, length: int) -> bytes:
    target = request.url.raw_path
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), target)]
    for name, value in request.headers.raw:
        if name.lower() not in (b"content-length", b"transfer-encoding"):
            lines.append(name + b": " + value)
    if length or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"content-length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _NoResponse(httpx.RemoteProtocolError):
    """The connection closed before any byte of a response (safe to retry on a new one)."""


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]]:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _NoResponse("server closed the connection without a response") from exc
        raise httpx.RemoteProtocolError("server closed the connection mid-head") from exc
    except asyncio.LimitOverrunError as exc:
        raise httpx.RemoteProtocolError("response head too large") from exc
    status_line, *header_lines = raw[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line {status_line[:80]!r}")
    headers = []
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


class _Body(httpx.AsyncByteStream):
    """The response body; returns the connection to the pool when read to its end."""

    def __init__(
        self,
        transport: StreamsTransport,
        key: tuple[str, int],
        conn: _Connection,
        headers: list[tuple[bytes, bytes]],
        head_only: bool,
    ) -> None:
        self.transport = transport
        self.key = key
        self.conn: _Connection | None = conn
        values = {name.lower(): value.lower() for name, value in headers}
        self.chunked = b"chunked" in values.get(b"transfer-encoding", b"")
        length = values.get(b"content-length")
        self.length = 0 if head_only else (int(length) if length is not None else None)
        self.keep_alive = values.get(b"connection") != b"close" and (
            self.chunked or self.length is not None
        )
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.conn is None:
            return
        reader = self.conn.reader
        try:
            if self.chunked:
                async for part in _chunked(reader):
                    yield part
            elif self.length is not None:
                remaining = self.length
                while remaining:
                    data = await reader.read(min(remaining, READ_SIZE))
                    if not data:
                        raise httpx.RemoteProtocolError(
                            "peer closed connection without sending complete message body"
                        )
                    remaining -= len(data)
                    yield data
            else:
                while data := await reader.read(READ_SIZE):
                    yield data
            self.complete = True
        except OSError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if self.complete and self.keep_alive:
            self.transport._release(self.key, conn)
        else:
            conn.close()


async def _chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Decode `Transfer-Encoding: chunked`: after each read, yield every complete chunk's
    payload at once (one yield per network read, not per chunk)."""
    buffer = b""
    while True:
        parts: list[bytes] = []
        pos = 0
        finished = False
        while (end := buffer.find(b"\r\n", pos)) >= 0:
            try:
                size = int(buffer[pos:end].split(b";", 1)[0], 16)
            except ValueError as exc:
                raise httpx.RemoteProtocolError(f"bad chunk size {buffer[pos:end][:40]!r}") from exc
            if size == 0:
                finished = buffer.find(b"\r\n\r\n", end) >= 0  # after optional trailers
                break
            if len(buffer) < end + 2 + size + 2:
                break
            parts.append(buffer[end + 2 : end + 2 + size])
            pos = end + 2 + size + 2
        buffer = buffer[pos:]
        if parts:
            yield b"".join(parts)
        if finished:
            return
        buffer += await _more(reader)


async def _more(reader: asyncio.StreamReader) -> bytes:
    data = await reader.read(READ_SIZE)
    if not data:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )
    return data
