"""A deployment driven by user commands. Does I/O: runs argv templates, polls a ready URL.

Each of `start`, `apply`, `reset`, `stop` is an argv template (see `templates`) run to
completion by `dynamo_tune.process.run_to_completion`: no shell, its own process group,
stdout appended to `logs/<step>.out.log` and stderr written to `logs/<step>.err.log` under
the run dir. A non-zero exit (or a timeout) raises `DeploymentError` with the tail of the
command's stderr. Readiness: `ready_url` answers 2xx, then the frontend lists the model
(both polled with `readiness.poll_until`). Health (`check_health`, after every workload): the
same two checks, once. After a fault the next trial's `apply` (or, without one, the ready
wait) is what brings the deployment back: the user's commands decide how.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx

from dynamo_tune.deploy.base import AppliedConfig, Endpoints
from dynamo_tune.deploy.external import HEALTH_TIMEOUT_S, model_fault
from dynamo_tune.deploy.readiness import Observation, poll_until, wait_for_model
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import router_flags
from dynamo_tune.deploy.spec import CommandDeploymentSpec
from dynamo_tune.deploy.templates import render
from dynamo_tune.errors import DeploymentError
from dynamo_tune.process import run_to_completion


async def run_step(
    argv: list[str],
    log_dir: Path,
    step: str,
    timeout_s: float,
    env: dict[str, str],
    cwd: Path | None,
) -> None:
    """Run one lifecycle step's `argv` to completion, logging under `log_dir`.

    `DeploymentError` naming `deployment.<step>`, with the stderr tail, on failure.
    """
    await run_to_completion(
        argv,
        name=f"deployment.{step}",
        error=DeploymentError,
        timeout_s=timeout_s,
        env=env,
        cwd=cwd,
        stdout_path=log_dir / f"{step}.out.log",
        stderr_path=log_dir / f"{step}.err.log",
    )


class CommandDeployment:
    """A `Deployment` whose lifecycle is user commands (see module docstring)."""

    def __init__(self, spec: CommandDeploymentSpec) -> None:
        self.spec = spec
        self.router = spec.router
        self.run_dir = spec.run_dir or Path(tempfile.mkdtemp(prefix="dynamo-tune-command-"))
        self._env = {**os.environ, **spec.env}

    async def _run(self, step: str, router: RouterConfig) -> bool:
        template = getattr(self.spec, step)
        if template is None:
            return False
        plain = {
            "frontend_url": self.spec.frontend_url.rstrip("/"),
            "model": self.spec.model,
            "run_dir": str(self.run_dir),
        }
        argv = render(template, router, plain, where=f"deployment.{step}")
        await run_step(
            argv,
            self.run_dir / "logs",
            step,
            self.spec.command_timeout_s,
            self._env,
            self.spec.cwd,
        )
        return True

    async def start(self) -> None:
        await self._run("start", self.router)
        await self.wait_ready(self.spec.ready_timeout_s)

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        t0 = time.monotonic()
        ran = await self._run("apply", router)
        self.router = router
        if ran:
            await self.wait_ready(self.spec.ready_timeout_s)
        return AppliedConfig(
            router=router,
            frontend_args=router_flags(router),
            restarted=["apply"] if ran else [],
            restart_seconds=time.monotonic() - t0 if ran else 0.0,
        )

    async def reset(self) -> None:
        if await self._run("reset", self.router):
            await self.wait_ready(self.spec.ready_timeout_s)

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        timeout_s = self.spec.ready_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=5.0) as client:

            async def check() -> Observation[None]:
                try:
                    response = await client.get(self.spec.ready_url)
                except httpx.HTTPError as exc:
                    return Observation(False, f"{type(exc).__name__}: {exc}", None)
                return Observation(response.is_success, f"HTTP {response.status_code}", None)

            await poll_until(
                check, what=f"{self.spec.ready_url} not ready", timeout_s=timeout_s, interval_s=0.5
            )
        remaining = max(1.0, deadline - time.monotonic())
        await wait_for_model(self.spec.frontend_url.rstrip("/"), self.spec.model, remaining)

    async def check_health(self) -> str | None:
        url = self.spec.ready_url
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S) as client:
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                return f"ready check {url} failed ({type(exc).__name__}: {exc})"
            if not response.is_success:
                return f"ready check {url} failed (HTTP {response.status_code})"
            return await model_fault(client, self.spec.frontend_url.rstrip("/"), self.spec.model)

    def endpoints(self) -> Endpoints:
        return self.spec.endpoints()

    async def stop(self) -> None:
        await self._run("stop", self.router)
