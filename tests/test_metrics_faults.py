"""Measurement faults are never verdicts: a window the metrics source could not measure FAILs
its trial with the reason (`fault`: `metrics: ...`) and the configuration is measured again
once; the pre-run check waits for a Prometheus to scrape its targets first; a series born
inside the window counts from zero.

The judgement itself (`_edges.window_faults`, `_readiness.not_ready`) is tested on its own;
the rest runs against a real Prometheus (1 s scrapes) scraping `/metrics` servers on 127.0.0.1
that the test starts, stops and feeds, with the fakes as deployment (real time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import RealClock, fake_stack, write_study
from fixtures.prometheus import DynamoExporter, start_prometheus, wait_scraped_after
from prometheus_client import start_http_server
from study_helpers import open_study

from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.deploy.prometheus import PrometheusServer
from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics import DynamoMetricsResult, PrometheusBackend
from dynamo_tune.metrics._edges import window_faults
from dynamo_tune.metrics._prom_parse import TargetState
from dynamo_tune.metrics._readiness import not_ready, ready_bound_s
from dynamo_tune.net import LOOPBACK
from dynamo_tune.study import run_study_file
from dynamo_tune.study.run.events import Event, Waiting
from dynamo_tune.study.run.services import metrics_backend, preflight
from dynamo_tune.study.spec.schema import MetricsSpec
from dynamo_tune.study.spec.space import Candidate
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.result import WorkloadReport

# -- the judgement, pure -----------------------------------------------------------------------


def _target(instance: str, health: str = "up", error: str = "") -> TargetState:
    return TargetState(instance, health, last_scrape=100.0, interval_s=1.0, last_error=error)


def _up(instance: str, *values: float) -> tuple[frozenset[tuple[str, str]], list[Any]]:
    labels = frozenset({("__name__", "up"), ("instance", instance)})
    return labels, [(10.0 + i, v) for i, v in enumerate(values)]


def test_window_faults_name_what_the_scrapes_missed() -> None:
    a, b = _target("a:1"), _target("b:2")
    assert window_faults([a, b], [_up("a:1", 1, 1), _up("b:2", 1)], known_targets=True) == []
    assert window_faults([], None, known_targets=True) == ["prometheus has no active targets"]
    down = _target("b:2", "down", 'Get "http://b:2/metrics": connection refused')
    assert window_faults([a, down], [_up("a:1", 1), _up("b:2", 1, 0)], known_targets=True) == [
        'target b:2 is down at the window end (Get "http://b:2/metrics": connection refused)',
        "target b:2 was down at 1 of 2 scrapes inside it",
    ]
    assert window_faults([a, b], [_up("a:1", 1, 1)], known_targets=True) == [
        "target b:2 was not scraped inside the window"
    ]
    # without a targets API only the `up` series found are judged
    assert window_faults([], [_up("a:1", 0, 1)], known_targets=False) == [
        "target a:1 was down at 1 of 2 scrapes inside it"
    ]
    assert window_faults([], None, known_targets=False) == []


def test_not_ready_until_every_target_is_up_and_scraped_since_the_check() -> None:
    assert not_ready([], 50.0) == "it has no active targets"
    assert not_ready([_target("a:1", "down", "refused")], 50.0) == "targets not up: a:1 (refused)"
    assert not_ready([_target("a:1")], 100.0) == ("targets not scraped since the check began: a:1")
    assert not_ready([_target("a:1"), _target("b:2")], 50.0) is None
    assert ready_bound_s(1.0) == 20.0 and ready_bound_s(15.0) == 160.0


def test_an_unreachable_result_is_a_fault_with_its_reason() -> None:
    result = DynamoMetricsResult.unreachable("prometheus at http://127.0.0.1:10 is unreachable")
    assert result.fault == (
        "the metrics source could not be read: prometheus at http://127.0.0.1:10 is unreachable"
    )
    assert DynamoMetricsResult().fault is None


# -- real Prometheus -------------------------------------------------------------------------


class RestartableExporter(DynamoExporter):
    """The Dynamo exporter whose HTTP server can be stopped and started again (same port,
    same registry: no counter reset)."""

    def restart(self) -> None:
        self._server, self._thread = start_http_server(
            self.port, addr=LOOPBACK, registry=self.registry
        )


@pytest.fixture
def exporter() -> Iterator[RestartableExporter]:
    served = RestartableExporter()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def empty_prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus just started, with no scrape target yet (its discovery has not run)."""
    server = asyncio.run(start_prometheus(tmp_path / "prometheus", {}))
    try:
        yield server
    finally:
        server.stop()


