"""In-repo fakes of the trial seams: deployment, workload, metrics backend, clock.

They model a tiny "cluster" whose metrics depend on the applied router and the hints, so a
study driven by them has a real optimum (kv routing, high overlap credit, no temperature,
session ids on) and a worse round-robin baseline. Run as a script, this module runs
`dynamo-tune run` with the fakes in a child process (real time), for kill/concurrency tests:

    python tests/fakes.py STUDY.yaml [--trial-seconds S] [--n-trials N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynamo_tune.deploy.base import AppliedConfig, Endpoints
from dynamo_tune.deploy.router import RouterConfig
from dynamo_tune.errors import DeploymentError, WorkloadError
from dynamo_tune.metrics import DynamoMetricsResult
from dynamo_tune.study.spec.space import Candidate
from dynamo_tune.study.store.opening import StudyHandle
from dynamo_tune.study.trial.objective import TrialServices
from dynamo_tune.workload.hints import PrefixHints
from dynamo_tune.workload.result import WorkloadReport


class FakeClock:
    """Unix-like seconds that only move when told (sleep advances them)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class RealClock:
    """time.time / asyncio.sleep, for child-process runs."""

    def __call__(self) -> float:
        import time

        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class Cluster:
    """Shared state of the fakes: what is applied, what happened, in order."""

    clock: Any
    router: RouterConfig | None = None
    hints: PrefixHints | None = None
    events: list[tuple[str, float]] = field(default_factory=list)
    started: bool = False
    stopped: bool = False

    def log(self, event: str) -> None:
        self.events.append((event, self.clock()))


def true_metrics(router: RouterConfig, hints: PrefixHints) -> tuple[float, float, float]:
    """(kve, ttft_p95, itl_p95) of the fake cluster under `router` and `hints`."""
    if router.mode != "kv":
        return 0.25, 0.9, 0.06
    credit = router.overlap_score_credit if router.overlap_score_credit is not None else 1.0
    temp = router.temperature or 0.0
    scale = router.prefill_load_scale or 1.0
    kve = 0.40 + 0.12 * min(credit, 2.0) - 0.2 * temp + (0.06 if hints.session_id else 0.0)
    ttft = 0.35 + 0.25 * abs(credit - 1.2) + 0.3 * temp + 0.15 * abs(math.log(scale))
    return max(0.0, min(1.0, kve)), ttft, 0.04 + 0.01 * temp


