"""An already-running deployment given by URLs. Does I/O: HTTP GETs for readiness.

Its router is fixed: `apply()` accepts only the configuration the deployment runs
(`spec.router`) and refuses any other router parameter with a `SpecError` naming it.
Client-side hints are not router parameters and keep working. Ready means `/v1/models` lists
the model (`readiness.wait_for_model`). `reset()` cannot cool the deployment's caches and
does nothing. Healthy (`check_health`) means `/v1/models` lists the model at one look
(`model_fault`); nothing here can bring a broken deployment back but waiting for it.
"""

from __future__ import annotations

import httpx

from dynamo_tune.deploy.base import AppliedConfig, Endpoints
from dynamo_tune.deploy.readiness import models_listed, wait_for_model
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import ExternalDeploymentSpec
from dynamo_tune.errors import SpecError


def changed_fields(fixed: RouterConfig, requested: RouterConfig) -> dict[str, object]:
    """Fields of `requested` that differ from `fixed` -> requested value. Pure."""
    have, want = fixed.model_dump(), requested.model_dump()
    return {name: want[name] for name in want if want[name] != have[name]}


def refuse_router_change(fixed: RouterConfig, requested: RouterConfig) -> None:
    """Raise `SpecError` naming every router parameter an external deployment cannot set."""
    changed = changed_fields(fixed, requested)
    if changed:
        listed = ", ".join(f"router.{name}={value!r}" for name, value in changed.items())
        raise SpecError(
            f"an external deployment cannot set router parameters ({listed}); its router is "
            "fixed by deployment.router — remove them from the search space or use "
            "kind: local / command"
        )


HEALTH_TIMEOUT_S = 5.0
"""How long one health look may take."""
READY_TIMEOUT_S = 120.0
"""How long `wait_ready` waits for the model by default (the deployment restarts nothing)."""


async def model_fault(client: httpx.AsyncClient, frontend_url: str, model: str) -> str | None:
    """None if `frontend_url/v1/models` lists `model` now; else what was seen, in one line."""
    url = f"{frontend_url}/v1/models"
    try:
        response = await client.get(url)
        listed = models_listed(response.json()) if response.status_code == 200 else set()
    except (httpx.HTTPError, ValueError) as exc:
        return f"{url} does not answer ({type(exc).__name__}: {exc})"
    if model in listed:
        return None
    return f"{url} no longer lists model {model!r} (HTTP {response.status_code})"


class ExternalDeployment:
    """A `Deployment` over URLs; nothing is started or stopped."""

    def __init__(self, spec: ExternalDeploymentSpec) -> None:
        self.spec = spec

    async def start(self) -> None:
        await wait_for_model(self.spec.frontend_url.rstrip("/"), self.spec.model, 30.0)

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        refuse_router_change(self.spec.router, router)
        return AppliedConfig(router=router)

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        timeout_s = READY_TIMEOUT_S if timeout_s is None else timeout_s
        await wait_for_model(self.spec.frontend_url.rstrip("/"), self.spec.model, timeout_s)

    async def reset(self) -> None:
        return None

    async def check_health(self) -> str | None:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S) as client:
            return await model_fault(client, self.spec.frontend_url.rstrip("/"), self.spec.model)

    def endpoints(self) -> Endpoints:
        return self.spec.endpoints()

    async def stop(self) -> None:
        return None