Hook = Callable[[], Awaitable[None]]


class FeedingWorkload:
    """A workload that feeds the exporter one request every 0.2 s for `steps` steps (real
    time), running `before[run]` first and `midway[run]` halfway, and reports its window."""

    def __init__(
        self,
        exporter: DynamoExporter,
        steps: int = 15,
        before: dict[int, Hook] | None = None,
        midway: dict[int, Hook] | None = None,
    ) -> None:
        self.exporter = exporter
        self.steps = steps
        self.before = before or {}
        self.midway = midway or {}
        self.runs = 0

    async def run(self, endpoints: Endpoints, hints: PrefixHints) -> WorkloadReport:
        run, self.runs = self.runs, self.runs + 1
        if run in self.before:
            await self.before[run]()
        start = time.time()
        for step in range(self.steps):
            if step == self.steps // 2 and run in self.midway:
                await self.midway[run]()
            self.exporter.feed("w0", 0.05, [0.01, 0.02], 1000, 400)
            await asyncio.sleep(0.2)
        end = time.time()
        return WorkloadReport(
            window_start=start,
            window_end=end,
            traffic_start=start,
            traffic_end=end,
            requests_sent=self.steps,
            requests_ok=self.steps,
            prompt_tokens=1000 * self.steps,
            cached_tokens=400 * self.steps,
        )


def _study(folder: Path, prometheus_url: str, workload: FeedingWorkload, *, check: bool) -> Any:
    """(study file, services factory): one COMPLETE trial wanted, the fakes as deployment,
    `workload` feeding the exporter, metrics read from the real Prometheus."""
    path = write_study(
        folder,
        {
            "study.n_trials": 1,
            "study.max_failures_in_a_row": 3,
            "metrics": {"prometheus_url": prometheus_url, "timeout_s": 5},
            "objective.constraints": [],
        },
    )
    stack = fake_stack(clock=RealClock())

    def services(handle: StudyHandle) -> Any:
        metrics: MetricsSpec = handle.loaded.spec.metrics

        async def first_check(endpoints: Endpoints, notify: Callable[[str], None]) -> None:
            await preflight(metrics, endpoints, notify)

        def workload_for(candidate: Candidate) -> FeedingWorkload:
            return workload

        return dataclasses.replace(
            stack.services(handle),
            workload_for=workload_for,
            metrics_for=lambda endpoints: metrics_backend(metrics, endpoints),
            preflight=first_check if check else None,
        )

    return path, services


@pytest.mark.integration
def test_the_pre_run_check_waits_for_a_fresh_prometheus_to_scrape(
    tmp_path: Path, exporter: RestartableExporter, empty_prometheus: PrometheusServer
) -> None:
    workload = FeedingWorkload(exporter)
    path, services = _study(tmp_path, empty_prometheus.url, workload, check=True)
    events: list[Event] = []
    # the Prometheus finds its target 2 s after the run began
    timer = threading.Timer(
        2.0, lambda: empty_prometheus.set_targets({exporter.address: "frontend"})
    )
    timer.start()
    try:
        run_study_file(path, services, report=events.append)
    finally:
        timer.cancel()
        timer.join()
    waits = [e.message for e in events if isinstance(e, Waiting)]
    assert waits == ["waiting for Prometheus to find its scrape targets (up to 20 s)"]
    (trial,) = open_study(path).get_trials()
    assert trial.state.name == "COMPLETE", trial.user_attrs.get("fail_reason")
    assert trial.user_attrs["feasible"] is True and trial.user_attrs["violations"] == []
    assert trial.user_attrs["kv_efficiency"] == pytest.approx(0.4)
    assert trial.user_attrs["errors"] == []


@pytest.mark.integration
def test_the_pre_run_check_gives_up_naming_what_is_missing(
    empty_prometheus: PrometheusServer,
) -> None:
    spec = MetricsSpec(prometheus_url=empty_prometheus.url)
    endpoints = Endpoints(frontend_url="http://127.0.0.1:9", model="tiny", scrape_interval_s=0.1)
    said: list[str] = []
    began = time.monotonic()
    with pytest.raises(MetricsError) as caught:
        asyncio.run(preflight(spec, endpoints, said.append))
    assert 11.0 <= time.monotonic() - began < 16.0  # 10 intervals + 10 s
    assert said == ["waiting for Prometheus to find its scrape targets (up to 11 s)"]
    assert str(caught.value) == (
        f"prometheus at {empty_prometheus.url} cannot measure a window after 11 s: "
        "it has no active targets"
    )
    assert caught.value.exit_code == 2