class FakeDeployment:
    """A Deployment whose apply/ready/reset/stop only log (and fail on request).

    `fault_after_workload`: indexes (0-based, over the whole run) of the workloads after which
    `check_health` reports a killed worker; the next `apply`/`reset` logs "revive" first.
    """

    FAULT = "worker-1 (pid 4242) exited (signal 9, SIGKILL)"

    def __init__(
        self,
        cluster: Cluster,
        *,
        fail_apply: set[int] | None = None,
        interrupt_apply: set[int] | None = None,
        fault_after_workload: set[int] | None = None,
        scrape_interval_s: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self.fail_apply = fail_apply or set()
        self.interrupt_apply = interrupt_apply or set()
        self.fault_after_workload = fault_after_workload or set()
        self.applies = 0
        self.health_checks = 0
        self.broken = False
        self.scrape_interval_s = scrape_interval_s

    async def start(self) -> None:
        self.cluster.started = True
        self.cluster.log("start")

    async def apply(self, router: RouterConfig) -> AppliedConfig:
        index = self.applies
        self.applies += 1
        if index in self.interrupt_apply:
            raise KeyboardInterrupt
        if index in self.fail_apply:
            raise DeploymentError("frontend exited with code 1: bad flag")
        self._revive()
        self.cluster.router = router
        self.cluster.log("apply")
        args = ["--router-mode", router.mode]
        if router.temperature is not None:
            args += ["--router-temperature", str(router.temperature)]
        return AppliedConfig(router=router, frontend_args=args, restarted=["frontend"])

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        self.cluster.log("ready")

    async def reset(self) -> None:
        self._revive()
        self.cluster.log("reset")

    async def check_health(self) -> str | None:
        index = self.health_checks
        self.health_checks += 1
        self.cluster.log("health")
        if index in self.fault_after_workload:
            self.broken = True
        return self.FAULT if self.broken else None

    def _revive(self) -> None:
        if self.broken:
            self.broken = False
            self.cluster.log("revive")

    def endpoints(self) -> Endpoints:
        return Endpoints(
            frontend_url="http://127.0.0.1:9",
            model="tiny",
            metrics_urls=["http://127.0.0.1:9/metrics"],
            prometheus_url="http://127.0.0.1:10",
            scrape_interval_s=self.scrape_interval_s,
        )

    async def stop(self) -> None:
        self.cluster.stopped = True
        self.cluster.log("stop")


class FakeWorkload:
    """A Workload that takes `seconds` of (fake or real) time and reports a window."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        seconds: float = 10.0,
        fail: bool = False,
        failed_ratio: float = 0,
        crash_runs: set[int] | None = None,
        drain_s: float = 0.0,
    ) -> None:
        """`drain_s`: a steady window that closes this long before the run's traffic ends."""
        self.cluster = cluster
        self.seconds = seconds
        self.drain_s = drain_s
        self.fail = fail
        self.failed_ratio = failed_ratio
        self.crash_runs = crash_runs or set()
        self.runs = 0

    async def run(self, endpoints: Endpoints, hints: PrefixHints) -> WorkloadReport:
        if self.fail:
            raise WorkloadError("command exited with code 1: boom")
        self.cluster.hints = hints
        start = self.cluster.clock()
        self.cluster.log("workload")
        await self.cluster.clock.sleep(self.seconds)
        self.runs += 1
        if self.runs - 1 in self.crash_runs:
            raise WorkloadError("connection to the frontend lost mid-run")
        assert self.cluster.router is not None
        kve, ttft, itl = true_metrics(self.cluster.router, hints)
        failed = int(round(64 * self.failed_ratio))
        end = self.cluster.clock()
        return WorkloadReport(
            window_start=start,
            window_end=end - self.drain_s,
            traffic_start=start,
            traffic_end=end,
            requests_sent=64,
            requests_ok=64 - failed,
            requests_failed=failed,
            failed=self.failed_ratio > 0.05,
            client_ttft_p95_seconds=ttft * 0.95,
            client_itl_p95_seconds=itl * 0.9,
            client_kve=kve,
            kve_ceiling=0.8,
            prompt_tokens=64_000,
            cached_tokens=int(64_000 * kve),
        )


class FakeMetricsBackend:
    """A MetricsBackend answering from the cluster's true metrics (optionally incomplete)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        drop: tuple[str, ...] = (),
        unreachable: bool = False,
        no_kv_events: bool = False,
    ) -> None:
        self.cluster = cluster
        self.drop = drop
        self.unreachable = unreachable
        self.no_kv_events = no_kv_events
        """True: a kv router applies no KV event (workers that publish none)."""
        self.windows: list[tuple[float, float]] = []

    async def mark_start(self) -> None:
        self.cluster.log("mark_start")

    async def collect(self, start: float, end: float) -> DynamoMetricsResult:
        if self.unreachable:  # the seed contract: no exception, every metric None, a reason
            return DynamoMetricsResult(
                reachable=False,
                errors=["prometheus at http://127.0.0.1:10 is unreachable: connection refused"],
                backend="prometheus",
                mode="window",
                window_start=start,
                window_end=end,
            )
        self.windows.append((start, end))
        self.cluster.log("collect")
        assert self.cluster.router is not None and self.cluster.hints is not None
        kve, ttft, itl = true_metrics(self.cluster.router, self.cluster.hints)
        values: dict[str, Any] = {
            "frontend_cached_tokens_rate": 100.0 * kve,
            "frontend_input_tokens_rate": 100.0,
            "ttft_p50": ttft * 0.5,
            "ttft_p95": ttft,
            "ttft_p99": ttft * 1.2,
            "itl_p50": itl * 0.5,
            "itl_p95": itl,
            "itl_p99": itl * 1.3,
            "requests_per_minute": 384.0,
            "backend": "prometheus",
            "mode": "window",
            "window_start": start,
            "window_end": end,
        }
        if self.cluster.router.mode == "kv":  # only a kv router exports its evidence
            values["router_kv_events_rate"] = 0.0 if self.no_kv_events else 12.0
            values["router_kv_hit_rate_count_rate"] = 6.4
            values["router_kv_hit_rate_sum_rate"] = 0.0 if self.no_kv_events else 6.4 * kve
        for key in self.drop:
            values.pop(key, None)
        errors = [f"{key}: no data" for key in self.drop]
        return DynamoMetricsResult(**values, errors=errors)


@dataclass
class FakeStack:
    """Everything a fake-driven run uses, kept for assertions."""

    cluster: Cluster
    deployment: FakeDeployment
    workload: FakeWorkload
    metrics: FakeMetricsBackend
    candidates: list[Candidate] = field(default_factory=list)
    artifacts: bool = True

    def services(self, handle: StudyHandle) -> TrialServices:
        from dynamo_tune.study.trial.artifacts import FileArtifactSink

        def workload_for(candidate: Candidate) -> FakeWorkload:
            self.candidates.append(candidate)
            return self.workload

        return TrialServices(
            deployment=self.deployment,
            workload_for=workload_for,
            metrics_for=lambda endpoints: self.metrics,
            artifacts=FileArtifactSink(handle.target.artifact_dir) if self.artifacts else None,
            clock=self.cluster.clock,
            sleep=self.cluster.clock.sleep,
        )


def fake_stack(
    *,
    clock: Any = None,
    workload_seconds: float = 10.0,
    deployment: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> FakeStack:
    cluster = Cluster(clock=clock or FakeClock())
    return FakeStack(
        cluster=cluster,
        deployment=FakeDeployment(cluster, **(deployment or {})),
        workload=FakeWorkload(cluster, seconds=workload_seconds, **(workload or {})),
        metrics=FakeMetricsBackend(cluster, **(metrics or {})),
    )


def main(argv: list[str]) -> int:
    """Child-process entry: a fake-driven `dynamo-tune run` in real time."""
    import optuna

    from dynamo_tune.cli.main import configure_logging
    from dynamo_tune.cli.run_output import TextReporter
    from dynamo_tune.study import run_study_file

    parser = argparse.ArgumentParser()
    parser.add_argument("study_file", type=Path)
    parser.add_argument("--trial-seconds", type=float, default=0.2)
    parser.add_argument("--n-trials", type=int, default=None)
    args = parser.parse_args(argv)
    stack = fake_stack(clock=RealClock(), workload_seconds=args.trial_seconds)
    stack.deployment.scrape_interval_s = 0.01
    try:
        configure_logging()  # as `dynamo-tune run` does
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        run_study_file(
            args.study_file,
            stack.services,
            n_trials=args.n_trials,
            report=TextReporter(sys.stdout),
        )
        return 0
    finally:
        if stack.cluster.stopped:
            print("deployment stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


BASE_STUDY: dict[str, Any] = {
    "study": {
        "name": "fake",
        "storage": "sqlite:///fake.db",
        "n_trials": 4,
        "sampler": {"name": "tpe", "seed": 0},
        "baseline": {"router.mode": "round-robin"},
        "confirm": False,  # tests of the confirmation stage turn it on
    },
    "deployment": {"kind": "local", "router": {"mode": "kv"}},
    "workload": {"kind": "agentic", "sessions": 4, "turns": 2},
    "search_space": {
        "router.mode": {"type": "categorical", "choices": ["kv", "round-robin"]},
        "router.overlap_score_credit": {"type": "float", "low": 0.0, "high": 2.0},
        "router.temperature": {"type": "float", "low": 0.0, "high": 1.0},
        "router.prefill_load_scale": {"type": "float", "low": 0.25, "high": 4.0, "log": True},
        "hints.session_id": {"type": "categorical", "choices": [True, False]},
    },
    "objective": {"constraints": [{"metric": "ttft_p95_seconds", "max": 2.0}]},
}


def write_study(
    folder: Path, changes: dict[str, Any] | None = None, name: str = "study.yaml"
) -> Path:
    """Write BASE_STUDY with `changes` ({"study.n_trials": 3, "objective.repeats": 3}; a value
    of None deletes the key) to `folder/name`."""
    import copy

    import yaml

    data = copy.deepcopy(BASE_STUDY)
    for dotted, value in (changes or {}).items():
        *parents, last = dotted.split("/") if "/" in dotted else dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
