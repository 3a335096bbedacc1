"""`PrometheusBackend`: exact-window metrics from a Prometheus server. Does I/O: HTTP.

`collect(start, end)` waits for the first scrape of every target past `end` (reported as
`scrape_wait_seconds`), fetches per-series raw window differences and gauge statistics
with the `@` modifier (`promql.py`) concurrently over one client, and computes the values
with the pure code shared with the scrape backend (`window.py`). An unreachable Prometheus
raises `MetricsError`; a failing query is listed in `result.errors` and leaves its metric None.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics import edges
from dynamo_tune.metrics.config import validate_http_url
from dynamo_tune.metrics.models import DynamoMetricsResult
from dynamo_tune.metrics.prom_api import PrometheusAPI
from dynamo_tune.metrics.prom_parse import QueryFailed
from dynamo_tune.metrics.promql import RESET_LABEL, window_delta_query, window_gauge_query
from dynamo_tune.metrics.queries import METRIC_REGISTRY, METRIC_SPECS, MetricSpec
from dynamo_tune.metrics.series import SeriesVector, labels_of
from dynamo_tune.metrics.window import WindowData, evaluate_window


@dataclass(frozen=True)
class ScrapeWait:
    """Outcome of waiting for the scrape past `end`: `t1`, seconds waited, any problem."""

    t1: float
    waited_s: float
    error: str | None = None


def select_specs(keys: Sequence[str] | None) -> list[MetricSpec]:
    """Registry entries for `keys` (all if None); ValueError naming unknown keys."""
    if keys is None:
        return list(METRIC_REGISTRY)
    unknown = [k for k in keys if k not in METRIC_SPECS]
    if unknown:
        raise ValueError(f"unknown metric keys {unknown}; known: {sorted(METRIC_SPECS)}")
    return [METRIC_SPECS[k] for k in keys]


class PrometheusBackend:
    """Exact-window collection from the Prometheus at `prometheus_url`."""

    def __init__(
        self,
        prometheus_url: str,
        *,
        timeout_s: float = 10.0,
        scrape_interval_s: float | None = None,
        concurrency: int = 8,
        metrics: Sequence[str] | None = None,
    ) -> None:
        try:
            self.prometheus_url = validate_http_url(prometheus_url)
        except ValueError as exc:
            raise MetricsError(f"prometheus_url: {exc}") from exc
        if not timeout_s > 0 or concurrency < 1:
            raise ValueError(
                f"`timeout_s > 0` and `concurrency >= 1` must hold ({timeout_s=}, {concurrency=})"
            )
        self.timeout_s = timeout_s
        self.scrape_interval_s = scrape_interval_s
        self.concurrency = concurrency
        self.specs = select_specs(metrics)

    async def mark_start(self) -> None:
        """Nothing to do: Prometheus keeps the samples at the window's start."""

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        """Metrics of exactly `[start, end]` (unix seconds)."""
        if not end > start:
            raise MetricsError(f"window end must be after its start, but got {start=}, {end=}")
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            api = PrometheusAPI(client, self.prometheus_url, self.concurrency)
            wait = await self.wait_for_scrape(api, end)
            answered = api.answered
            data, errors = await fetch_window(api, self.specs, start, wait.t1)
        if errors and api.answered == answered:
            raise MetricsError(
                f"prometheus at {self.prometheus_url} stopped answering: {errors[0]}"
            )
        values, reset_errors = evaluate_window(self.specs, data, end - start)
        return DynamoMetricsResult.from_values(
            values,
            collection_timestamp=time.time(),
            prometheus_url=self.prometheus_url,
            backend="prometheus",
            mode="window",
            window_start=start,
            window_end=end,
            scrape_wait_seconds=wait.waited_s,
            errors=([wait.error] if wait.error else []) + errors + reset_errors,
        )

    async def wait_for_scrape(self, api: PrometheusAPI, end: float) -> ScrapeWait:
        """Poll `/api/v1/targets` until every target was scraped after `end` (bounded)."""
        began = time.monotonic()
        polls = 0
        while True:
            try:
                targets = await api.targets()
            except QueryFailed as exc:
                if exc.unreachable:
                    raise MetricsError(
                        f"prometheus at {self.prometheus_url} is unreachable: {exc}"
                    ) from exc
                # Not a Prometheus with a targets API: sleep one interval plus a margin.
                interval = edges.scrape_interval([], self.scrape_interval_s)
                await asyncio.sleep(max(0.0, end + interval * 1.2 - time.time()))
                return ScrapeWait(time.time(), time.monotonic() - began, f"targets API: {exc}")
            polls += 1
            interval = edges.scrape_interval(targets, self.scrape_interval_s)
            late = edges.pending(targets, end)
            waited_s = time.monotonic() - began
            if not targets:
                return ScrapeWait(time.time(), waited_s, "prometheus has no active targets")
            if not late:
                if polls > 1:
                    await asyncio.sleep(edges.commit_margin_s(interval))
                t1 = edges.end_edge(time.time(), end, interval, waited=polls > 1)
                return ScrapeWait(t1, time.monotonic() - began)
            if waited_s > edges.max_wait_s(interval):
                message = f"targets not scraped since the window end after {waited_s:.1f} s: {late}"
                return ScrapeWait(time.time(), waited_s, message)
            await asyncio.sleep(edges.poll_every_s(interval))


def split_resets(vector: SeriesVector) -> tuple[SeriesVector, set[frozenset[tuple[str, str]]]]:
    """Separate the reset-tagged series of a `window_delta_query` answer from the deltas."""
    deltas: SeriesVector = {}
    resets: set[frozenset[tuple[str, str]]] = set()
    for labels, value in vector.items():
        plain = labels_of(dict(labels), drop=(RESET_LABEL,))
        if plain != labels:
            resets.add(plain)
        else:
            deltas[labels] = value
    return deltas, resets


async def fetch_window(
    api: PrometheusAPI, specs: Sequence[MetricSpec], t0: float, t1: float
) -> tuple[WindowData, list[str]]:
    """Concurrently fetch what `specs` need over `(t0, t1]`: (data, per-query errors)."""
    series = list(dict.fromkeys(s.series for s in specs if s.kind != "gauge"))
    gauges = [s for s in specs if s.kind == "gauge"]
    delta_jobs = [api.query(window_delta_query(name, t0, t1), at=t1) for name in series]
    gauge_jobs = [api.query(window_gauge_query(spec, t0, t1), at=t1) for spec in gauges]
    answers = await asyncio.gather(*delta_jobs, *gauge_jobs, return_exceptions=True)
    data, errors = WindowData(), []
    for name, answer in zip(series, answers[: len(series)], strict=True):
        if isinstance(answer, QueryFailed):
            errors.append(f"{name}: {answer}")
        elif isinstance(answer, BaseException):
            raise answer
        else:
            data.deltas[name], data.resets[name] = split_resets(answer)
    for spec, answer in zip(gauges, answers[len(series) :], strict=True):
        if isinstance(answer, QueryFailed):
            errors.append(f"{spec.key}: {answer}")
        elif isinstance(answer, BaseException):
            raise answer
        else:
            data.gauges[spec.key] = answer
    return data, errors
