"""Exact-window collection against a real Prometheus scraping an exporter the test feeds."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures.prometheus import (
    ITL_BUCKETS,
    TTFT_BUCKETS,
    DynamoExporter,
    start_prometheus,
    wait_scraped_after,
)
from wait_helpers import async_wait_for

from dynamo_tune.deploy.prometheus import PrometheusServer
from dynamo_tune.metrics import PrometheusBackend, ScrapeBackend

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Request:
    ttft: float
    itls: list[float]
    prompt: int
    cached: int


def make_request(rng: random.Random, slow: bool) -> Request:
    ttft = rng.uniform(0.3, 1.8) if slow else rng.uniform(0.005, 0.2)
    itls = [rng.uniform(0.002, 0.09) for _ in range(rng.randint(2, 6))]
    prompt = rng.randint(200, 1500)
    return Request(ttft, itls, prompt, rng.randint(0, prompt))


class Fed:
    """What a test fed in one window (the truth to compare with)."""

    def __init__(self) -> None:
        self.ttfts: list[float] = []
        self.itls: list[float] = []
        self.prompt = 0
        self.cached = 0
        self.requests = 0

    def add(self, request: Request) -> None:
        self.ttfts.append(request.ttft)
        self.itls.extend(request.itls)
        self.prompt += request.prompt
        self.cached += request.cached
        self.requests += 1


def send(exporter: DynamoExporter, worker: str, request: Request, *truths: Fed) -> None:
    exporter.feed(worker, request.ttft, request.itls, request.prompt, request.cached)
    for fed in truths:
        fed.add(request)


def bucket_quantile(q: float, bounds: tuple[float, ...], observations: list[float]) -> float:
    """Prometheus's `histogram_quantile` of `observations` in buckets `bounds`, written out
    here (not the code's): rank q*n falls in the first bucket whose cumulative count reaches
    it; linear inside that bucket (the first starts at 0); past the last finite bound, that
    bound."""
    rank = q * len(observations)
    lower, below = 0.0, 0
    for upper in bounds:
        count = sum(1 for x in observations if x <= upper)
        if count >= rank and count > below:
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return bounds[-1]


def test_bucket_quantile_helper_by_hand() -> None:
    # 4 observations in (0.1, 0.2], rank 0.5*4 = 2 -> halfway: 0.15; rank 3.96 in +Inf -> 0.2
    assert bucket_quantile(0.5, (0.1, 0.2), [0.12, 0.15, 0.18, 0.19]) == pytest.approx(0.15)
    assert bucket_quantile(0.99, (0.1, 0.2), [0.05, 0.3, 0.4, 0.5]) == 0.2
    # first bucket starts at 0: rank 1 of 2 in (0, 0.4] -> 0.2
    assert bucket_quantile(0.5, (0.4,), [0.1, 0.3]) == pytest.approx(0.2)


def sampled_after(scrape: ScrapeBackend, moment: float) -> bool:
    """The scrape backend's background sampler has taken a snapshot it asked for after
    `moment` (its timeline holds `(time asked, snapshots)`, oldest first)."""
    return scrape._timeline[-1][0] > moment


def noise(exporter: DynamoExporter, worker: str, n: int = 30) -> None:
    """Traffic unlike the window's: 9 s TTFTs, 3 s gaps, everything cached."""
    for _ in range(n):
        exporter.feed(worker, 9.0, [3.0, 3.0], 1000, 1000)


async def test_exact_window_ignores_traffic_before_and_after(
    prometheus: PrometheusServer, dynamo_exporter: DynamoExporter
) -> None:
    rng = random.Random(7)
    noise(dynamo_exporter, "w0")
    await wait_scraped_after(prometheus.url, time.time())  # the noise is in Prometheus

    start = time.time()
    fed = Fed()
    for i in range(60):
        send(dynamo_exporter, f"w{i % 2}", make_request(rng, slow=i % 2 == 1), fed)
    end = time.time()
    await wait_scraped_after(prometheus.url, end)
    noise(dynamo_exporter, "w1")  # after the first scrape past the end

    result = await PrometheusBackend(prometheus.url, scrape_interval_s=1.0).collect(start, end)

    assert result.errors == []
    for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        assert getattr(result, f"ttft_{key}") == pytest.approx(
            bucket_quantile(q, TTFT_BUCKETS, fed.ttfts), rel=1e-9
        )
        assert getattr(result, f"itl_{key}") == pytest.approx(
            bucket_quantile(q, ITL_BUCKETS, fed.itls), rel=1e-9
        )
    core = result.get_core_metrics()
    assert core.kv_efficiency_source == "frontend"
    assert core.kv_efficiency == pytest.approx(fed.cached / fed.prompt, rel=1e-9)
    assert result.requests_per_minute == pytest.approx(fed.requests / (end - start) * 60)
    assert result.scrape_wait_seconds is not None and 0 <= result.scrape_wait_seconds < 3

    # The noise after the window is really in Prometheus: a window reaching it changes.
    await wait_scraped_after(prometheus.url, time.time())
    wider = await PrometheusBackend(prometheus.url).collect(start, time.time())
    assert wider.ttft_p99 is not None and wider.ttft_p99 > 4.7
    assert wider.get_core_metrics().kv_efficiency != pytest.approx(core.kv_efficiency)


async def test_two_worker_series_aggregate(
    prometheus: PrometheusServer, dynamo_exporter: DynamoExporter
) -> None:
    rng = random.Random(11)
    await wait_scraped_after(prometheus.url, time.time())
    start = time.time()
    fast, slow, both = Fed(), Fed(), Fed()
    for _ in range(40):
        send(dynamo_exporter, "w0", make_request(rng, slow=False), fast, both)
        send(dynamo_exporter, "w1", make_request(rng, slow=True), slow, both)
    end = time.time()
    await wait_scraped_after(prometheus.url, end)

    result = await PrometheusBackend(prometheus.url).collect(start, end)

    for q, key in ((0.5, "ttft_p50"), (0.95, "ttft_p95")):
        assert getattr(result, key) == pytest.approx(
            bucket_quantile(q, TTFT_BUCKETS, both.ttfts), rel=1e-9
        )
    # Reading only one worker's series would give a clearly different median.
    median = bucket_quantile(0.5, TTFT_BUCKETS, both.ttfts)
    for single in (fast, slow):
        assert median != pytest.approx(bucket_quantile(0.5, TTFT_BUCKETS, single.ttfts), rel=0.1)
    kve = result.get_core_metrics().kv_efficiency
    assert kve == pytest.approx(both.cached / both.prompt, rel=1e-9)
    assert result.requests_per_minute == pytest.approx(80 / (end - start) * 60)


async def test_scrape_backend_agrees_with_prometheus(
    prometheus: PrometheusServer, dynamo_exporter: DynamoExporter
) -> None:
    rng = random.Random(3)
    dynamo_exporter.inflight.labels(model="tiny", worker="w0").set(2)
    dynamo_exporter.inflight.labels(model="tiny", worker="w1").set(5)
    await wait_scraped_after(prometheus.url, time.time())
    scrape = ScrapeBackend([dynamo_exporter.url], sample_interval_s=0.2)
    await scrape.mark_start()
    start = time.time()
    fed = Fed()
    for i in range(50):
        send(dynamo_exporter, f"w{i % 2}", make_request(rng, slow=i % 3 == 0), fed)
    end = time.time()
    by_scrape = await scrape.collect(start, end)
    await wait_scraped_after(prometheus.url, end)
    by_prometheus = await PrometheusBackend(prometheus.url).collect(start, end)

    assert by_scrape.errors == [] and by_prometheus.errors == []
    assert by_scrape.backend == "scrape" and by_prometheus.backend == "prometheus"
    for field in ("ttft_p50", "ttft_p95", "ttft_p99", "itl_p50", "itl_p95", "itl_p99",
                  "requests_per_minute", "token_throughput", "frontend_cached_tokens_rate",
                  "frontend_input_tokens_rate", "inflight_requests_frontend"):  # fmt: skip
        value = getattr(by_scrape, field)
        assert value is not None, field
        assert value == pytest.approx(getattr(by_prometheus, field), rel=1e-9), field
    assert by_scrape.inflight_requests_frontend == 7.0
    assert by_scrape.get_core_metrics() == by_prometheus.get_core_metrics()
    assert by_scrape.ttft_p95 == pytest.approx(bucket_quantile(0.95, TTFT_BUCKETS, fed.ttfts))


async def test_scrape_backend_leaves_out_warmup_after_mark_start(
    dynamo_exporter: DynamoExporter,
) -> None:
    rng = random.Random(5)
    scrape = ScrapeBackend([dynamo_exporter.url], sample_interval_s=0.2)
    await scrape.mark_start()
    noise(dynamo_exporter, "w0")  # a warmup inside the workload, before its window
    warmed = time.time()
    # the quiet gap: a background sample (every 0.2 s) falls after the warmup, before `start`
    await async_wait_for(lambda: sampled_after(scrape, warmed), 5, what="a sample after warmup")
    start = time.time()
    fed = Fed()
    for i in range(30):
        send(dynamo_exporter, f"w{i % 2}", make_request(rng, slow=False), fed)
    end = time.time()
    result = await scrape.collect(start, end)
    assert result.ttft_p99 == pytest.approx(bucket_quantile(0.99, TTFT_BUCKETS, fed.ttfts))
    assert result.get_core_metrics().kv_efficiency == pytest.approx(fed.cached / fed.prompt)
    assert result.requests_per_minute == pytest.approx(30 / (end - start) * 60)


async def test_scrape_backend_leaves_out_traffic_after_the_window_end(
    dynamo_exporter: DynamoExporter,
) -> None:
    # A steady window closes before the workload's drain, which goes on until collect().
    rng = random.Random(7)
    scrape = ScrapeBackend([dynamo_exporter.url], sample_interval_s=0.2)
    await scrape.mark_start()
    start = time.time()
    fed = Fed()
    for i in range(30):
        send(dynamo_exporter, f"w{i % 2}", make_request(rng, slow=False), fed)
    end = time.time()
    await async_wait_for(lambda: sampled_after(scrape, end), 5, what="a sample after the end")
    noise(dynamo_exporter, "w0")  # the drain
    result = await scrape.collect(start, end)
    assert result.get_core_metrics().kv_efficiency == pytest.approx(fed.cached / fed.prompt)
    assert result.requests_per_minute == pytest.approx(30 / (end - start) * 60)


async def test_counter_reset_inside_window_is_reported(tmp_path: Path) -> None:
    exporter = DynamoExporter()
    server = None
    try:
        server = await start_prometheus(tmp_path, {exporter.address: "frontend"})
        for _ in range(20):
            exporter.feed("w0", 0.05, [0.01], 100, 10)
        await wait_scraped_after(server.url, time.time())
        scrape = ScrapeBackend([exporter.url], sample_interval_s=0.2)
        await scrape.mark_start()
        start = time.time()
        exporter.registry.unregister(exporter.ttft)  # a restarted frontend: TTFT from zero
        exporter.ttft = type(exporter.ttft)(
            "dynamo_frontend_time_to_first_token_seconds", "TTFT", ("model", "worker"),
            buckets=TTFT_BUCKETS, registry=exporter.registry,
        )  # fmt: skip
        exporter.ttft.labels(model="tiny", worker="w0")  # exported again, from 0
        reset = time.time()
        # Prometheus and the scrape backend's sampler see the drop before the counts pass it
        await wait_scraped_after(server.url, reset)
        await async_wait_for(lambda: sampled_after(scrape, reset), 5, what="a sample after reset")
        for _ in range(30):  # more than before the reset: the difference alone looks fine
            exporter.feed("w0", 0.05, [0.01], 100, 10)
        end = time.time()
        by_scrape = await scrape.collect(start, end)
        await wait_scraped_after(server.url, end)
        by_prometheus = await PrometheusBackend(server.url).collect(start, end)
        for result in (by_scrape, by_prometheus):
            assert result.ttft_p95 is None
            resets = [e for e in result.errors if "reset" in e]
            assert len(resets) == 1, result.errors
            assert resets[0].startswith("dynamo_frontend_time_to_first_token_seconds_bucket: ")
            assert result.itl_p95 is not None  # other metrics are unaffected
    finally:
        exporter.stop()
        if server is not None:
            server.stop()
