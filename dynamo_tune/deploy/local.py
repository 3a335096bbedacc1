"""The local Dynamo stack (mocker workers, frontend, Prometheus). Does I/O: processes, HTTP.

It generates the tiny model, starts and stops processes (through `local_processes`), and
polls HTTP endpoints.

`apply()` restarts only the frontend when only router flags change; with `isolation:
restart` (or a new block size) it also restarts every worker, so the trial starts with cold
KV caches. `reset()` restarts the workers. Every restart waits until the frontend lists the
model and `/health` lists every (new) worker, then — when Prometheus runs — until Prometheus
has scraped each restarted process once, so no measured window straddles a counter reset.
Ports stay the same across restarts (targets and URLs do not change). A dead component is
reported as `DeploymentError` with the tail of its log. With `request_trace` the frontend
appends Dynamo's request trace to that file across every restart (a capture of the traffic).

Faults: `check_health()` names every frontend or worker process that has exited, with its
exit status ("worker-1 (pid 4242) exited (signal 9, SIGKILL)"; names match `logs/<name>.log`
and the Prometheus target labels, so its log is `<run dir>/logs/worker-1.log`). `apply()` and
`reset()` bring a broken stack back, also with `isolation: none`: a dead frontend is restarted,
and a dead worker restarts every worker (the ready check cannot tell a survivor's instance from
a stale one; a SIGKILL-ed worker's registration lingers, so this restart takes ~8 s instead of
~2 s), so the trial after a fault starts with cold caches. Prometheus is the metrics source,
not the deployment: its death shows as unreachable metrics (a measurement fault), not here;
the next `apply` starts it again on its port and data folder and waits until it has scraped
every component.

The run dir (`spec.run_dir`, else a new `dynamo-tune-stack-*` folder in the temp dir) holds
the logs, the discovery files, Prometheus's data and the components' own temporary files
(their `TMPDIR`). A temporary run dir is removed by `stop()`, also after Ctrl-C or SIGTERM; a
`spec.run_dir` is kept.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from dynamo_tune.deploy.base import AppliedConfig, Endpoints
from dynamo_tune.deploy.local_commands import frontend_router_args
from dynamo_tune.deploy.local_processes import StackProcesses, exit_status
from dynamo_tune.deploy.prometheus import PrometheusServer
from dynamo_tune.deploy.readiness import ReadyTarget, wait_until_ready
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.deploy.tiny_model import ensure_tiny_model
from dynamo_tune.errors import DeploymentError
from dynamo_tune.net import loopback_url
from dynamo_tune.process import raise_if_exited

log = logging.getLogger(__name__)


class LocalStack:
    """A `Deployment` of real Dynamo processes on 127.0.0.1 (see module docstring)."""

    def __init__(
        self,
        spec: LocalDeploymentSpec | None = None,
        *,
        python: str = sys.executable,
        model_cache_dir: Path | None = None,
        worker_env_extra: Mapping[str, str] | None = None,
    ) -> None:
        """`worker_env_extra`: variables added to every worker's environment after the stack's
        own (tests use it to start workers whose KV events never reach the router)."""
        self.spec = spec or LocalDeploymentSpec()
        self._model_cache_dir = model_cache_dir
        self._processes = StackProcesses(self.spec, python, worker_env_extra or {})
        self._router = self.spec.router
        self._block_size = self.spec.block_size
        self._run_dir: Path | None = None
        self._own_run_dir = False
        self._instances: set[int] = set()
        self.notice = ""  # e.g. "prometheus not on PATH: ..." (for the CLI)
        self.restarts = 0
        # Seconds of the last start/restart: to frontend+workers ready, and to scraped too.
        self.last_ready_s = 0.0
        self.last_total_s = 0.0

    # -- properties -------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        if self._run_dir is None:
            raise DeploymentError("the local stack is not started")
        return self._run_dir

    @property
    def router(self) -> RouterConfig:
        """The router configuration in force."""
        return self._router

    @property
    def prometheus(self) -> PrometheusServer | None:
        """The Prometheus server scraping the stack (None when it does not run)."""
        return self._processes.prometheus

    @property
    def frontend_url(self) -> str:
        return loopback_url(self._processes.frontend_port)

    @property
    def request_trace(self) -> Path | None:
        """The file the frontend appends its request trace to (absolute; None: no capture)."""
        return self._processes.request_trace

    def pids(self) -> dict[str, int]:
        """Component name -> pid of every running child (broker, frontend, workers, Prometheus)."""
        return {p.name: p.pid for p in self._processes.all() if p.pid is not None}

    def endpoints(self) -> Endpoints:
        if self._processes.frontend is None:
            raise DeploymentError("the local stack is not started")
        return Endpoints(
            frontend_url=self.frontend_url,
            model=self.spec.model_name,
            metrics_urls=[self.frontend_url + "/metrics", *self._processes.worker_metrics_urls()],
            prometheus_url=self.prometheus.url if self.prometheus else None,
            scrape_interval_s=self.spec.scrape_interval_s if self.prometheus else None,
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._processes.frontend is not None:
            return
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        t0 = time.monotonic()
        if self.spec.run_dir is not None:
            self._run_dir = self.spec.run_dir
            self._run_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._run_dir = Path(tempfile.mkdtemp(prefix="dynamo-tune-stack-"))
            self._own_run_dir = True
        discovery = self._run_dir / "discovery"
        shutil.rmtree(discovery, ignore_errors=True)  # stale registrations of an old run
        model_dir = ensure_tiny_model(self._model_cache_dir)
        procs = self._processes
        procs.open_request_trace()
        procs.start_broker(self._run_dir, model_dir)
        self.notice = procs.start_prometheus() or self.notice
        procs.spawn_workers(self._block_size)
        procs.spawn_frontend(self._router, self._block_size)
        await self._wait_ready(self.spec.ready_timeout_s, stale=set())
        ready_at = time.time()
        self.last_ready_s = time.monotonic() - t0
        if self.prometheus is not None:
            await self.prometheus.wait_ready()
            await self.prometheus.wait_scraped_after(list(procs.targets()), ready_at)
        self.last_total_s = time.monotonic() - t0
        log.info(
            "local stack ready in %.2f s (scraped: %.2f s) at %s",
            self.last_ready_s,
            self.last_total_s,
            self.frontend_url,
        )

    async def stop(self) -> None:
        """Stop every process; remove the run dir when the stack made it (a temporary one),
        also when the stop itself is interrupted (a second Ctrl-C cancels it): what is still
        running is then killed at once first."""
        try:
            await self._processes.stop()
        finally:
            self._instances = set()
            if self._own_run_dir and self._run_dir is not None:
                self._processes.kill()
                shutil.rmtree(self._run_dir, ignore_errors=True)
                self._run_dir = None

    # -- trials -----------------------------------------------------------------------------

    def _require_started(self, what: str) -> None:
        if self._processes.frontend is None:
            raise DeploymentError(f"{what}() on a local stack that is not started")

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        self._require_started("apply")
        await self._revive_prometheus()
        block_size = router.block_size or self.spec.mocker.block_size
        frontend_dead, worker_dead = self._processes.dead_parts()
        restart_workers = (
            self.spec.isolation == "restart" or block_size != self._block_size or worker_dead
        )
        old_args = frontend_router_args(self._router, self._block_size)
        new_args = frontend_router_args(router, block_size)
        self._router, self._block_size = router, block_size
        restarted = await self._restart(
            frontend=new_args != old_args or frontend_dead, workers=restart_workers
        )
        return AppliedConfig(
            router=router,
            frontend_args=new_args,
            restarted=restarted[0],
            restart_seconds=restarted[1],
        )

    async def reset(self) -> None:
        self._require_started("reset")
        await self._restart(frontend=self._processes.dead_parts()[0], workers=True)

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        timeout_s = self.spec.ready_timeout_s if timeout_s is None else timeout_s
        self._require_started("wait_ready")
        await self._wait_ready(timeout_s, stale=set())

    async def _restart(self, frontend: bool, workers: bool) -> tuple[list[str], float]:
        """Restart the chosen components; return (their names, seconds to ready and scraped)."""
        if not (frontend or workers):
            return [], 0.0
        t0 = time.monotonic()
        stale = set(self._instances) if workers else set()
        procs = self._processes
        names = await procs.restart(frontend, workers, self._router, self._block_size)
        await self._wait_ready(self.spec.ready_timeout_s, stale)
        ready_s = time.monotonic() - t0
        if self.prometheus is not None:
            self.prometheus.set_targets(procs.targets())
            addresses = [a for a, c in procs.targets().items() if c in names]
            await self.prometheus.wait_scraped_after(addresses, time.time())
        total_s = time.monotonic() - t0
        self.restarts += 1
        self.last_ready_s, self.last_total_s = ready_s, total_s
        log.info(
            "restarted %s: ready in %.2f s, scraped in %.2f s", ", ".join(names), ready_s, total_s
        )
        return names, total_s

    async def _revive_prometheus(self) -> None:
        """Start the stack's Prometheus again (same port, same data) if it has exited; wait
        until it has scraped every component."""
        prometheus = self.prometheus
        if prometheus is None or prometheus.process is None:
            return
        code = prometheus.process.poll()
        if code is None:
            return
        log.warning(
            "prometheus (pid %s) exited (%s): started again", prometheus.process.pid,
            exit_status(code),
        )  # fmt: skip
        prometheus.start()
        await prometheus.wait_ready()
        await prometheus.wait_scraped_after(list(self._processes.targets()), time.time())

    # -- health -----------------------------------------------------------------------------

    def check_alive(self) -> None:
        """Raise `DeploymentError` (with the log tail) if any component has exited."""
        raise_if_exited(self._processes.all())

    async def check_health(self) -> str | None:
        self._require_started("check_health")
        return self._processes.exited()

    async def _wait_ready(self, timeout_s: float, stale: set[int]) -> None:
        self._instances = await wait_until_ready(
            ReadyTarget(
                self.frontend_url,
                self.spec.model_name,
                self._processes.worker_metrics_urls(),
                self.spec.workers,
            ),
            stale,
            timeout_s,
            self._processes.all(),
        )
