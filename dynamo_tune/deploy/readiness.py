"""Is a Dynamo deployment ready? Does I/O: HTTP GETs to the frontend and `/metrics` URLs.

`poll_until` is the one wait-until-ready loop of the deploy package: it calls a check every
`interval_s` until the check reports ready, or raises `NotReady` with the last observation
once the deadline has passed. On it:
- `wait_for_model`: `GET /v1/models` lists the model (external and command deployments);
- `wait_until_ready`: the local stack is ready — `/v1/models` lists the model, `GET /health`
  lists the expected number of `generate` instances (none of them a stale one from before a
  restart), and every worker `/metrics` URL answers 200.
`generate_instances` and `models_listed` are pure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from dynamo_tune.errors import DeploymentError
from dynamo_tune.process import ManagedProcess, raise_if_exited

T = TypeVar("T")


class NotReady(DeploymentError):
    """Something did not become ready before its deadline."""


@dataclass(frozen=True)
class Observation(Generic[T]):
    """One look by a `poll_until` check: ready or not, what was seen, and a value to return."""

    ready: bool
    detail: str
    value: T


async def poll_until(
    check: Callable[[], Awaitable[Observation[T]]],
    *,
    what: str,
    timeout_s: float,
    interval_s: float,
    context: Callable[[], str] | None = None,
) -> T:
    """Call `check` every `interval_s` seconds until it reports ready; return its value.

    `check` runs at least once, and once more after the deadline has passed. Past
    `timeout_s` seconds, raises `NotReady`: "{what} after {timeout_s} s ({last detail})",
    followed on new lines by `context()` when given (e.g. log tails). An exception `check`
    raises (e.g. a component exited) propagates at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        seen = await check()
        if seen.ready:
            return seen.value
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context is not None else ""
            raise NotReady(f"{what} after {timeout_s} s ({seen.detail}){extra}")
        await asyncio.sleep(interval_s)


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


async def wait_for_model(frontend_url: str, model: str, timeout_s: float) -> None:
    """Wait until `frontend_url/v1/models` lists `model`; `NotReady` after `timeout_s`."""
    async with httpx.AsyncClient(timeout=5.0) as client:

        async def check() -> Observation[None]:
            try:
                response = await client.get(f"{frontend_url}/v1/models")
                listed = models_listed(response.json()) if response.status_code == 200 else set()
            except (httpx.HTTPError, ValueError) as exc:
                return Observation(False, f"{type(exc).__name__}: {exc}", None)
            detail = f"HTTP {response.status_code}, models {sorted(listed)}"
            return Observation(model in listed, detail, None)

        await poll_until(
            check,
            what=f"{frontend_url} does not serve model {model!r}",
            timeout_s=timeout_s,
            interval_s=0.5,
        )


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
    `procs` exits (with its log tail); `NotReady` after `timeout_s` (with every log's tail)."""
    async with httpx.AsyncClient(timeout=2.0) as client:

        async def check() -> Observation[set[int]]:
            raise_if_exited(procs)
            seen = await probe(
                client, target.frontend_url, target.model, target.worker_metrics_urls
            )
            return Observation(
                seen.ready(target.workers, stale), seen.describe(target.workers), seen.instances
            )

        return await poll_until(
            check,
            what="not ready",
            timeout_s=timeout_s,
            interval_s=0.1,
            context=lambda: "\n".join(f"--- {p.name}:\n{p.log_tail(10)}" for p in procs),
        )
