"""Is a Dynamo deployment ready? Does I/O: HTTP GETs to the frontend and `/metrics` URLs.

Ready means: `GET /v1/models` lists the model, `GET /health` lists the expected number of
`generate` instances (none of them a stale one from before a restart), and every worker
`/metrics` URL answers 200. `generate_instances` and `models_listed` are pure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dynamo_tune.deploy.process import ManagedProcess, raise_if_exited
from dynamo_tune.errors import DeploymentError


def models_listed(body: Any) -> set[str]:
    """Model ids in a `/v1/models` body. Pure."""
    try:
        return {str(m["id"]) for m in body["data"]}
    except (KeyError, TypeError):
        return set()


def generate_instances(body: Any) -> set[int]:
    """Instance ids of the `generate` endpoints in a frontend `/health` body. Pure."""
    try:
        return {int(i["instance_id"]) for i in body["instances"] if i.get("endpoint") == "generate"}
    except (KeyError, TypeError, ValueError):
        return set()


@dataclass
class Probe:
    """One readiness observation."""

    model_listed: bool = False
    instances: set[int] = field(default_factory=set)
    metrics_down: list[str] = field(default_factory=list)
    error: str = ""

    def ready(self, workers: int, stale: Collection[int] = ()) -> bool:
        return (
            self.model_listed
            and len(self.instances) == workers
            and not (self.instances & set(stale))
            and not self.metrics_down
        )

    def describe(self, workers: int) -> str:
        parts = [
            f"model listed: {self.model_listed}",
            f"generate instances: {len(self.instances)}/{workers}",
        ]
        if self.metrics_down:
            parts.append(f"metrics not answering: {', '.join(self.metrics_down)}")
        if self.error:
            parts.append(self.error)
        return "; ".join(parts)


async def probe(
    client: httpx.AsyncClient, frontend_url: str, model: str, metrics_urls: Sequence[str]
) -> Probe:
    """Observe the frontend and every `/metrics` URL once (never raises on HTTP errors)."""
    result = Probe()
    try:
        models = await client.get(f"{frontend_url}/v1/models")
        result.model_listed = models.status_code == 200 and model in models_listed(models.json())
        health = await client.get(f"{frontend_url}/health")
        if health.status_code == 200:
            result.instances = generate_instances(health.json())
    except (httpx.HTTPError, ValueError) as exc:
        result.error = f"frontend: {type(exc).__name__}"
    for url in metrics_urls:
        try:
            if (await client.get(url)).status_code != 200:
                result.metrics_down.append(url)
        except httpx.HTTPError:
            result.metrics_down.append(url)
    return result


@dataclass(frozen=True)
class ReadyTarget:
    """What "ready" is checked against: the frontend, its model, the workers' /metrics."""

    frontend_url: str
    model: str
    worker_metrics_urls: list[str]
    workers: int


async def wait_until_ready(
    target: ReadyTarget,
    stale: Collection[int],
    timeout_s: float,
    procs: Sequence[ManagedProcess] = (),
) -> set[int]:
    """Poll until ready; return the worker instance ids. `DeploymentError` when a process in
    `procs` exits (with its log tail) or after `timeout_s` (with every log's tail)."""
    deadline = time.monotonic() + timeout_s
    last = Probe()
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            raise_if_exited(procs)
            last = await probe(
                client, target.frontend_url, target.model, target.worker_metrics_urls
            )
            if last.ready(target.workers, stale):
                return last.instances
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {p.name}:\n{p.log_tail(10)}" for p in procs)
    raise DeploymentError(
        f"not ready after {timeout_s} s ({last.describe(target.workers)})\n{tails}"
    )
