"""The state file of `dynamo-tune stack up` and its health check. Does I/O: file, pids, HTTP.

It reads/writes a small JSON file, signals pids with 0 and sends HTTP GETs.
`stack up` writes `StackState` when ready and removes it on exit; `stack status` reads it and
checks that every recorded process is alive and the stack answers (model listed, every
worker healthy and its `/metrics` up, Prometheus ready).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dynamo_tune.deploy.local import LocalStack
from dynamo_tune.deploy.readiness import probe
from dynamo_tune.deploy.tiny_model import default_cache_dir
from dynamo_tune.errors import DeploymentError


def default_state_file() -> Path:
    return default_cache_dir() / "stack.json"


class StackState(BaseModel):
    """What `stack up` prints (`--json`) and records in its state file."""

    model_config = ConfigDict(extra="forbid")

    frontend_url: str
    model: str
    metrics_urls: list[str]
    prometheus_url: str | None
    scrape_interval_s: float | None
    workers: int
    block_size: int
    router_flags: list[str]
    run_dir: str
    pids: dict[str, int] = Field(description="component -> pid, plus 'dynamo-tune' (the parent)")
    notice: str = ""

    @classmethod
    def of(cls, stack: LocalStack, router_flags: list[str]) -> StackState:
        ep = stack.endpoints()
        return cls(
            frontend_url=ep.frontend_url,
            model=ep.model,
            metrics_urls=ep.metrics_urls,
            prometheus_url=ep.prometheus_url,
            scrape_interval_s=ep.scrape_interval_s,
            workers=stack.spec.workers,
            block_size=stack.spec.block_size,
            router_flags=router_flags,
            run_dir=str(stack.run_dir),
            pids={"dynamo-tune": os.getpid(), **stack.pids()},
            notice=stack.notice,
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=1))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> StackState:
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError:
            raise DeploymentError(f"no running stack: {path} does not exist") from None
        except (OSError, ValidationError) as exc:
            raise DeploymentError(f"unreadable stack state file {path}: {exc}") from exc


def pid_alive(pid: int) -> bool:
    """True if `pid` runs (a zombie — exited, not yet reaped — does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: signal 0 is all we know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


async def check(state: StackState) -> list[str]:
    """Every problem of the recorded stack (empty when healthy)."""
    problems = [
        f"{name} (pid {pid}) is not running"
        for name, pid in state.pids.items()
        if not pid_alive(pid)
    ]
    async with httpx.AsyncClient(timeout=3.0) as client:
        seen = await probe(client, state.frontend_url, state.model, state.metrics_urls)
        if not seen.ready(state.workers):
            problems.append(f"frontend {state.frontend_url}: {seen.describe(state.workers)}")
        if state.prometheus_url is not None:
            try:
                ready = (await client.get(f"{state.prometheus_url}/-/ready")).status_code == 200
            except httpx.HTTPError:
                ready = False
            if not ready:
                problems.append(f"prometheus {state.prometheus_url} is not ready")
    return problems
