"""tests/browser.py: its PNG decoder on hand-built PNGs, `visit` on real headless Chromium."""

from __future__ import annotations

import base64
import http.server
import os
import random
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM, is_blank, png_rows, visit

needs_chromium = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no {CHROMIUM}")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filtered(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    """PNG filter `kind` applied to `row` (an encoder, written independently of the decoder)."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
        out.append((x - (0, a, b, (a + b) // 2, paeth, 0)[kind]) & 0xFF)  # 5: invalid
    return bytes(out)


def _png(
    pixels: list[list[tuple[int, ...]]],
    kinds: list[int],
    *,
    depth: int = 8,
    colour: int | None = None,
    interlace: int = 0,
) -> bytes:
    """A PNG of `pixels` (rows of RGB or RGBA tuples), row y filtered with kinds[y % len(kinds)];
    the image data is split over two IDAT chunks."""
    bpp = len(pixels[0][0])
    rows = [bytes(v for px in row for v in px) for row in pixels]
    raw, prev = bytearray(), bytes(len(rows[0]))
    for y, row in enumerate(rows):
        kind = kinds[y % len(kinds)]
        raw += bytes([kind]) + _filtered(kind, row, prev, bpp)
        prev = row
    data = zlib.compress(bytes(raw))
    colour = (6 if bpp == 4 else 2) if colour is None else colour
    header = struct.pack(">IIBBBBB", len(rows[0]) // bpp, len(rows), depth, colour, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data[:5])
        + _chunk(b"IDAT", data[5:]) + _chunk(b"IEND", b"")
    )  # fmt: skip


def _image(bpp: int, levels: int, width: int = 16, height: int = 8) -> list[list[tuple[int, ...]]]:
    """Seeded noise: few `levels` make predictor ties (Paeth tie-breaks), 256 makes wrap-around."""
    rng = random.Random(levels * 10 + bpp)
    return [[tuple(rng.randrange(levels) for _ in range(bpp)) for _ in range(width)]
            for _ in range(height)]  # fmt: skip


@pytest.mark.parametrize("levels", [4, 256])
@pytest.mark.parametrize("bpp", [3, 4])
@pytest.mark.parametrize("kinds", [[0], [1], [2], [3], [4], [4, 3, 2, 1, 0]])
def test_png_rows_undo_every_filter(bpp: int, kinds: list[int], levels: int) -> None:
    pixels = _image(bpp, levels)
    decoded_bpp, rows = png_rows(_png(pixels, kinds))
    assert decoded_bpp == bpp
    assert list(rows) == [bytes(v for px in row for v in px) for row in pixels]


@pytest.mark.parametrize("bpp", [3, 4])
@pytest.mark.parametrize("kinds", [[0], [1], [2], [3], [4]])
def test_is_blank_on_hand_built_pngs(bpp: int, kinds: list[int]) -> None:
    colour = (200, 10, 30, 255)[:bpp]
    uniform = [[colour] * 3 for _ in range(3)]
    assert is_blank(_png(uniform, kinds))
    for y, x in [(0, 1), (1, 1), (2, 2)]:
        one_off = [list(row) for row in uniform]
        one_off[y][x] = (200, 10, 31, 255)[:bpp]
        assert not is_blank(_png(one_off, kinds)), (y, x)
    if bpp == 4:  # alpha counts as colour
        uniform[2][2] = (200, 10, 30, 254)
        assert not is_blank(_png(uniform, kinds))


def test_is_blank_two_by_two() -> None:
    assert is_blank(_png([[(255, 255, 255)] * 2] * 2, [0]))
    assert not is_blank(_png([[(255, 255, 255)] * 2, [(255, 255, 255), (0, 0, 0)]], [0]))


def test_is_blank_rejects_what_it_cannot_decode() -> None:
    good = _png([[(1, 2, 3)] * 2] * 2, [0])
    with pytest.raises(ValueError, match="not a PNG"):
        is_blank(b"GIF89a" + good[6:])
    with pytest.raises(ValueError, match="unsupported"):
        is_blank(_png([[(1, 2, 3)] * 2] * 2, [0], depth=16))
    with pytest.raises(ValueError, match="unsupported"):
        is_blank(_png([[(1, 2, 3)] * 2] * 2, [0], interlace=1))
    with pytest.raises(ValueError, match="unsupported"):
        is_blank(_png([[(1, 2, 3)] * 2] * 2, [0], colour=3))  # palette
    for cut in range(len(good)):  # truncated anywhere
        with pytest.raises(ValueError):
            is_blank(good[:cut])
    corrupt = bytearray(good)
    corrupt[45] ^= 0xFF  # inside the first IDAT: its CRC no longer matches
    with pytest.raises(ValueError, match="corrupt"):
        is_blank(bytes(corrupt))
    with pytest.raises(ValueError, match="filter type"):
        is_blank(_png([[(1, 2, 3)] * 2] * 2, [5]))


def test_visit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        visit(tmp_path / "absent.html", tmp_path / "profile")
    assert not (tmp_path / "profile").exists()


def test_visit_reports_a_browser_that_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'no display here' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr("browser.CHROMIUM", str(fake))
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    with pytest.raises(AssertionError, match=r"(?s)exit code 3.*no display here"):
        visit(page, tmp_path / "profile", timeout_s=10)


def _write(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    page = tmp_path / name
    page.write_text(f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>")
    return page


def _processes_using(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and marker in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


@pytest.mark.integration
@needs_chromium
def test_clean_page_reports_nothing_and_chromium_is_gone(tmp_path: Path) -> None:
    page = _write(tmp_path, '<p>fine</p><script>console.log("a"); console.warn("b");</script>')
    profile = tmp_path / "profile"
    result = visit(page, profile)
    assert result.console_errors == []
    assert result.network_errors == []
    assert result.blocked_urls == []
    assert result.requested_urls == [page.as_uri()]
    assert result.values == {}
    assert profile.is_dir()  # left for the caller
    assert _processes_using(str(profile)) == []
    # Browser.close made it exit cleanly: no singleton lock (nor its /tmp socket dir) left behind
    assert not os.path.lexists(profile / "SingletonLock")


@pytest.mark.integration
@needs_chromium
def test_console_error_and_assert_are_reported(tmp_path: Path) -> None:
    page = _write(
        tmp_path, '<script>console.error("x", 1, {"a": 2}); console.assert(1 > 2, "no")</script>'
    )
    result = visit(page, tmp_path / "profile")
    assert result.console_errors == ["x 1 Object", "Assertion failed: no"]
    assert result.network_errors == []


@pytest.mark.integration
@needs_chromium
def test_uncaught_exception_is_reported(tmp_path: Path) -> None:
    page = _write(tmp_path, '<script>throw new Error("boom")</script>')
    result = visit(page, tmp_path / "profile")
    assert len(result.console_errors) == 1, result.console_errors
    assert result.console_errors[0].startswith("Uncaught Error: boom")
    assert page.as_uri() in result.console_errors[0]  # the stack names the file


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
        _Counting.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (which the host-resolver rules do not map away)."""
    _Counting.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.integration
@needs_chromium
def test_remote_requests_are_blocked_and_not_fetched(tmp_path: Path, local_server: str) -> None:
    page = _write(
        tmp_path,
        '<img src="http://example.com/a.png" onerror="window.imgFailed = true">'
        f'<script>fetch("{local_server}/data.json").then(() => window.fetched = "yes",'
        " e => window.fetched = String(e))</script>",
    )
    expressions = {"img": "window.imgFailed === true", "fetch": "window.fetched"}
    result = visit(page, tmp_path / "profile", expressions)
    remote = ["http://example.com/a.png", f"{local_server}/data.json"]
    assert sorted(result.blocked_urls) == sorted(remote)
    assert set(remote) < set(result.requested_urls)
    assert _Counting.hits == []  # the loopback request never reached the server
    assert result.values == {"img": True, "fetch": "TypeError: Failed to fetch"}
    assert len(result.network_errors) == 2, result.network_errors
    assert all("ERR_BLOCKED_BY_CLIENT" in error for error in result.network_errors)
    assert result.console_errors == []


@pytest.mark.integration
@needs_chromium
def test_local_schemes_are_not_blocked(tmp_path: Path) -> None:
    (tmp_path / "pic.png").write_bytes(_png([[(9, 9, 9)] * 3] * 2, [0]))
    page = _write(
        tmp_path,
        '<img id="file" src="pic.png"><img id="data" src="data:image/png;base64,'
        + base64.b64encode(_png([[(1, 2, 3)] * 4], [1])).decode()
        + '">',
    )
    expressions = {
        "file": "document.getElementById('file').naturalWidth",
        "data": "document.getElementById('data').naturalWidth",
        "blob": "fetch(URL.createObjectURL(new Blob(['hi']))).then(r => r.text())",
    }
    result = visit(page, tmp_path / "profile", expressions)
    assert result.values == {"file": 3, "data": 4, "blob": "hi"}
    assert result.blocked_urls == []
    assert (tmp_path / "pic.png").as_uri() in result.requested_urls


@pytest.mark.integration
@needs_chromium
def test_screenshots_of_blank_and_coloured_pages(tmp_path: Path) -> None:
    blank = visit(_write(tmp_path, "", "blank.html"), tmp_path / "profile")
    assert blank.screenshot_png.startswith(b"\x89PNG")
    width, height = struct.unpack(">II", blank.screenshot_png[16:24])
    assert width == 1280 and height > 1000
    assert is_blank(blank.screenshot_png)
    div = '<div style="width: 600px; height: 400px; background: #c03"></div>'
    coloured = visit(_write(tmp_path, div, "coloured.html"), tmp_path / "profile")
    assert not is_blank(coloured.screenshot_png)


@pytest.mark.integration
@needs_chromium
def test_evaluate_returns_json_values(tmp_path: Path) -> None:
    page = _write(tmp_path, '<p id="p">hello</p>')
    expressions = {
        "sum": "1 + 2",
        "object": "({a: [1, 'b', null, true], n: 1.5})",
        "promise": "new Promise(resolve => setTimeout(() => resolve('late'), 50))",
        "dom": "document.getElementById('p').textContent + ' ' + document.title",
        "undefined": "undefined",
    }
    result = visit(page, tmp_path / "profile", expressions)
    assert result.values == {
        "sum": 3,
        "object": {"a": [1, "b", None, True], "n": 1.5},
        "promise": "late",
        "dom": "hello t",
        "undefined": None,
    }
    with pytest.raises(AssertionError, match="'bad' threw: ReferenceError: nope is not defined"):
        visit(page, tmp_path / "profile", {"bad": "nope.x"})
    assert _processes_using(str(tmp_path / "profile")) == []


@pytest.mark.integration
@needs_chromium
def test_a_page_that_never_settles_times_out(tmp_path: Path) -> None:
    page = _write(tmp_path, "<script>setInterval(() => fetch('data:,x'), 100)</script>")
    started = time.monotonic()
    with pytest.raises(AssertionError, match="did not load and settle in time: loaded=True"):
        visit(page, tmp_path / "profile", timeout_s=5)
    assert time.monotonic() - started < 15
    assert _processes_using(str(tmp_path / "profile")) == []
