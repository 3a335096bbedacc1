"""Open a local HTML file in Debian's headless Chromium over the DevTools protocol (CDP).

`visit` loads one file with every non-local request failed (Fetch domain) and returns what the page
did: console errors, uncaught exceptions, network errors, blocked and attempted URLs, a screenshot,
and the JSON values of caller-given expressions. `is_blank` decodes a PNG with the standard library.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
ALLOWED_SCHEMES = ("file:", "data:", "blob:", "about:")
_DEVTOOLS = re.compile(rb"DevTools listening on ws://127\.0\.0\.1:(\d+)/")


@dataclass
class PageVisit:
    """What one page load did, in arrival order. Every list holds plain strings."""

    screenshot_png: bytes  # the whole page after load + network idle, before `values` ran
    console_errors: list[str]  # console.error/assert, uncaught exceptions, non-network Log errors
    network_errors: list[str]  # Log entries of source "network" ("<text> <url>"), e.g. blocked
    blocked_urls: list[str]  # requests failed by the helper: every scheme but ALLOWED_SCHEMES
    requested_urls: list[str]  # every Network.requestWillBeSent URL (the document included)
    values: dict[str, Any]  # expression key -> JSON value (None for undefined / non-JSON values)


@dataclass
class _Page:
    """The CDP connection to one page target and what its events recorded."""

    ws: aiohttp.ClientWebSocketResponse
    console_errors: list[str] = field(default_factory=list)
    network_errors: list[str] = field(default_factory=list)
    blocked_urls: list[str] = field(default_factory=list)
    requested_urls: list[str] = field(default_factory=list)
    stray_errors: list[str] = field(default_factory=list)  # failed fire-and-forget commands
    in_flight: set[str] = field(default_factory=set)
    last_activity: float = field(default_factory=time.monotonic)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 0

    async def send(self, method: str, **params: Any) -> int:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        return self.next_id

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; raise RuntimeError on a protocol error."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id + 1] = future
        await self.send(method, **params)
        return await future

    async def read(self) -> None:
        """Dispatch every message until the websocket closes; then fail what is still pending."""
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self.dispatch(json.loads(message.data))
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the DevTools websocket closed"))

    async def dispatch(self, msg: dict[str, Any]) -> None:
        if "id" in msg:
            future = self.pending.pop(msg["id"], None)
            if future is None:  # a fire-and-forget Fetch command: keep its error for the end
                self.stray_errors += [str(msg["error"])] if "error" in msg else []
            elif "error" in msg:
                future.set_exception(RuntimeError(f"CDP error: {msg['error']}"))
            else:
                future.set_result(msg.get("result", {}))
            return
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            text = " ".join(_describe(arg) for arg in p.get("args", []))
            prefix = "Assertion failed: " if p["type"] == "assert" else ""
            self.console_errors.append(prefix + text)
        elif method == "Runtime.exceptionThrown":
            details = p["exceptionDetails"]
            description = details.get("exception", {}).get("description", "")
            self.console_errors.append(f"{details.get('text', '')} {description}".strip())
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            entry = p["entry"]
            text = f"{entry['text']} {entry.get('url', '')}".strip()
            network = entry["source"] == "network"
            (self.network_errors if network else self.console_errors).append(text)
        elif method == "Network.requestWillBeSent":
            self.requested_urls.append(p["request"]["url"])
            self.in_flight.add(p["requestId"])
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self.in_flight.discard(p["requestId"])
        elif method == "Fetch.requestPaused":
            url, request_id = p["request"]["url"], p["requestId"]
            if url.startswith(ALLOWED_SCHEMES):
                await self.send("Fetch.continueRequest", requestId=request_id)
            else:
                self.blocked_urls.append(url)
                await self.send(
                    "Fetch.failRequest", requestId=request_id, errorReason="BlockedByClient"
                )
        elif method == "Page.loadEventFired":
            self.loaded.set()
        if method is not None and method.startswith(("Network.", "Fetch.")):
            self.last_activity = time.monotonic()


def _describe(arg: dict[str, Any]) -> str:
    """A console argument as text: strings bare, other values JSON or their description."""
    if "value" in arg:
        value = arg["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return str(arg.get("unserializableValue", arg.get("description", arg.get("type", ""))))


@contextlib.contextmanager
def _chromium(profile: Path, deadline: float) -> Iterator[int]:
    """Start headless Chromium on `profile` (created if missing, never removed);
    yield its DevTools port; then give it 5 s to exit, SIGTERM its process group, 5 s more,
    SIGKILL."""
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--window-size=1280,2000",
        "about:blank",
    ]  # fmt: skip
    # stderr goes to an anonymous file, read with pread: no pipe to drain, nothing left on disk.
    found: re.Match[bytes] | None = None
    with tempfile.TemporaryFile() as stderr, subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        start_new_session=True,
    ) as proc:  # fmt: skip
        try:
            while not (found := _DEVTOOLS.search(os.pread(stderr.fileno(), 1 << 20, 0))):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = os.pread(stderr.fileno(), 1 << 20, 0).decode(errors="replace")
                    raise AssertionError(
                        f"chromium did not report its DevTools port (exit code {proc.poll()});"
                        f" stderr tail:\n" + "\n".join(tail.splitlines()[-30:])
                    )
                time.sleep(0.05)
            yield int(found.group(1))
        finally:  # `visit` sent Browser.close once connected: a clean exit leaves no locks
            steps: list[tuple[int, float | None]] = [(0, 5.0)] if found else []
            for sig, wait in [*steps, (signal.SIGTERM, 5.0), (signal.SIGKILL, None)]:
                if sig:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=wait)
                    break


async def _visit(
    port: int, uri: str, expressions: dict[str, str], settle_s: float, deadline: float
) -> PageVisit:
    async with aiohttp.ClientSession() as http:
        pages: list[str] = []
        while not pages:  # the first tab may show up a moment after the port line
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [
                    t["webSocketDebuggerUrl"] for t in await response.json() if t["type"] == "page"
                ]
            await asyncio.sleep(0 if pages else 0.05)
        async with http.ws_connect(pages[0], max_msg_size=0) as ws:
            page = _Page(ws)
            reader = asyncio.create_task(page.read())
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    return await _drive(page, reader, uri, expressions, settle_s)
            except TimeoutError:
                raise AssertionError(
                    f"{uri} did not load and settle in time: loaded={page.loaded.is_set()},"
                    f" requests in flight={sorted(page.in_flight)}"
                ) from None
            finally:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await page.send("Browser.close")
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader


async def _drive(
    page: _Page, reader: asyncio.Task[None], uri: str, expressions: dict[str, str], settle: float
) -> PageVisit:
    for domain in ("Runtime", "Log", "Network", "Page"):
        await page.call(f"{domain}.enable")
    await page.call("Fetch.enable", patterns=[{"urlPattern": "*"}])
    navigation = await page.call("Page.navigate", url=uri)
    if "errorText" in navigation:
        raise AssertionError(f"navigating to {uri} failed: {navigation['errorText']}")
    await page.loaded.wait()
    while page.in_flight or time.monotonic() - page.last_activity < settle:
        if reader.done():
            raise ConnectionError("the DevTools websocket closed before the page settled")
        await asyncio.sleep(0.05)
    shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    values: dict[str, Any] = {}
    for key, expression in expressions.items():
        result = await page.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            thrown = result["exceptionDetails"].get("exception", {}).get("description")
            raise AssertionError(
                f"expression {key!r} threw: {thrown or result['exceptionDetails']}"
            )
        values[key] = result["result"].get("value")
    if page.stray_errors:
        raise RuntimeError(f"Fetch commands failed: {page.stray_errors}")
    return PageVisit(
        base64.b64decode(shot["data"]), page.console_errors, page.network_errors,
        page.blocked_urls, page.requested_urls, values,
    )  # fmt: skip


def visit(
    path: Path,
    profile: Path,
    expressions: dict[str, str] | None = None,
    *,
    timeout_s: float = 60.0,
    settle_s: float = 0.5,
) -> PageVisit:
    """Load `path` in a fresh headless Chromium using the profile directory `profile`.

    Only file:, data:, blob: and about: requests proceed; every other one is failed (and listed in
    `blocked_urls`) before it leaves the browser. Returns after the load event plus `settle_s` of
    network quiet: screenshot first, then each of `expressions` evaluated in order (promises
    awaited). Raises FileNotFoundError for a missing `path`, AssertionError when Chromium does not
    start, navigation fails, an expression throws or `timeout_s` (launch included) runs out.
    Chromium is always stopped; nothing is deleted (the profile stays for the caller).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(path)
    deadline = time.monotonic() + timeout_s
    with _chromium(Path(profile), deadline) as port:
        return asyncio.run(_visit(port, path.as_uri(), expressions or {}, settle_s, deadline))


