"""`PrometheusBackend`: exact-window metrics from a Prometheus server. Does I/O: HTTP.

`collect(start, end)` waits for the first scrape of every target past `end` (reported as
`scrape_wait_seconds`), fetches per-series raw window differences and gauge statistics
with the `@` modifier (`_promql.py`) concurrently over one client, and computes the values
with the pure code shared with the scrape backend (`_window.py`). Failures follow the
`MetricsBackend` contract (`_backend.py`): a Prometheus that answers nothing, stops
answering before the window's queries, or rejects the credentials of `access` (HTTP 401/403:
the reason is exactly `_prom_api.rejection_reason`), gives `reachable=False`, never an
exception. Whether the scrapes measured the window (an active target, every target up at the
end and scraped inside the window with `up` 1, none late past `end`, every window query
answered) is judged too (`_edges.window_faults`); what failed is the result's `fault`.
`check_api()` (optional, before `collect`) raises at once for a URL that is no Prometheus.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics import _edges as edges
from dynamo_tune.metrics._access import PrometheusAccess
from dynamo_tune.metrics._config import DEFAULT_TIMEOUT_S, validate_http_url
from dynamo_tune.metrics._models import DynamoMetricsResult
from dynamo_tune.metrics._prom_api import PrometheusAPI, new_client
from dynamo_tune.metrics._prom_parse import Matrix, QueryFailed, TargetState
from dynamo_tune.metrics._promql import RESET_LABEL, window_delta_query, window_gauge_query
from dynamo_tune.metrics._queries import METRIC_REGISTRY, METRIC_SPECS, MetricSpec
from dynamo_tune.metrics._series import SeriesVector, labels_of
from dynamo_tune.metrics._window import WindowData, evaluate_window


@dataclass(frozen=True)
class ScrapeWait:
    """Outcome of waiting for the scrape past `end`: `t1`, seconds waited, the scrape
    interval, a note (`error`), why the end edge is not measured (`fault`), the active
    targets seen last (`known_targets` False: no targets API)."""

    t1: float
    waited_s: float
    interval_s: float
    error: str | None = None
    fault: str | None = None
    targets: tuple[TargetState, ...] = ()
    known_targets: bool = True


def select_specs(keys: Sequence[str] | None) -> list[MetricSpec]:
    """Registry entries for `keys` (all if None); ValueError naming unknown keys."""
    if keys is None:
        return list(METRIC_REGISTRY)
    unknown = [k for k in keys if k not in METRIC_SPECS]
    if unknown:
        raise ValueError(f"unknown metric keys {unknown}; known: {sorted(METRIC_SPECS)}")
    return [METRIC_SPECS[k] for k in keys]


class PrometheusBackend:
    """Exact-window collection from the Prometheus at `prometheus_url` (credentials and TLS
    from `access`, read when each `collect` builds its client)."""

    def __init__(
        self,
        prometheus_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        scrape_interval_s: float | None = None,
        concurrency: int = 8,
        metrics: Sequence[str] | None = None,
        access: PrometheusAccess | None = None,
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
        self.access = access

    async def mark_start(self) -> None:
        """Nothing to do: Prometheus keeps the samples at the window's start."""

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        """Metrics of exactly `[start, end]` (unix seconds)."""
        if not end > start:
            raise MetricsError(f"window end must be after its start, but got {start=}, {end=}")
        meta = {
            "prometheus_url": self.prometheus_url,
            "backend": "prometheus",
            "mode": "window",
            "window_start": start,
            "window_end": end,
        }
        async with new_client(self.timeout_s, self.access) as client:
            api = PrometheusAPI(client, self.prometheus_url, self.concurrency)
            try:
                wait = await self.wait_for_scrape(api, end)
            except QueryFailed as exc:  # no usable HTTP answer (the only kind raised here)
                reason = self._unreachable_reason(api, exc)
                return DynamoMetricsResult.unreachable(
                    reason, collection_timestamp=time.time(), **meta
                )
            data, errors, unanswered = await fetch_window(
                api, self.specs, start, wait.t1, wait.interval_s
            )
            faults = [] if unanswered else await window_faults(api, start, wait)
        if api.rejection is not None:
            return DynamoMetricsResult.unreachable(
                api.rejection, collection_timestamp=time.time(), **meta
            )
        if unanswered:
            reason = (
                f"prometheus at {self.prometheus_url} stopped answering "
                f"({len(errors)} window queries unanswered): {errors[0]}"
            )
            return DynamoMetricsResult.unreachable(
                reason, collection_timestamp=time.time(), scrape_wait_seconds=wait.waited_s, **meta
            )
        values, reset_errors = evaluate_window(self.specs, data, end - start)
        failed = [f"{len(errors)} window queries failed: {errors[0]}"] if errors else []
        return DynamoMetricsResult.from_values(
            values,
            collection_timestamp=time.time(),
            scrape_wait_seconds=wait.waited_s,
            errors=([wait.error] if wait.error else []) + faults + errors + reset_errors,
            fault="; ".join(faults + failed) or None,
            **meta,
        )

    def _unreachable_reason(self, api: PrometheusAPI, exc: QueryFailed) -> str:
        """Why the Prometheus cannot be read at all, after `exc` (`unreachable`) from `api`."""
        state = "stopped answering" if api.answered else "is unreachable"
        return api.rejection or f"prometheus at {self.prometheus_url} {state}: {exc}"

    async def check_api(self) -> None:
        """Ask the query API once (`vector(1)`), for a caller that stops before `collect`'s
        bounded waits: `MetricsError` (one line) when nothing answers, the credentials are
        refused, or the server is no Prometheus (an HTTP error such as 404 or an answer that
        is not the API's JSON, where `collect` would wait for a scrape it cannot see)."""
        async with new_client(self.timeout_s, self.access) as client:
            api = PrometheusAPI(client, self.prometheus_url, concurrency=1)
            try:
                await api.query("vector(1)")
            except QueryFailed as exc:
                if exc.unreachable:
                    raise MetricsError(self._unreachable_reason(api, exc)) from None
                raise MetricsError(f"{self.prometheus_url} is not a Prometheus: {exc}") from None

    async def wait_for_scrape(self, api: PrometheusAPI, end: float) -> ScrapeWait:
        """Wait (bounded) until every target was scraped after `end`; pin `t1` (`_edges.py`).

        Raises `QueryFailed` (with `unreachable=True`) only when the targets API gives no
        HTTP answer; any other problem is reported in `ScrapeWait.error` (a note) or
        `ScrapeWait.fault` (the window's end is not measured)."""
        began = time.monotonic()
        try:
            targets = await self._await_targets(api, end, began)
        except QueryFailed as exc:
            if exc.unreachable:
                raise
            # No targets API (a Prometheus-compatible store): sleep one interval + margin.
            interval = edges.scrape_interval([], self.scrape_interval_s)
            await asyncio.sleep(max(0.0, end + 1.2 * interval - time.time()))
            wait = await self._pin_end(api, end, interval, 0, began, f"targets API: {exc}", None)
            return replace(wait, known_targets=False)
        interval = edges.scrape_interval(targets, self.scrape_interval_s)
        if not targets:  # `window_faults` names it
            return ScrapeWait(time.time(), time.monotonic() - began, interval)
        late = edges.pending(targets, end)
        fault = f"targets not scraped since the window end: {late}" if late else None
        wait = await self._pin_end(api, end, interval, len(targets), began, None, fault)
        return replace(wait, targets=tuple(targets))

    async def _await_targets(
        self, api: PrometheusAPI, end: float, began: float
    ) -> list[TargetState]:
        """Poll the targets until none is pending or the wait bound passes; the last answer."""
        while True:
            targets = await api.targets()
            interval = edges.scrape_interval(targets, self.scrape_interval_s)
            over = time.monotonic() - began > edges.max_wait_s(interval)
            if not edges.pending(targets, end) or over:
                return targets
            await asyncio.sleep(edges.poll_every_s(interval))

    async def _pin_end(
        self,
        api: PrometheusAPI,
        end: float,
        interval: float,
        expected: int,
        began: float,
        note: str | None,
        fault: str | None,
    ) -> ScrapeWait:
        """`t1` from the raw `up` samples after `end`, retried while some are missing
        (unless `note` or `fault` already reports a problem: then once, with whatever is
        there). No scrape after `end` for some target is a fault (the window's tail is not
        measured)."""
        query, at = edges.up_after_query(end, interval)
        while True:
            waited = time.monotonic() - began
            try:
                first = edges.first_scrapes_after(await api.query_matrix(query, at=at), end)
            except QueryFailed as exc:
                reason = fault or f"cannot read scrape times: {exc}"
                return ScrapeWait(time.time(), waited, interval, note, reason)
            t1 = edges.end_edge(first, expected)
            if t1 is not None:
                return ScrapeWait(t1, time.monotonic() - began, interval, note, fault)
            if note is not None or fault is not None or waited > edges.max_wait_s(interval):
                t1 = edges.end_edge(first, 1) or time.time()
                missing = f"{expected - len(first)} of {expected}" if expected else "any"
                missing += " targets" if expected else " target"
                reason = fault or f"no scrape after the window end seen for {missing}"
                return ScrapeWait(t1, time.monotonic() - began, interval, note, reason)
            await asyncio.sleep(edges.poll_every_s(interval))


