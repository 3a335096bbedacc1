"""`ScrapeBackend`: window metrics straight from `/metrics` endpoints. Does I/O: HTTP GETs.

No Prometheus needed: `mark_start()` snapshots every endpoint (and keeps sampling them
every `sample_interval_s` in the background, for gauges and counter resets), and
`collect(start, end)` snapshots them again; the differences from the last snapshot taken at
or before `start` (as Prometheus's `x @ start`) go through the same pure code as the
Prometheus backend (`_snapshots.py`, `_window.py`), so both give the same result.
`mark_start()` and `collect()` must run in the same event loop (one trial, one `asyncio.run`).
Failures follow the `MetricsBackend` contract (`_backend.py`): when no endpoint answered both
a snapshot at or before `start` and the one at the end, `collect` gives `reachable=False`;
when only some did, the result's `fault` names the others (the window was not measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import httpx

from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics._config import DEFAULT_TIMEOUT_S, validate_http_url
from dynamo_tune.metrics._exposition import Snapshot, parse_exposition
from dynamo_tune.metrics._models import DynamoMetricsResult
from dynamo_tune.metrics._prom_api import new_client
from dynamo_tune.metrics._prometheus import select_specs
from dynamo_tune.metrics._snapshots import (
    first_after,
    last_at_or_before,
    merge,
    window_from_snapshots,
)
from dynamo_tune.metrics._window import evaluate_window


class ScrapeBackend:
    """Exact-window collection from snapshots of `metrics_urls` (full `/metrics` URLs)."""

    def __init__(
        self,
        metrics_urls: list[str],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        sample_interval_s: float | None = 1.0,
        metrics: Sequence[str] | None = None,
    ) -> None:
        if not metrics_urls:
            raise MetricsError("the scrape backend needs at least one /metrics URL")
        try:
            self.metrics_urls = [validate_http_url(url) for url in metrics_urls]
        except ValueError as exc:
            raise MetricsError(f"metrics_urls: {exc}") from exc
        self.timeout_s = timeout_s
        self.sample_interval_s = sample_interval_s
        self.specs = select_specs(metrics)
        self._names = {s.series for s in self.specs}
        self._timeline: list[tuple[float, dict[str, Snapshot]]] = []
        self._start_errors: list[str] = []
        self._sampler: asyncio.Task[None] | None = None

    async def _snapshot(
        self, client: httpx.AsyncClient
    ) -> tuple[float, dict[str, Snapshot], list[str]]:
        """(time asked, {url: snapshot} of every endpoint that answered, one error per other)."""
        asked = time.time()

        async def one(url: str) -> Snapshot:
            response = await client.get(url)
            response.raise_for_status()
            return parse_exposition(response.text, url, self._names)

        answers = await asyncio.gather(*(one(u) for u in self.metrics_urls), return_exceptions=True)
        snapshots: dict[str, Snapshot] = {}
        errors: list[str] = []
        for url, answer in zip(self.metrics_urls, answers, strict=True):
            if isinstance(answer, httpx.HTTPStatusError):  # httpx's text: 2 lines and a link
                errors.append(f"{url}: HTTP {answer.response.status_code}")
            elif isinstance(answer, httpx.HTTPError | ValueError):
                errors.append(f"{url}: {type(answer).__name__}: {answer}")
            elif isinstance(answer, BaseException):
                raise answer
            else:
                snapshots[url] = answer
        return asked, snapshots, errors

    async def mark_start(self) -> None:
        """Snapshot every endpoint now and start sampling them in the background.

        Endpoints that do not answer are recorded, not raised (see `unreachable_at_start`).
        """
        await self._stop_sampler()
        async with new_client(self.timeout_s) as client:
            asked, start, self._start_errors = await self._snapshot(client)
        self._timeline = [(asked, start)]
        if self.sample_interval_s is not None:
            self._sampler = asyncio.create_task(self._sample(self.sample_interval_s))

    @property
    def unreachable_at_start(self) -> str | None:
        """Why no endpoint answered the `mark_start()` snapshot; None if one did (or before
        `mark_start()`). Lets a caller stop before a workload whose window cannot be read."""
        if not self._timeline or self._timeline[0][1]:
            return None
        return f"no /metrics endpoint answered: {'; '.join(self._start_errors)}"

    async def _sample(self, every_s: float) -> None:
        async with new_client(self.timeout_s) as client:
            while True:
                await asyncio.sleep(every_s)
                asked, snapshots, _ = await self._snapshot(client)
                self._timeline.append((asked, snapshots))

    async def _stop_sampler(self) -> None:
        task, self._sampler = self._sampler, None
        if task is None or task.done():
            return
        task.cancel()
        if task.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        """Metrics of `[start, end]`: from the last snapshot taken at or before `start` (the
        `mark_start()` one if none; so a warmup before `start` is left out when a background
        sample fell between the two) to the first one taken after `end` (the one taken now if
        none is: a window that closes before the workload's drain leaves the drain out)."""
        if not end > start:
            raise MetricsError(f"window end must be after its start, but got {start=}, {end=}")
        if not self._timeline:
            raise MetricsError("ScrapeBackend.collect() needs mark_start() before the workload")
        await self._stop_sampler()
        async with new_client(self.timeout_s) as client:
            asked, finish, errors = await self._snapshot(client)
        timeline, self._timeline = [*self._timeline, (asked, finish)], []
        times = [t for t, _ in timeline]
        timeline = timeline[last_at_or_before(times, start) : first_after(times, end) + 1]
        last = timeline[-1][1]
        both = [url for url in self.metrics_urls if url in timeline[0][1] and url in last]
        errors = [f"start snapshot: {e}" for e in self._start_errors] + errors
        meta = {"backend": "scrape", "mode": "window", "window_start": start, "window_end": end}
        if not both:
            detail = "; ".join(errors) or "the last sample at or before the start got no answer"
            reason = f"no /metrics endpoint answered both at the window start and end: {detail}"
            return DynamoMetricsResult.unreachable(reason, collection_timestamp=time.time(), **meta)
        samples = [merge([s[url] for url in both if url in s]) for _, s in timeline]
        data = window_from_snapshots(self.specs, samples)
        values, reset_errors = evaluate_window(self.specs, data, end - start)
        lost = [url for url in self.metrics_urls if url not in both]
        fault = f"/metrics not read at both window edges: {', '.join(lost)}" if lost else None
        return DynamoMetricsResult.from_values(
            values,
            collection_timestamp=time.time(),
            scrape_wait_seconds=0.0,
            errors=errors + reset_errors,
            fault=fault,
            **meta,
        )