def png_rows(png: bytes) -> tuple[int, Iterator[bytes]]:
    """(bytes per pixel, unfiltered rows) of an 8-bit RGB/RGBA non-interlaced PNG.

    The header is checked at once (ValueError for anything else); the rows decode lazily.
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, header, idat = 8, b"", bytearray()
    while pos + 12 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        crc = png[pos + 8 + length : pos + 12 + length]
        if len(crc) != 4 or zlib.crc32(kind + data) != int.from_bytes(crc, "big"):
            raise ValueError(f"truncated or corrupt {kind!r} chunk")
        header, pos = data if kind == b"IHDR" else header, pos + 12 + length
        idat += data if kind == b"IDAT" else b""
        if kind == b"IEND":
            break
    else:
        raise ValueError("PNG without IEND")
    if len(header) != 13:
        raise ValueError("PNG without a valid IHDR")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace or not width or not height:
        raise ValueError(
            f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
        )
    try:
        raw = zlib.decompress(bytes(idat))
    except zlib.error as error:
        raise ValueError(f"bad PNG image data: {error}") from None
    bpp = 3 if colour == 2 else 4
    if len(raw) != height * (width * bpp + 1):
        raise ValueError("PNG image data does not match its size")
    return bpp, _unfilter(raw, width * bpp, height, bpp)


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> Iterator[bytes]:
    prev = bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        if kind > 4:
            raise ValueError(f"unknown PNG filter type {kind}")
        if kind == 0 or (kind == 2 and line.count(0) == stride):
            row = line if kind == 0 else prev  # None, and Up adding nothing: no per-byte work
        else:
            out = bytearray(line)
            for i in range(stride):
                (a, c), b = (out[i - bpp], prev[i - bpp]) if i >= bpp else (0, 0), prev[i]
                guess = (a, b, (a + b) // 2)[kind - 1] if kind < 4 else _paeth(a, b, c)
                out[i] = (out[i] + guess) & 0xFF
            row = bytes(out)
        yield row
        prev = row


def _paeth(a: int, b: int, c: int) -> int:
    """The PNG Paeth predictor of left `a`, up `b`, up-left `c`."""
    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def is_blank(png: bytes) -> bool:
    """True when every pixel of the PNG has the same colour (alpha included).

    ValueError for a PNG that is not 8-bit RGB/RGBA non-interlaced, or is corrupt; stops decoding
    at the first row that differs from the first pixel.
    """
    bpp, rows = png_rows(png)
    uniform: bytes | None = None
    for row in rows:
        uniform = uniform or row[:bpp] * (len(row) // bpp)
        if row != uniform:
            return False
    return True
