"""The local stack's child processes: start each, stop them, name the dead. Does I/O: processes.

`StackProcesses` holds one `LocalStack`'s event-plane broker, frontend, workers and Prometheus
(when it runs), the ports they listen on and the environment they share, and starts each with
its argv and env (from `local_commands`). Each component appends to `<run dir>/logs/<name>.log`
after a marker line; its name is also its Prometheus target label. Stopping is concurrent:
SIGTERM, then SIGKILL after `STOP_GRACE_S`. `exit_status` is pure.

With a request-trace capture the frontend appends to the trace file, and a restart stops it
with SIGTERM like the workers: it flushes its buffered records only then (SIGKILL loses up to
the last second's).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from dynamo_tune.deploy.local_commands import (
    ZMQ_BROKER,
    dynamo_env,
    frontend_argv,
    frontend_env,
    worker_argv,
    worker_env,
    zmq_broker_argv,
    zmq_broker_url,
)
from dynamo_tune.deploy.ports import free_low_port
from dynamo_tune.deploy.prometheus import PrometheusServer, prometheus_binary
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.deploy.spec import LocalDeploymentSpec
from dynamo_tune.errors import DeploymentError
from dynamo_tune.net import LOOPBACK, free_port, loopback_url
from dynamo_tune.process import ManagedProcess

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0
FRONTEND = "frontend"


class StackProcesses:
    """The child processes of one local stack and how each starts (see module docstring)."""

    def __init__(
        self, spec: LocalDeploymentSpec, python: str, worker_env_extra: Mapping[str, str]
    ) -> None:
        self._spec = spec
        self._python = python
        self._worker_env_extra = dict(worker_env_extra)
        self._run_dir: Path | None = None
        self._model_dir: Path | None = None
        self._env: dict[str, str] = {}
        self.request_trace: Path | None = None
        """The absolute trace file the frontend appends to (None: no capture)."""
        self.frontend_port = 0
        self.worker_ports: list[int] = []
        self.broker: ManagedProcess | None = None
        self.frontend: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.prometheus: PrometheusServer | None = None

    # -- addresses --------------------------------------------------------------------------

    def worker_metrics_urls(self) -> list[str]:
        return [loopback_url(port, "/metrics") for port in self.worker_ports]

    def targets(self) -> dict[str, str]:
        """Prometheus targets: `host:port` -> component name (frontend, worker-<i>)."""
        targets = {f"{LOOPBACK}:{self.frontend_port}": FRONTEND}
        for i, port in enumerate(self.worker_ports):
            targets[f"{LOOPBACK}:{port}"] = f"worker-{i}"
        return targets

    # -- starting ---------------------------------------------------------------------------

    def start_broker(self, run_dir: Path, model_dir: Path) -> None:
        """Start the event-plane broker, then choose the frontend's and workers' ports."""
        self._run_dir, self._model_dir = run_dir, model_dir
        # Event-plane broker on 127.0.0.1: without it Dynamo's publishers bind 0.0.0.0.
        xsub_port = free_port()
        xpub_port = free_port()
        while xpub_port == xsub_port:
            xpub_port = free_port()
        self.broker = self._spawn(
            ZMQ_BROKER, zmq_broker_argv(self._python, xsub_port, xpub_port), dict(os.environ)
        )
        self._env = dynamo_env(
            os.environ, run_dir / "discovery", zmq_broker=zmq_broker_url(xsub_port, xpub_port)
        )
        self.frontend_port = free_port()
        self.worker_ports = []
        for _ in range(self._spec.workers):
            self.worker_ports.append(free_low_port(exclude=self.worker_ports))

    def open_request_trace(self) -> None:
        """Make the spec's `request_trace` file (and its folder) writable, or raise
        `DeploymentError`; earlier records in it are kept (Dynamo appends)."""
        wanted = self._spec.request_trace
        if wanted is None:
            self.request_trace = None
            return
        path = wanted.absolute()
        if path.is_dir():
            raise DeploymentError(f"request_trace {path} is a folder: give the file to append to")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a"):
                pass
        except OSError as exc:
            raise DeploymentError(f"request_trace {path}: {exc.strerror or exc}") from exc
        self.request_trace = path

    def start_prometheus(self) -> str:
        """Start Prometheus as the spec asks; return why it does not run ("" if it does)."""
        wanted = self._spec.prometheus
        if wanted is False:
            return "prometheus disabled: the scrape backend will be used"
        if wanted == "auto" and prometheus_binary() is None:
            notice = "prometheus not on PATH: the scrape backend will be used"
            log.warning(notice)
            return notice
        self.prometheus = PrometheusServer(
            self._require_run_dir() / "prometheus", self.targets(), self._spec.scrape_interval_s
        )
        self.prometheus.start()
        return ""

    def spawn_workers(self, block_size: int) -> None:
        assert self._model_dir is not None
        spec = self._spec
        argv = worker_argv(self._python, self._model_dir, spec.model_name, spec.mocker, block_size)
        self.workers = [
            self._spawn(
                f"worker-{i}",
                argv,
                {**worker_env(self._env, self.worker_ports[i]), **self._worker_env_extra},
            )
            for i in range(spec.workers)
        ]

    def spawn_frontend(self, router: RouterConfig, block_size: int) -> None:
        argv = frontend_argv(self._python, self.frontend_port, router, block_size)
        env = frontend_env(self._env, self._spec.buckets, self.request_trace)
        self.frontend = self._spawn(FRONTEND, argv, env)

    def _require_run_dir(self) -> Path:
        if self._run_dir is None:
            raise DeploymentError("the local stack is not started")
        return self._run_dir

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        """Start one component, appending to `logs/<name>.log` after a marker line; its
        temporary files (Dynamo writes a logging config per process) go to `<run dir>/tmp`."""
        run_dir = self._require_run_dir()
        log_path = run_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        (run_dir / "tmp").mkdir(exist_ok=True)
        with log_path.open("a") as fh:
            fh.write(f"=== dynamo-tune: starting {name} at {time.time():.3f}\n")
        env = {**env, "TMPDIR": str(run_dir / "tmp")}
        proc = ManagedProcess(name, argv, log_path, env=env)
        proc.start()
        return proc

    # -- restarting and stopping ------------------------------------------------------------

    async def restart(
        self, frontend: bool, workers: bool, router: RouterConfig, block_size: int
    ) -> list[str]:
        """Stop the chosen components and start them anew; return their names."""
        old = ([self.frontend] if frontend and self.frontend else []) + (
            list(self.workers) if workers else []
        )
        # The frontend holds no discovery registration: kill it at once (saves its ~0.5 s
        # graceful shutdown), unless it must flush its request trace. Workers get SIGTERM, so
        # they deregister before their successors register (a killed worker's registration
        # would linger until its lease expires).
        await stop_all(old, fast=set() if self.request_trace else {FRONTEND})
        if workers:
            self.spawn_workers(block_size)
        if frontend:
            self.spawn_frontend(router, block_size)
        return [p.name for p in old]

    async def stop(self) -> None:
        """Stop every component (the broker after its publishers and subscribers); forget them."""
        await stop_all([p for p in [self.frontend, *self.workers] if p is not None])
        if self.broker is not None:
            await stop_all([self.broker])
        self.broker = None
        if self.prometheus is not None:
            await asyncio.to_thread(self.prometheus.stop)
        self.frontend, self.workers, self.prometheus = None, [], None

    def kill(self) -> None:
        """SIGKILL whatever is still running, at once, and wait for it (an interrupted stop)."""
        for proc in self.all():
            proc.stop(grace_s=0.0)

    # -- health -----------------------------------------------------------------------------

    def all(self) -> list[ManagedProcess]:
        """Every started component: broker, frontend, workers, Prometheus."""
        procs = [self.broker, self.frontend, *self.workers]
        if self.prometheus is not None:
            procs.append(self.prometheus.process)
        return [p for p in procs if p is not None]

    def dead_parts(self) -> tuple[bool, bool]:
        """(the frontend has exited, a worker has exited)."""
        frontend = self.frontend is not None and self.frontend.poll() is not None
        return frontend, any(w.poll() is not None for w in self.workers)

    def exited(self) -> str | None:
        """Each exited frontend or worker with its exit status, comma-separated; None if none."""
        dead = []
        for proc in [self.frontend, *self.workers]:
            code = proc.poll() if proc is not None else None
            if proc is not None and code is not None:
                dead.append(f"{proc.name} (pid {proc.pid}) exited ({exit_status(code)})")
        return ", ".join(dead) or None


def exit_status(returncode: int) -> str:
    """`Popen.returncode` in words: "code 1", or "signal 9, SIGKILL" for a negative one. Pure."""
    if returncode >= 0:
        return f"code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    return f"signal {-returncode}, {name}"


async def stop_all(procs: list[ManagedProcess], fast: Collection[str] = ()) -> None:
    """Stop processes concurrently: SIGTERM, SIGKILL after the grace period (none for `fast`)."""
    await asyncio.gather(
        *(asyncio.to_thread(p.stop, 0.0 if p.name in fast else STOP_GRACE_S) for p in procs)
    )
