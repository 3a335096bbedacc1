"""The real trial services of a study file: deployment, workload, metrics backend. Does I/O.

`build_services` is what `dynamo-tune run` uses; tests build `TrialServices` from fakes.
Before the first trial, `preflight` checks that the metrics source answers (with the study's
credentials), so an unreachable Prometheus or a rejected credential is one clear error
(exit 2) and no trial is recorded; a Prometheus is also waited for until it scrapes every
target (`metrics.wait_for_targets`). `metrics.backend: auto` is resolved here, per endpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from dynamo_tune.deploy import make_deployment
from dynamo_tune.deploy.base import Endpoints
from dynamo_tune.errors import MetricsError
from dynamo_tune.metrics import (
    MetricsBackend,
    PrometheusAPI,
    PrometheusBackend,
    QueryFailed,
    ScrapeBackend,
    new_client,
    wait_for_targets,
)
from dynamo_tune.study.spec.schema import MetricsSpec
from dynamo_tune.study.spec.space import Candidate
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.trial.artifacts import FileArtifactSink
from dynamo_tune.study.trial.objective import TrialServices
from dynamo_tune.workload import make_workload
from dynamo_tune.workload.base import Workload


def uses_prometheus(metrics: MetricsSpec, endpoints: Endpoints) -> bool:
    """Whether trials read a Prometheus: `backend: auto` does when there is one."""
    if metrics.backend == "auto":
        return (metrics.prometheus_url or endpoints.prometheus_url) is not None
    return metrics.backend == "prometheus"


def prometheus_url(metrics: MetricsSpec, endpoints: Endpoints) -> str:
    url = metrics.prometheus_url or endpoints.prometheus_url
    if url is None:
        raise MetricsError(
            "metrics.backend is prometheus but the deployment runs no Prometheus: "
            "set metrics.prometheus_url or use `backend: auto` or `backend: scrape`"
        )
    return url


def metrics_backend(metrics: MetricsSpec, endpoints: Endpoints) -> MetricsBackend:
    """The configured backend for the deployment's current endpoints (`auto` resolved)."""
    if not uses_prometheus(metrics, endpoints):
        return ScrapeBackend(list(endpoints.metrics_urls), timeout_s=metrics.timeout_s)
    return PrometheusBackend(
        prometheus_url(metrics, endpoints),
        timeout_s=metrics.timeout_s,
        scrape_interval_s=endpoints.scrape_interval_s,
        access=metrics.access(),
    )


def _quiet(message: str) -> None:
    """Drops what the pre-run check says while it waits."""


async def preflight(
    metrics: MetricsSpec, endpoints: Endpoints, notify: Callable[[str], None] = _quiet
) -> None:
    """MetricsError unless the metrics source answers now (to the study's credentials) and,
    for a Prometheus, can measure a window: it has at least one active target, and every
    active target is up and was scraped after this check began. It waits for that at most
    10 scrape intervals plus 10 s (the deployment's interval, else the targets' longest,
    else 15 s), saying once through `notify` that it waits
    (`waiting for Prometheus to scrape 3 targets (up to 20 s)`); past that the MetricsError
    names what is missing."""
    if not uses_prometheus(metrics, endpoints):
        urls = list(endpoints.metrics_urls)
        if not urls:
            raise MetricsError(
                f"metrics.backend {metrics.backend}: the deployment runs no Prometheus and "
                "lists no /metrics URL"
            )
        async with httpx.AsyncClient(timeout=metrics.timeout_s) as client:
            for url in urls:
                try:
                    (await client.get(url)).raise_for_status()
                except httpx.HTTPError as exc:
                    raise MetricsError(f"cannot scrape {url}: {exc or type(exc).__name__}") from exc
        return
    url = prometheus_url(metrics, endpoints)
    async with new_client(metrics.timeout_s, metrics.access()) as client:
        api = PrometheusAPI(client, url)
        try:
            await api.query("vector(1)")
            await wait_for_targets(api, endpoints.scrape_interval_s, notify)
        except QueryFailed as exc:
            raise MetricsError(
                api.rejection or f"Prometheus at {url} does not answer: {exc}"
            ) from exc


def build_services(handle: StudyHandle) -> TrialServices:
    """Deployment, workload and metrics of the study file, plus its artifact store."""
    spec = handle.loaded.spec
    size = spec.deployment.block_size

    built: dict[str, Workload] = {}

    def workload_for(candidate: Candidate) -> Workload:
        """The workload of a candidate; its request plan is built once per workload spec."""
        key = candidate.workload.model_dump_json()
        if key not in built:
            built[key] = make_workload(candidate.workload, block_size=size)
        return built[key]

    # The study's own workload is built now, before any trial: a trace that cannot be read
    # (a missing file, a malformed line) is a `SpecError` for the command, not a FAIL trial.
    built[spec.workload.model_dump_json()] = make_workload(spec.workload, block_size=size)

    async def check(endpoints: Endpoints, notify: Callable[[str], None]) -> None:
        await preflight(spec.metrics, endpoints, notify)

    return TrialServices(
        deployment=make_deployment(spec.deployment),
        workload_for=workload_for,
        metrics_for=lambda endpoints: metrics_backend(spec.metrics, endpoints),
        artifacts=FileArtifactSink(handle.target.artifact_dir),
        preflight=check,
    )