async def window_faults(api: PrometheusAPI, t0: float, wait: ScrapeWait) -> list[str]:
    """Why the scrapes did not measure `(t0, wait.t1]` (`_edges.window_faults`), in words."""
    faults = [wait.fault] if wait.fault else []
    up: Matrix | None = None
    if wait.targets or not wait.known_targets:
        query, at = edges.up_in_window_query(t0, wait.t1)
        try:
            up = await api.query_matrix(query, at=at)
        except QueryFailed as exc:
            faults.append(f"cannot read the targets' scrapes inside the window: {exc}")
    return edges.window_faults(wait.targets, up, wait.known_targets) + faults


def _gauge_series(specs: Sequence[MetricSpec]) -> set[str]:
    return {s.series for s in specs if s.kind == "gauge"}


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
    api: PrometheusAPI, specs: Sequence[MetricSpec], t0: float, t1: float, interval_s: float
) -> tuple[WindowData, list[str], bool]:
    """Concurrently fetch what `specs` need over `(t0, t1]`: (data, per-query errors,
    unanswered), `unanswered` True when queries were asked and none got an HTTP answer.

    Metrics without any sample in the range (absent components: Thompson, SGLang, ...) are
    found with one label-values request and not queried (no data); if that request fails,
    everything is queried.
    """
    wanted = list(dict.fromkeys(s.series for s in specs))
    try:
        present = await api.metric_names(wanted, t0 - interval_s, t1)
    except QueryFailed:
        present = set(wanted)
    series = [name for name in wanted if name in present and name not in _gauge_series(specs)]
    gauges = [s for s in specs if s.kind == "gauge" and s.series in present]
    delta_jobs = [api.query(window_delta_query(name, t0, t1, interval_s), at=t1) for name in series]
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
    unanswered = bool(answers) and all(
        isinstance(a, QueryFailed) and a.unreachable for a in answers
    )
    return data, errors, unanswered
