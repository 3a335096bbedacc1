"""`dynamo-tune metrics` on the paths a new user hits: a URL that is no Prometheus, what
`--scrape` waits for, a window the source did not measure, and a reader that closes stdout.

The servers are real: `http.server` on 127.0.0.1 in a thread, and the session's
`dynamo_exporter` (a real `/metrics` endpoint).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fixtures.prometheus import DynamoExporter
from test_metrics_cli import run

from dynamo_tune.net import LOOPBACK, free_port, loopback_url

HTML = b"<!DOCTYPE html>\n<html><body>Not Found</body></html>\n"


def _html_server(status: int) -> Iterator[str]:
    """A web server that answers every GET with `status` and an HTML page: its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(HTML)))
            self.end_headers()
            self.wfile.write(HTML)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield loopback_url(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def not_found_server() -> Iterator[str]:
    yield from _html_server(404)


@pytest.fixture
def html_server() -> Iterator[str]:
    yield from _html_server(200)


@pytest.mark.parametrize("server", ["not_found_server", "html_server"])
def test_a_url_that_is_no_prometheus_exits_2_with_one_line_at_once(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, server: str
) -> None:
    url = request.getfixturevalue(server)
    status = 404 if server == "not_found_server" else 200
    began = time.monotonic()
    code, out, err = run(capsys, "--prometheus-url", url, "--last", "1m")
    assert time.monotonic() - began < 5  # it used to wait ~18 s for a scrape it cannot see
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        f"dynamo-tune: error: {url} is not a Prometheus: HTTP {status} from {url}/api/v1/query "
    ), err


def test_a_scrape_url_answering_404_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], not_found_server: str
) -> None:
    url = f"{not_found_server}/metrics"
    code, out, err = run(capsys, "--scrape", url, "--last", "1m")
    assert code == 2 and out == ""
    assert err == f"dynamo-tune: error: no /metrics endpoint answered: {url}: HTTP 404\n"


def test_scrape_says_on_stderr_how_long_it_measures_from_now(
    capsys: pytest.CaptureFixture[str], dynamo_exporter: DynamoExporter
) -> None:
    before = time.time()
    code, out, err = run(capsys, "--scrape", dynamo_exporter.url, "--last", "1s")
    after = time.time()
    assert code == 0, err
    assert out.startswith("dynamo-tune metrics (scrape, ")
    line = re.fullmatch(
        r"dynamo-tune: measuring /metrics from now for 1 s, until (\d\d:\d\d:\d\d) "
        r"\(--last sets how long\)\n",
        err,
    )
    assert line is not None, err
    # the end it names is 1 s after the start snapshot, taken between `before` and `after`
    ends = {
        time.strftime("%H:%M:%S", time.localtime(t)) for t in range(int(before) + 1, int(after) + 2)
    }
    assert line.group(1) in ends


def test_help_says_scrape_measures_the_next_duration(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    flat = " ".join(out.split())
    assert (
        "--last D window: the last D with --prometheus-url, the next D from now with --scrape "
        "(e.g. 30s, 5m; default 5m)"
    ) in flat
    assert "--start UNIX_S window start (with --prometheus-url)" in flat


def test_a_window_the_source_did_not_measure_is_printed_then_exits_1(
    capsys: pytest.CaptureFixture[str], dynamo_exporter: DynamoExporter
) -> None:
    closed = loopback_url(free_port(), "/metrics")  # never answers: not read at either edge
    code, out, err = run(capsys, "--scrape", dynamo_exporter.url, closed, "--last", "1s")
    assert code == 1
    assert out.startswith("dynamo-tune metrics (scrape, 1.0 s window)")
    assert err.splitlines()[-1] == (
        f"dynamo-tune: error: the window was not measured: /metrics not read at both window "
        f"edges: {closed}"
    )


@pytest.mark.parametrize("fmt", [["--json"], []])
def test_a_reader_that_closed_stdout_ends_it_quietly(
    dynamo_exporter: DynamoExporter, fmt: list[str]
) -> None:
    """As `metrics --json | head -1` once head has exited: the output finds no reader."""
    exe = Path(sys.executable).with_name("dynamo-tune")
    with subprocess.Popen(
        [str(exe), "metrics", "--scrape", dynamo_exporter.url, "--last", "1s", *fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the 1 s window ends
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141  # 128 + SIGPIPE, as a shell reports a process the signal ended
    assert err.startswith("dynamo-tune: measuring /metrics from now for 1 s, until ")
    assert len(err.splitlines()) == 1, err
