"""The local Dynamo stack (mocker workers, frontend, Prometheus). Does I/O: processes, HTTP.

It generates the tiny model, spawns and stops processes, and polls HTTP endpoints.

`apply()` restarts only the frontend when only router flags change; with `isolation:
restart` (or a new block size) it also restarts every worker, so the trial starts with cold
KV caches. `reset()` restarts the workers. Every restart waits until the frontend lists the
model and `/health` lists every (new) worker, then — when Prometheus runs — until Prometheus
has scraped each restarted process once, so no measured window straddles a counter reset.
Ports stay the same across restarts (targets and URLs do not change). A dead component is
reported as `DeploymentError` with the tail of its log.

Faults: `check_health()` names every frontend or worker process that has exited, with its
exit status ("worker-1 (pid 4242) exited (signal 9, SIGKILL)"; names match `logs/<name>.log`
and the Prometheus target labels, so its log is `<run dir>/logs/worker-1.log`). `apply()` and
`reset()` bring a broken stack back, also with `isolation: none`: a dead frontend is restarted,
and a dead worker restarts every worker (the ready check cannot tell a survivor's instance from
a stale one; a SIGKILL-ed worker's registration lingers, so this restart takes ~8 s instead of
~2 s), so the trial after a fault starts with cold caches. Prometheus is the metrics source,
not the deployment: its death shows as unreachable metrics, not here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from dynamo_tune.deploy.base import AppliedConfig, Endpoints
from dynamo_tune.deploy.local_commands import (
    ZMQ_BROKER,
    dynamo_env,
    frontend_argv,
    frontend_env,
    frontend_router_args,
    worker_argv,
    worker_env,
    zmq_broker_argv,
    zmq_broker_url,
)
from dynamo_tune.deploy.ports import free_low_port
from dynamo_tune.deploy.prometheus import PrometheusServer, prometheus_binary
from dynamo_tune.deploy.readiness import ReadyTarget, wait_until_ready
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.deploy.tiny_model import ensure_tiny_model
from dynamo_tune.errors import DeploymentError
from dynamo_tune.net import LOOPBACK, free_port, loopback_url
from dynamo_tune.process import ManagedProcess, raise_if_exited

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0
FRONTEND = "frontend"


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
        self._python = python
        self._model_cache_dir = model_cache_dir
        self._worker_env_extra = dict(worker_env_extra or {})
        self._router = self.spec.router
        self._block_size = self.spec.block_size
        self._run_dir: Path | None = None
        self._own_run_dir = False
        self._model_dir: Path | None = None
        self._env: dict[str, str] = {}
        self._frontend_port = 0
        self._worker_ports: list[int] = []
        self._frontend: ManagedProcess | None = None
        self._broker: ManagedProcess | None = None
        self._workers: list[ManagedProcess] = []
        self._instances: set[int] = set()
        self.prometheus: PrometheusServer | None = None
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
    def frontend_url(self) -> str:
        return loopback_url(self._frontend_port)

    def pids(self) -> dict[str, int]:
        """Component name -> pid of every running child (broker, frontend, workers, Prometheus)."""
        procs = [self._broker, self._frontend, *self._workers]
        if self.prometheus is not None:
            procs.append(self.prometheus.process)
        return {p.name: p.pid for p in procs if p is not None and p.pid is not None}

    def endpoints(self) -> Endpoints:
        if self._frontend is None:
            raise DeploymentError("the local stack is not started")
        return Endpoints(
            frontend_url=self.frontend_url,
            model=self.spec.model_name,
            metrics_urls=[self.frontend_url + "/metrics", *self._worker_metrics_urls()],
            prometheus_url=self.prometheus.url if self.prometheus else None,
            scrape_interval_s=self.spec.scrape_interval_s if self.prometheus else None,
        )

    def _worker_metrics_urls(self) -> list[str]:
        return [loopback_url(port, "/metrics") for port in self._worker_ports]

    def _targets(self) -> dict[str, str]:
        targets = {f"{LOOPBACK}:{self._frontend_port}": FRONTEND}
        for i, port in enumerate(self._worker_ports):
            targets[f"{LOOPBACK}:{port}"] = f"worker-{i}"
        return targets

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._frontend is not None:
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
        self._model_dir = ensure_tiny_model(self._model_cache_dir)
        # Event-plane broker on 127.0.0.1: without it Dynamo's publishers bind 0.0.0.0.
        xsub_port = free_port()
        xpub_port = free_port()
        while xpub_port == xsub_port:
            xpub_port = free_port()
        self._broker = self._spawn(
            ZMQ_BROKER, zmq_broker_argv(self._python, xsub_port, xpub_port), dict(os.environ)
        )
        self._env = dynamo_env(
            os.environ, discovery, zmq_broker=zmq_broker_url(xsub_port, xpub_port)
        )
        self._frontend_port = free_port()
        self._worker_ports = []
        for _ in range(self.spec.workers):
            self._worker_ports.append(free_low_port(exclude=self._worker_ports))
        self._start_prometheus()
        self._workers = [self._spawn_worker(i) for i in range(self.spec.workers)]
        self._frontend = self._spawn_frontend()
        await self._wait_ready(self.spec.ready_timeout_s, stale=set())
        ready_at = time.time()
        self.last_ready_s = time.monotonic() - t0
        if self.prometheus is not None:
            await self.prometheus.wait_ready()
            await self.prometheus.wait_scraped_after(list(self._targets()), ready_at)
        self.last_total_s = time.monotonic() - t0
        log.info(
            "local stack ready in %.2f s (scraped: %.2f s) at %s",
            self.last_ready_s,
            self.last_total_s,
            self.frontend_url,
        )

    def _start_prometheus(self) -> None:
        wanted = self.spec.prometheus
        if wanted is False:
            self.notice = "prometheus disabled: the scrape backend will be used"
            return
        if wanted == "auto" and prometheus_binary() is None:
            self.notice = "prometheus not on PATH: the scrape backend will be used"
            log.warning(self.notice)
            return
        self.prometheus = PrometheusServer(
            self.run_dir / "prometheus", self._targets(), self.spec.scrape_interval_s
        )
        self.prometheus.start()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        """Start one component, appending to `logs/<name>.log` after a marker line."""
        log_path = self.run_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as fh:
            fh.write(f"=== dynamo-tune: starting {name} at {time.time():.3f}\n")
        proc = ManagedProcess(name, argv, log_path, env=env)
        proc.start()
        return proc

    def _spawn_worker(self, i: int) -> ManagedProcess:
        assert self._model_dir is not None
        spec = self.spec
        argv = worker_argv(
            self._python, self._model_dir, spec.model_name, spec.mocker, self._block_size
        )
        env = {**worker_env(self._env, self._worker_ports[i]), **self._worker_env_extra}
        return self._spawn(f"worker-{i}", argv, env)

    def _spawn_frontend(self) -> ManagedProcess:
        argv = frontend_argv(self._python, self._frontend_port, self._router, self._block_size)
        return self._spawn(FRONTEND, argv, frontend_env(self._env, self.spec.buckets))

    async def stop(self) -> None:
        procs = [p for p in [self._frontend, *self._workers] if p is not None]
        await _stop_all(procs)
        if self._broker is not None:  # after its publishers and subscribers
            await _stop_all([self._broker])
        self._broker = None
        if self.prometheus is not None:
            await asyncio.to_thread(self.prometheus.stop)
        self._frontend, self._workers, self.prometheus = None, [], None
        self._instances = set()
        if self._own_run_dir and self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    # -- trials -----------------------------------------------------------------------------

    def _require_started(self, what: str) -> None:
        if self._frontend is None:
            raise DeploymentError(f"{what}() on a local stack that is not started")

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        self._require_started("apply")
        block_size = router.block_size or self.spec.mocker.block_size
        frontend_dead, worker_dead = self._dead_parts()
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
        await self._restart(frontend=self._dead_parts()[0], workers=True)

    async def wait_ready(self, timeout_s: float) -> None:
        self._require_started("wait_ready")
        await self._wait_ready(timeout_s, stale=set())

    async def _restart(self, frontend: bool, workers: bool) -> tuple[list[str], float]:
        """Restart the chosen components; return (their names, seconds to ready and scraped)."""
        if not (frontend or workers):
            return [], 0.0
        t0 = time.monotonic()
        stale = set(self._instances) if workers else set()
        old = ([self._frontend] if frontend and self._frontend else []) + (
            list(self._workers) if workers else []
        )
        # The frontend holds no discovery registration: kill it at once (saves its ~0.5 s
        # graceful shutdown). Workers get SIGTERM, so they deregister before their successors
        # register (a killed worker's registration would linger until its lease expires).
        await _stop_all(old, fast={FRONTEND})
        if workers:
            self._workers = [self._spawn_worker(i) for i in range(self.spec.workers)]
        if frontend:
            self._frontend = self._spawn_frontend()
        names = [p.name for p in old]
        await self._wait_ready(self.spec.ready_timeout_s, stale)
        ready_s = time.monotonic() - t0
        if self.prometheus is not None:
            self.prometheus.set_targets(self._targets())
            addresses = [a for a, c in self._targets().items() if c in names]
            await self.prometheus.wait_scraped_after(addresses, time.time())
        total_s = time.monotonic() - t0
        self.restarts += 1
        self.last_ready_s, self.last_total_s = ready_s, total_s
        log.info(
            "restarted %s: ready in %.2f s, scraped in %.2f s", ", ".join(names), ready_s, total_s
        )
        return names, total_s

    # -- health -----------------------------------------------------------------------------

    def _procs(self) -> list[ManagedProcess]:
        procs = [self._broker, self._frontend, *self._workers]
        if self.prometheus is not None:
            procs.append(self.prometheus.process)
        return [p for p in procs if p is not None]

    def check_alive(self) -> None:
        """Raise `DeploymentError` (with the log tail) if any component has exited."""
        raise_if_exited(self._procs())

    def _dead_parts(self) -> tuple[bool, bool]:
        """(the frontend has exited, a worker has exited)."""
        frontend = self._frontend is not None and self._frontend.poll() is not None
        return frontend, any(w.poll() is not None for w in self._workers)

    async def check_health(self) -> str | None:
        self._require_started("check_health")
        dead = []
        for proc in [self._frontend, *self._workers]:
            code = proc.poll() if proc is not None else None
            if proc is not None and code is not None:
                dead.append(f"{proc.name} (pid {proc.pid}) exited ({exit_status(code)})")
        return ", ".join(dead) or None

    async def _wait_ready(self, timeout_s: float, stale: set[int]) -> None:
        self._instances = await wait_until_ready(
            ReadyTarget(
                self.frontend_url,
                self.spec.model_name,
                self._worker_metrics_urls(),
                self.spec.workers,
            ),
            stale,
            timeout_s,
            self._procs(),
        )


def exit_status(returncode: int) -> str:
    """`Popen.returncode` in words: "code 1", or "signal 9, SIGKILL" for a negative one. Pure."""
    if returncode >= 0:
        return f"code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    return f"signal {-returncode}, {name}"


async def _stop_all(procs: list[ManagedProcess], fast: Collection[str] = ()) -> None:
    """Stop processes concurrently: SIGTERM, SIGKILL after the grace period (none for `fast`)."""
    await asyncio.gather(
        *(asyncio.to_thread(p.stop, 0.0 if p.name in fast else STOP_GRACE_S) for p in procs)
    )
