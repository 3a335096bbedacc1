"""The deployment seam: what a trial needs from a Dynamo deployment. Pure (types only).

A `Deployment` is started once per study, `apply()`-ed once per trial, and stopped at the
end. Methods are async (the objective runs one `asyncio.run` per trial); implementations
must not keep event-loop-bound objects (clients, tasks) between calls.

Faults: the objective asks `check_health()` right after each workload. A deployment that
broke meanwhile (a process exited, the ready check fails) fails the trial as a
`DeploymentFault` — the fault's, not the configuration's — and the next `apply()` (or
`reset()`) must bring it back (restart what died, or rerun the user's commands).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from dynamo_tune.deploy.router import RouterConfig

DEFAULT_SCRAPE_INTERVAL_S = 1.0
"""Scrape interval assumed when a deployment does not say (the local stack's interval)."""
QUIET_GAP_SCRAPES = 2.0
QUIET_GAP_MARGIN_S = 0.1


class Endpoints(BaseModel):
    """Where a running deployment answers. URLs are absolute (`http://127.0.0.1:PORT`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frontend_url: str = Field(description="OpenAI-compatible HTTP frontend, no trailing slash")
    model: str = Field(description="Model name to put in requests")
    metrics_urls: list[str] = Field(
        default_factory=list, description="Every /metrics URL (frontend first, then workers)"
    )
    prometheus_url: str | None = Field(default=None, description="Prometheus scraping them")
    scrape_interval_s: float | None = Field(
        default=None, description="Prometheus scrape interval, when known"
    )

    def quiet_gap_seconds(self) -> float:
        """The quiet gap between windows on this deployment (see `quiet_gap_seconds`)."""
        return quiet_gap_seconds(self.scrape_interval_s)


def quiet_gap_seconds(scrape_interval_s: float | None) -> float:
    """Seconds between two windows (or warmup and a window) so no scrape holds both.

    `2 x scrape interval + 0.1 s`; the interval defaults to `DEFAULT_SCRAPE_INTERVAL_S`.
    """
    interval = scrape_interval_s or DEFAULT_SCRAPE_INTERVAL_S
    return QUIET_GAP_SCRAPES * interval + QUIET_GAP_MARGIN_S


class AppliedConfig(BaseModel):
    """What `apply()` did: the router config in force and how the frontend runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    router: RouterConfig
    frontend_args: list[str] = Field(
        default_factory=list, description="Router flags the frontend runs with"
    )
    restarted: list[str] = Field(
        default_factory=list, description="Components restarted, e.g. ['frontend', 'worker-0']"
    )
    restart_seconds: float = Field(default=0.0, ge=0, description="Wall time of the restart")


@runtime_checkable
class Deployment(Protocol):
    """A Dynamo deployment a study can configure. Raises `DeploymentError` on failure."""

    async def start(self) -> None:
        """Bring the deployment up (idempotent for already-running external ones)."""

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        """Put `router` in force (restarting what must restart) and return what was done."""

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Return once the frontend lists the model and every worker is healthy; give up after
        `timeout_s` (None: the deployment's own ready timeout, e.g. `ready_timeout_s`)."""

    async def reset(self) -> None:
        """Make the next trial start with cold KV caches (where the deployment can)."""

    async def check_health(self) -> str | None:
        """None while the deployment still serves; else one line saying what broke (e.g.
        "worker-1 (pid 4242) exited (signal 9, SIGKILL)"). One quick look, no waiting; it does
        not raise for a broken deployment (that is its answer)."""

    def endpoints(self) -> Endpoints:
        """Current endpoints (valid after `start()`)."""

    async def stop(self) -> None:
        """Stop whatever this object started. Idempotent."""