@pytest.mark.integration
def test_a_first_trial_without_targets_fails_as_a_fault_and_is_measured_again(
    tmp_path: Path, exporter: RestartableExporter, empty_prometheus: PrometheusServer
) -> None:
    async def found() -> None:  # discovery catches up while trial #0 is failing
        empty_prometheus.set_targets({exporter.address: "frontend"})

    async def scraped() -> None:  # the retry's window starts once the target is scraped
        await wait_scraped_after(empty_prometheus.url, time.time(), timeout_s=15)

    workload = FeedingWorkload(exporter, midway={0: found}, before={1: scraped})
    path, services = _study(tmp_path, empty_prometheus.url, workload, check=False)
    run_study_file(path, services)
    failed, retry = open_study(path).get_trials()
    assert failed.state.name == "FAIL"
    assert failed.user_attrs["fault"] == "metrics: prometheus has no active targets"
    assert failed.user_attrs["fail_reason"] == (
        "collect: MeasurementFault: prometheus has no active targets"
    )
    assert "violations" not in failed.user_attrs and "feasible" not in failed.user_attrs
    assert retry.state.name == "COMPLETE" and retry.user_attrs["retry_of"] == 0
    assert retry.params == failed.params and retry.user_attrs["feasible"] is True


@pytest.mark.integration
def test_a_target_stopped_mid_window_fails_the_trial_as_a_fault_and_retries(
    tmp_path: Path, exporter: RestartableExporter, prometheus_of_exporter: PrometheusServer
) -> None:
    async def outage() -> None:  # /metrics refuses for 2.5 scrapes, then comes back
        exporter.stop()
        await asyncio.sleep(2.5)
        exporter.restart()

    workload = FeedingWorkload(exporter, midway={0: outage})
    path, services = _study(tmp_path, prometheus_of_exporter.url, workload, check=True)
    run_study_file(path, services)
    failed, retry = open_study(path).get_trials()
    assert failed.state.name == "FAIL"
    fault = failed.user_attrs["fault"]
    assert fault.startswith(f"metrics: target {exporter.address} was down at "), fault
    assert fault.endswith(" scrapes inside it"), fault
    assert failed.user_attrs["fail_reason"] == (
        f"collect: MeasurementFault: {fault.removeprefix('metrics: ')}"
    )
    assert retry.state.name == "COMPLETE" and retry.user_attrs["retry_of"] == 0
    assert retry.user_attrs["feasible"] is True


@pytest.fixture
def prometheus_of_exporter(
    tmp_path: Path, exporter: RestartableExporter
) -> Iterator[PrometheusServer]:
    server = asyncio.run(start_prometheus(tmp_path / "prom", {exporter.address: "frontend"}))
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.integration
def test_a_series_born_inside_the_window_counts_from_zero(
    exporter: RestartableExporter, prometheus_of_exporter: PrometheusServer
) -> None:
    url = prometheus_of_exporter.url
    asyncio.run(wait_scraped_after(url, time.time()))
    start = time.time()
    time.sleep(1.5)  # at least one scrape inside the window before the series exists
    for i in range(12):  # the frontend serves its first requests: every series is born now
        exporter.feed("born", 0.03 + i * 0.01, [0.01, 0.02], 1000, 400)
    time.sleep(1.2)
    end = time.time()
    series = "dynamo_frontend_input_sequence_tokens_sum"
    at_start = httpx.get(f"{url}/api/v1/query", params={"query": series, "time": start}).json()
    assert at_start["data"]["result"] == []  # not there at the window's start edge
    backend = PrometheusBackend(url, scrape_interval_s=1.0)
    result = asyncio.run(backend.collect(start, end))
    assert result.fault is None and result.errors == [], result.errors
    assert result.frontend_input_tokens_rate is not None
    assert result.frontend_input_tokens_rate * (end - start) == pytest.approx(12_000)
    assert result.frontend_cached_tokens_rate is not None
    assert result.frontend_cached_tokens_rate * (end - start) == pytest.approx(4_800)
    assert result.requests_per_minute is not None
    assert result.requests_per_minute * (end - start) / 60 == pytest.approx(12)
    core = result.get_core_metrics()
    assert core.is_complete() and core.kv_efficiency == pytest.approx(0.4)
