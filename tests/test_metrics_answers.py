"""Every Prometheus answer shape, through the real collector code (HTTP mocked with respx).

A real Prometheus will not produce these on demand (NaN, 503, malformed JSON, a refused
connection for one query only), so they are mocked; the happy path runs against a real
Prometheus in test_metrics_window.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from metrics_helpers import assert_unreachable

from dynamo_tune.metrics import (
    METRIC_QUERIES,
    METRIC_REGISTRY,
    DynamoMetricsCollector,
    DynamoMetricsConfig,
    PrometheusBackend,
    window_delta_query,
)
from dynamo_tune.metrics._promql import RESET_LABEL
from dynamo_tune.net import LOOPBACK, free_port, loopback_url

URL = "http://prometheus.test:9090"
Answer = httpx.Response | Exception | Callable[[], httpx.Response]


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data})


def vector(*values: str | tuple[dict[str, str], str]) -> httpx.Response:
    result = [
        {"metric": v[0], "value": [time.time(), v[1]]}
        if isinstance(v, tuple)
        else {"metric": {}, "value": [time.time(), v]}
        for v in values
    ]
    return ok({"resultType": "vector", "result": result})


def matrix(
    *series: list[tuple[float, str]], labels: dict[str, str] | None = None
) -> httpx.Response:
    result = [{"metric": labels or {}, "values": [list(p) for p in s]} for s in series]
    return ok({"resultType": "matrix", "result": result})


class FakePrometheus:
    """Answers per PromQL text; anything not listed is an empty vector / matrix."""

    def __init__(self, mock: respx.MockRouter) -> None:
        self.instant: dict[str, Answer] = {}
        self.ranged: dict[str, Answer] = {}
        self.calls: list[tuple[str, str]] = []
        mock.get(f"{URL}/api/v1/query").mock(side_effect=self._handle("instant", self.instant))
        mock.get(f"{URL}/api/v1/query_range").mock(side_effect=self._handle("range", self.ranged))

    def _handle(self, kind: str, table: dict[str, Answer]) -> Callable[[httpx.Request], Any]:
        empty = {"resultType": "vector" if kind == "instant" else "matrix", "result": []}

        def handler(request: httpx.Request) -> httpx.Response:
            query = request.url.params["query"]
            self.calls.append((kind, query))
            answer = table.get(query, ok(empty))
            if isinstance(answer, Exception):
                raise answer
            return answer() if callable(answer) else answer

        return handler


def q(key: str) -> str:
    return METRIC_QUERIES[key].replace("{range}", "30s")


def config(**toggles: bool) -> DynamoMetricsConfig:
    groups = ("kv_cache", "ttft", "itl", "inflight_requests", "throughput", "token_throughput")
    flags = {f"collect_{g}": toggles.get(g, False) for g in groups}
    return DynamoMetricsConfig(enable=True, prometheus_url=URL, lookback_seconds=60, **flags)


@pytest.fixture
def prom(respx_mock: respx.MockRouter) -> FakePrometheus:
    return FakePrometheus(respx_mock)


async def test_success_uses_the_instant_value(prom: FakePrometheus) -> None:
    prom.instant[q("ttft_p95")] = vector("0.25")
    result = await DynamoMetricsCollector(config(ttft=True)).collect()
    assert result.ttft_p95 == 0.25 and result.mode == "range" and result.errors == []
    assert ("range", q("ttft_p95")) not in prom.calls


@pytest.mark.parametrize("instant", [vector(), vector("NaN")], ids=["empty", "nan"])
async def test_no_value_falls_back_to_the_most_recent_range_sample(
    prom: FakePrometheus, instant: httpx.Response
) -> None:
    now = time.time()
    prom.instant[q("ttft_p95")] = instant
    prom.ranged[q("ttft_p95")] = matrix([(now - 30, "0.1"), (now - 15, "0.3"), (now, "NaN")])
    result = await DynamoMetricsCollector(config(ttft=True)).collect()
    assert result.ttft_p95 == 0.3  # the last real sample, not the mean 0.2
    assert result.errors == []


async def test_genuine_zero_is_a_value(prom: FakePrometheus) -> None:
    prom.instant[q("queued_requests")] = vector("0")
    result = await DynamoMetricsCollector(config(inflight_requests=True)).collect()
    assert result.queued_requests == 0.0
    assert ("range", q("queued_requests")) not in prom.calls


async def test_several_series_are_combined_by_kind(prom: FakePrometheus) -> None:
    prom.instant[q("token_throughput")] = vector(({"w": "a"}, "2"), ({"w": "b"}, "3"))
    prom.instant[q("kv_cache_hit_rate_sglang")] = vector(({"w": "a"}, "0.2"), ({"w": "b"}, "0.6"))
    prom.instant[q("ttft_p95")] = vector(({"model": "a"}, "0.1"), ({"model": "b"}, "0.4"))
    result = await DynamoMetricsCollector(
        config(token_throughput=True, kv_cache=True, ttft=True)
    ).collect()
    assert result.token_throughput == 5.0  # counters sum
    assert result.kv_cache_hit_rate_sglang == pytest.approx(0.4)  # hit-rate gauges average
    assert result.ttft_p95 == 0.4  # quantiles of separate groups: the worst


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(503, text="Service Unavailable"), "HTTP 503"),
        (
            httpx.Response(
                400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
            ),
            "HTTP 400 from http://prometheus.test:9090/api/v1/query: parse error",
        ),
        (httpx.ReadTimeout("slow"), "within the timeout"),
        (httpx.ConnectError("Connection refused"), "Connection refused"),
        (httpx.Response(200, text="{not json"), "malformed JSON"),
        (
            httpx.Response(200, json={"status": "error", "errorType": "timeout", "error": "x"}),
            "prometheus timeout: x",
        ),
        (
            httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix"}}),
            "expected a vector",
        ),
    ],
    ids=["5xx", "4xx", "timeout", "refused", "bad-json", "status-error", "wrong-shape"],
)
async def test_a_failing_query_is_recorded_and_still_falls_back(
    prom: FakePrometheus, answer: Answer, expected: str
) -> None:
    now = time.time()
    prom.instant[q("ttft_p95")] = answer
    prom.ranged[q("ttft_p95")] = matrix([(now - 5, "0.2")])
    prom.instant[q("ttft_p50")] = vector("0.05")
    result = await DynamoMetricsCollector(config(ttft=True)).collect()
    assert result.ttft_p95 == 0.2  # from the fallback
    assert result.ttft_p50 == 0.05  # other queries unaffected
    assert len(result.errors) == 1 and result.errors[0].startswith("ttft_p95: instant query failed")
    assert expected in result.errors[0]


async def test_a_failing_fallback_is_recorded_too(prom: FakePrometheus) -> None:
    prom.ranged[q("itl_p95")] = httpx.Response(500, json={"status": "error", "error": "boom"})
    result = await DynamoMetricsCollector(config(itl=True)).collect()
    assert result.itl_p95 is None
    assert result.errors == [
        f"itl_p95: range fallback failed: HTTP 500 from {URL}/api/v1/query_range: boom"
    ]


async def test_prometheus_refusing_everything_is_an_unreachable_result(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.get(url__startswith=URL).mock(side_effect=httpx.ConnectError("refused"))
    result = await DynamoMetricsCollector(config(ttft=True)).collect()
    # ttft p50/p95/p99 + 5 context metrics, each an instant query and a range fallback
    assert_unreachable(result, f"prometheus at {URL} is unreachable (16 requests unanswered)")
    assert "cannot reach" in result.errors[0] and "refused" in result.errors[0]


async def test_one_answer_is_enough_to_be_reachable(prom: FakePrometheus) -> None:
    prom.instant[q("ttft_p95")] = httpx.ConnectError("refused")
    prom.ranged[q("ttft_p95")] = httpx.ConnectError("refused")
    result = await DynamoMetricsCollector(config(ttft=True)).collect()
    assert result.reachable and result.ttft_p95 is None
    assert [e.split(":")[0] for e in result.errors] == ["ttft_p95", "ttft_p95"]


# --- exact-window mode ------------------------------------------------------------------


def targets(last_scrape: float) -> httpx.Response:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(last_scrape))
    frac = f"{last_scrape % 1:.9f}"[1:]
    target = {
        "labels": {"instance": "127.0.0.1:1"},
        "health": "up",
        "lastScrape": f"{stamp}{frac}Z",
        "scrapeInterval": "1s",
    }
    return ok({"activeTargets": [target], "droppedTargets": []})


def window_routes(
    respx_mock: respx.MockRouter,
    end: float,
    deltas: dict[str, Answer],
    names: Answer | None = None,
) -> list[str]:
    """Targets scraped after `end`, `up` samples, present metric names (default: those of
    `deltas`) and delta answers by series name. Returns the queries asked, as they come."""
    respx_mock.get(f"{URL}/api/v1/targets").mock(return_value=targets(end + 0.4))
    present = httpx.Response(200, json={"status": "success", "data": list(deltas)})
    respx_mock.get(f"{URL}/api/v1/label/__name__/values").mock(
        side_effect=names if isinstance(names, Exception) else None,
        return_value=present if names is None or isinstance(names, Exception) else names,
    )
    asked: list[str] = []

    def instant(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        asked.append(query)
        if query.startswith("up["):
            return matrix([(end - 0.6, "1"), (end + 0.4, "1")], labels={"instance": "127.0.0.1:1"})
        for name, answer in deltas.items():
            if query.startswith(f"({name} @"):
                if isinstance(answer, Exception):
                    raise answer
                return answer() if callable(answer) else answer
        return vector()

    respx_mock.get(f"{URL}/api/v1/query").mock(side_effect=instant)
    return asked


async def test_window_query_error_lands_in_errors_and_is_a_fault(
    respx_mock: respx.MockRouter,
) -> None:
    end = time.time() - 5
    window_routes(
        respx_mock,
        end,
        {
            "dynamo_frontend_requests_total": vector(({"w": "a"}, "6"), ({"w": "b"}, "6")),
            "dynamo_frontend_output_tokens_total": httpx.Response(
                422, json={"status": "error", "errorType": "execution", "error": "too many"}
            ),
        },
    )
    result = await PrometheusBackend(URL).collect(end - 60, end)
    assert result.requests_per_minute == pytest.approx(12.0)
    assert result.token_throughput is None
    error = f"dynamo_frontend_output_tokens_total: HTTP 422 from {URL}/api/v1/query: too many"
    assert result.errors == [error]
    assert result.fault == f"1 window queries failed: {error}"  # not the deployment's doing
    assert result.scrape_wait_seconds is not None and result.scrape_wait_seconds < 1


async def test_window_queries_only_metrics_present_in_the_window(
    respx_mock: respx.MockRouter,
) -> None:
    end = time.time() - 5
    series = {"dynamo_frontend_requests_total": vector(({"w": "a"}, "6"))}
    asked = window_routes(respx_mock, end, series)
    result = await PrometheusBackend(URL).collect(end - 60, end)
    assert result.requests_per_minute == pytest.approx(6.0) and result.errors == []
    assert [q for q in asked if not q.startswith("up[")] == [
        window_delta_query("dynamo_frontend_requests_total", end - 60, end + 0.401, 1.0)
    ]


async def test_window_queries_everything_when_names_are_unavailable(
    respx_mock: respx.MockRouter,
) -> None:
    end = time.time() - 5
    series = {"dynamo_frontend_requests_total": vector(({"w": "a"}, "6"))}
    asked = window_routes(respx_mock, end, series, names=httpx.Response(404, text="no"))
    result = await PrometheusBackend(URL).collect(end - 60, end)
    assert result.requests_per_minute == pytest.approx(6.0) and result.errors == []
    assert len([q for q in asked if not q.startswith("up[")]) == len(
        {s.series for s in METRIC_REGISTRY}
    )


async def test_window_reset_tag_from_prometheus_is_reported(respx_mock: respx.MockRouter) -> None:
    end = time.time() - 5
    series = ({"w": "a"}, "6"), ({"w": "a", RESET_LABEL: "1"}, "1")
    window_routes(respx_mock, end, {"dynamo_frontend_requests_total": vector(*series)})
    result = await PrometheusBackend(URL).collect(end - 60, end)
    assert result.requests_per_minute is None
    assert result.errors == [
        'dynamo_frontend_requests_total: counter reset inside the window in 1 series, e.g. {w="a"}'
        " (restart components before the window starts)"
    ]


async def test_unreachable_targets_api_is_an_unreachable_result(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.get(url__startswith=URL).mock(side_effect=httpx.ConnectError("refused"))
    result = await PrometheusBackend(URL).collect(time.time() - 60, time.time() - 1)
    assert_unreachable(
        result, f"prometheus at {URL} is unreachable: cannot reach {URL}/api/v1/targets: refused"
    )
    assert result.backend == "prometheus" and result.mode == "window"


def stops_after_the_wait(
    respx_mock: respx.MockRouter, end: float, names: httpx.Response | Exception
) -> list[str]:
    """Targets and `up` answer (the end-of-window wait succeeds); then every window query
    is refused. Returns the window queries asked."""
    respx_mock.get(f"{URL}/api/v1/targets").mock(return_value=targets(end + 0.4))
    respx_mock.get(f"{URL}/api/v1/label/__name__/values").mock(
        side_effect=names if isinstance(names, Exception) else None,
        return_value=None if isinstance(names, Exception) else names,
    )
    asked: list[str] = []

    def instant(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        if query.startswith("up["):
            return matrix([(end - 0.6, "1"), (end + 0.4, "1")], labels={"instance": "x"})
        asked.append(query)
        raise httpx.ConnectError("refused")

    respx_mock.get(f"{URL}/api/v1/query").mock(side_effect=instant)
    return asked


async def test_prometheus_stopping_mid_collection_is_an_unreachable_result(
    respx_mock: respx.MockRouter,
) -> None:
    end = time.time() - 5
    asked = stops_after_the_wait(respx_mock, end, httpx.ConnectError("refused"))
    result = await PrometheusBackend(URL).collect(end - 60, end)
    # names unavailable: every distinct series of the registry is asked, and refused
    n = len(asked)
    assert n == len({spec.series for spec in METRIC_REGISTRY}) and n > 20
    assert_unreachable(
        result, f"prometheus at {URL} stopped answering ({n} window queries unanswered)"
    )
    assert "cannot reach" in result.errors[0]
    assert result.scrape_wait_seconds is not None and result.scrape_wait_seconds < 1


async def test_prometheus_stopping_after_the_names_request_is_unreachable_too(
    respx_mock: respx.MockRouter,
) -> None:
    end = time.time() - 5
    present = ["dynamo_frontend_requests_total", "dynamo_frontend_output_tokens_total"]
    names = httpx.Response(200, json={"status": "success", "data": present})
    asked = stops_after_the_wait(respx_mock, end, names)
    result = await PrometheusBackend(URL).collect(end - 60, end)
    assert len(asked) == 2
    assert_unreachable(result, "stopped answering (2 window queries unanswered)")


async def test_some_window_queries_refused_is_reachable_with_errors(
    respx_mock: respx.MockRouter,
) -> None:
    end = time.time() - 5
    deltas: dict[str, Answer] = {
        "dynamo_frontend_requests_total": vector(({"w": "a"}, "6")),
        "dynamo_frontend_output_tokens_total": httpx.ConnectError("refused"),
    }
    window_routes(respx_mock, end, deltas)
    result = await PrometheusBackend(URL).collect(end - 60, end)
    assert result.reachable and result.requests_per_minute == pytest.approx(6.0)
    assert result.token_throughput is None
    assert result.errors == [
        f"dynamo_frontend_output_tokens_total: cannot reach {URL}/api/v1/query: refused"
    ]


async def test_a_silent_prometheus_is_bounded_by_the_timeout() -> None:
    """A real socket that accepts and never answers (no mock): collect gives up in time."""

    stop = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stop.wait()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(never_answer, LOOPBACK, port)
    try:
        began = time.monotonic()
        result = await PrometheusBackend(loopback_url(port), timeout_s=0.3).collect(1.0, 2.0)
        assert time.monotonic() - began < 2.0
        assert_unreachable(result, "is unreachable: no answer from", "within the timeout")
    finally:
        stop.set()
        server.close()
        await server.wait_closed()
