"""An already-running deployment given by URLs. Does I/O: HTTP GETs for readiness.

Its router is fixed: `apply()` accepts only the configuration the deployment runs
(`spec.router`) and refuses any other router parameter with a `SpecError` naming it.
Client-side hints are not router parameters and keep working. Ready means `/v1/models` lists
the model (`readiness.wait_for_model`). `reset()` cannot cool the deployment's caches and
does nothing.
"""

from __future__ import annotations

from dynamo_tune.deploy.base import AppliedConfig, Endpoints
from dynamo_tune.deploy.readiness import wait_for_model
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


class ExternalDeployment:
    """A `Deployment` over URLs; nothing is started or stopped."""

    def __init__(self, spec: ExternalDeploymentSpec) -> None:
        self.spec = spec

    async def start(self) -> None:
        await wait_for_model(self.spec.frontend_url.rstrip("/"), self.spec.model, 30.0)

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        refuse_router_change(self.spec.router, router)
        return AppliedConfig(router=router)

    async def wait_ready(self, timeout_s: float) -> None:
        await wait_for_model(self.spec.frontend_url.rstrip("/"), self.spec.model, timeout_s)

    async def reset(self) -> None:
        return None

    def endpoints(self) -> Endpoints:
        return self.spec.endpoints()

    async def stop(self) -> None:
        return None
