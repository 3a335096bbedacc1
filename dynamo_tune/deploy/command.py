"""A deployment driven by user commands. Does I/O: runs argv templates, polls a ready URL.

Each of `start`, `apply`, `reset`, `stop` is an argv template (see `templates`) run to
completion without a shell, in its own process group, with stdout and stderr logged under
the run dir. A non-zero exit (or a timeout) raises `DeploymentError` with the tail of the
command's stderr. Readiness: `ready_url` answers 2xx and the frontend lists the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

import httpx

from dynamo_tune.deploy.base import AppliedConfig, Endpoints
from dynamo_tune.deploy.external import wait_for_model
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.router_flags import router_flags
from dynamo_tune.deploy.spec import CommandDeploymentSpec
from dynamo_tune.deploy.templates import render
from dynamo_tune.errors import DeploymentError


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def run_command(
    argv: list[str],
    log_dir: Path,
    name: str,
    timeout_s: float,
    env: dict[str, str],
    cwd: Path | None,
) -> None:
    """Run `argv` (no shell) to completion; `DeploymentError` with its stderr tail on failure."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.out.log", log_dir / f"{name}.err.log"
    with out_path.open("ab") as out, err_path.open("wb") as err:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise DeploymentError(f"{name}: cannot run {argv[0]!r}: {exc}") from exc
        try:
            code = await asyncio.wait_for(proc.wait(), timeout_s)
        except BaseException:  # timeout or cancellation: never leave the group behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise DeploymentError(
                f"{name} command {argv!r} did not finish within {timeout_s} s:\n{_tail(err_path)}"
            ) from None
    if code != 0:
        raise DeploymentError(
            f"{name} command {argv!r} exited with code {code}; stderr tail:\n{_tail(err_path)}"
        )


class CommandDeployment:
    """A `Deployment` whose lifecycle is user commands (see module docstring)."""

    def __init__(self, spec: CommandDeploymentSpec) -> None:
        self.spec = spec
        self.router = spec.router
        self.run_dir = spec.run_dir or Path(tempfile.mkdtemp(prefix="dynamo-tune-command-"))
        self._env = {**os.environ, **spec.env}

    async def _run(self, name: str, router: RouterConfig) -> bool:
        template = getattr(self.spec, name)
        if template is None:
            return False
        plain = {
            "frontend_url": self.spec.frontend_url.rstrip("/"),
            "model": self.spec.model,
            "run_dir": str(self.run_dir),
        }
        argv = render(template, router, plain, where=f"deployment.{name}")
        await run_command(
            argv,
            self.run_dir / "logs",
            name,
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

    async def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        detail = ""
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                try:
                    response = await client.get(self.spec.ready_url)
                    if response.is_success:
                        break
                    detail = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    detail = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise DeploymentError(
                        f"{self.spec.ready_url} not ready after {timeout_s} s ({detail})"
                    )
                await asyncio.sleep(0.5)
        remaining = max(1.0, deadline - time.monotonic())
        await wait_for_model(self.spec.frontend_url.rstrip("/"), self.spec.model, remaining)

    def endpoints(self) -> Endpoints:
        return self.spec.endpoints()

    async def stop(self) -> None:
        await self._run("stop", self.router)
