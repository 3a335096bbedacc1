"""`dynamo-tune metrics`, the real command (`main([...])`)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from fixtures.prometheus import TTFT_BUCKETS, DynamoExporter, wait_scraped_after

from dynamo_tune.cli.main import main
from dynamo_tune.deploy.prometheus import PrometheusServer
from dynamo_tune.net import free_port, loopback_url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["metrics", *args])
    except SystemExit as exc:  # argparse-level errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((), "one of the arguments --prometheus-url --scrape is required"),
        (("--prometheus-url", "http://127.0.0.1:9", "--start", "x"), "invalid float value"),
        (("--prometheus-url", "localhost:9090"), "--prometheus-url: an http(s)://host"),
        (("--prometheus-url", "http://127.0.0.1:9", "--last", "5 minutes"), "--last: a duration"),
        (
            ("--prometheus-url", "http://127.0.0.1:9", "--start", "20", "--end", "10"),
            "--end must be after --start",
        ),  # fmt: skip
        (("--prometheus-url", "http://127.0.0.1:9", "--start", "20"), "--start and --end go"),
        (
            (
                "--prometheus-url",
                "http://127.0.0.1:9",
                "--last",
                "1m",
                "--start",
                "1",
                "--end",
                "2",
            ),
            "either --start/--end or --last",
        ),  # fmt: skip
        (("--prometheus-url", "http://127.0.0.1:9", "--kv-weight", "0.9"), "== 1 must hold"),
        (
            ("--prometheus-url", "http://127.0.0.1:9", "--ttft-target", "0"),
            "--ttft-target: Input should be greater than 0",
        ),
        (
            ("--prometheus-url", "http://127.0.0.1:9", "--itl-weight", "-0.2"),
            "--itl-weight: Input should be greater than or equal to 0",
        ),
        (("--scrape", "http://127.0.0.1:9/metrics", "--start", "1", "--end", "2"), "use --last"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], reason: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert reason.replace("`", "") in err.replace("`", "")


def test_unreachable_prometheus_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = loopback_url(free_port())  # a closed port
    code, out, err = run(capsys, "--prometheus-url", url, "--last", "1m")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert f"prometheus at {url} is unreachable" in err and "Traceback" not in err


def test_unreachable_scrape_endpoint_exits_2_before_waiting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = loopback_url(free_port(), "/metrics")  # a closed port
    began = time.monotonic()
    code, out, err = run(capsys, "--scrape", url, "--last", "1m")
    assert time.monotonic() - began < 10  # not the minute of the window
    assert code == 2 and out == ""
    assert err.strip() == (
        f"dynamo-tune: error: no /metrics endpoint answered: {url}: "
        "ConnectError: All connection attempts failed"
    )


def test_help_shows_the_score_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    flat = " ".join(out.split())
    for flag, default in (("--kv-weight W", "0.4"), ("--ttft-weight W", "0.4"),
                          ("--itl-weight W", "0.2"), ("--ttft-target S", "0.5"),
                          ("--itl-target S", "0.05")):  # fmt: skip
        assert flag in flat
        assert f"(default {default})" in flat.rsplit(flag, 1)[1].split(" --", 1)[0], flag


def _feed_window(prometheus: PrometheusServer, exporter: DynamoExporter) -> tuple[float, float]:
    asyncio.run(wait_scraped_after(prometheus.url, time.time()))
    start = time.time()
    for i in range(20):
        exporter.feed(f"w{i % 2}", 0.03 + i * 0.01, [0.01, 0.02], 1000, 400)
    end = time.time()
    asyncio.run(wait_scraped_after(prometheus.url, end))
    return start, end


@pytest.mark.integration
def test_text_output_names_metrics_sources_and_score(
    capsys: pytest.CaptureFixture[str],
    prometheus: PrometheusServer,
    dynamo_exporter: DynamoExporter,
) -> None:
    start, end = _feed_window(prometheus, dynamo_exporter)
    code, out, err = run(
        capsys, "--prometheus-url", prometheus.url, "--start", str(start), "--end", str(end)
    )
    assert code == 0, err
    assert "KV efficiency  0.4000  (source: frontend)" in out
    assert "TTFT p50/p95/p99" in out and "ITL  p50/p95/p99" in out
    # 0.4*0.4 + 0.4*1 + 0.2*1: every latency is far below its target
    assert "score  0.7600" in out


@pytest.mark.integration
def test_json_output(
    capsys: pytest.CaptureFixture[str],
    prometheus: PrometheusServer,
    dynamo_exporter: DynamoExporter,
) -> None:
    start, end = _feed_window(prometheus, dynamo_exporter)
    code, out, err = run(
        capsys, "--prometheus-url", prometheus.url, "--start", str(start), "--end", str(end),
        "--json", "--kv-weight", "0.2", "--ttft-weight", "0.6", "--ttft-target", "0.05",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    # TTFTs 0.03, 0.04 .. 0.22 s: 8 are <= 0.1 and all 20 <= 0.22 (Dynamo's buckets); rank
    # 0.95 * 20 = 19 lies 11 of 12 into (0.1, 0.22]: 0.1 + 0.12 * 11 / 12 = 0.21
    assert TTFT_BUCKETS[6:8] == (0.1, 0.22)
    p95 = 0.21
    assert payload["core"]["ttft_p95_seconds"] == pytest.approx(p95)
    assert payload["kv_efficiency_source"] == "frontend"
    assert payload["result"]["errors"] == []
    expected = 0.2 * 0.4 + 0.6 * min(1, 0.05 / p95) + 0.2 * 1
    assert payload["score"] == pytest.approx(expected)


@pytest.mark.integration
def test_scrape_mode_measures_the_last_duration(
    capsys: pytest.CaptureFixture[str], dynamo_exporter: DynamoExporter
) -> None:
    code, out, err = run(capsys, "--scrape", dynamo_exporter.url, "--last", "1s", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["result"]["backend"] == "scrape"
    assert payload["result"]["window_end"] - payload["result"]["window_start"] >= 1.0
    assert payload["score"] is None  # no traffic in that second: incomplete, not an error
