"""One trial, end to end — the only module that knows a trial's order. Does I/O: via its seams.

    suggest -> Candidate -> deployment.apply -> wait_ready -> (repeat > 1: reset, wait_ready)
      -> quiet gap -> metrics.mark_start -> workload.run -> deployment.check_health
      -> metrics.collect(window)
      -> evaluate (median of repeats, constraints) -> user attrs, constraints, artifacts -> value

The objective is synchronous (the run loop calls it) and runs one `asyncio.run` per trial. A
`DynamoTuneError` (deployment, workload or metrics could not work at all) or a Ctrl-C/SIGTERM
leaves `fail_reason` on the trial (naming the signal) and propagates, so the run records it
FAIL; incomplete metrics or a violated constraint complete the trial with the violation
recorded. `measure` decides the outcome and writes no metric; `store` writes them. The run
(`run.trials`) stores and tells a measured trial in one section no signal cuts, so a FAIL
trial never holds metric attrs.

Quiet gap: one trial's window must not start before the deployment's quiet gap
(`dynamo_tune.deploy.base.quiet_gap_seconds`: two scrape intervals plus a margin) after the
previous run's last traffic (`WorkloadReport.last_traffic`: a steady window ends before the
run's drain), so no scrape holds traffic of two trials.

Faults: a deployment that broke during the workload (`check_health` names what) fails the
trial with a `DeploymentFault` — also when the workload itself failed because of it — and
stores the reason in `fault` too; the run re-enqueues the configuration once (`run.monitor`) and
the next `apply` brings the deployment back. A window the metrics source could not measure
(`DynamoMetricsResult.fault`: unreachable, no active target, a target down or not scraped
inside the window, a failed window query; decided by the backend) is a `MeasurementFault`,
the same path: FAIL, `fault` = `metrics: <reason>`, re-enqueued once. Only what the
configuration did (failed requests, a violated constraint, a metric without data while every
target was up and scraped) completes a trial as infeasible (`outcome.evaluate`).

Which trials are measured is the run's stage's decision (`run.stages` admits or prunes a trial
before the objective sees it); the objective measures whatever it is handed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from dynamo_tune.deploy.base import Deployment, Endpoints
from dynamo_tune.errors import DeploymentFault, MeasurementFault
from dynamo_tune.interrupts import describe
from dynamo_tune.metrics import MetricsBackend
from dynamo_tune.study.spec.schema import StudySpec
from dynamo_tune.study.spec.space import Candidate, SearchSpace, make_candidate
from dynamo_tune.study.trial.attr_keys import TrialAttr
from dynamo_tune.study.trial.outcome import Measurement, Outcome, evaluate
from dynamo_tune.study.trial.record import TrialRecord
from dynamo_tune.study.trial.runner import runner_identity
from dynamo_tune.workload.base import Workload


def interrupted_reason(exc: BaseException, stage: str | None = None) -> str:
    """A trial's `fail_reason` after a Ctrl-C or SIGTERM: `interrupted by SIGTERM during
    workload` (`stage`: where it was; None: unknown)."""
    where = f" during {stage}" if stage else ""
    return f"interrupted by {describe(exc)}{where}"


class ArtifactSink(Protocol):
    """Stores a named file on a trial (optuna artifacts)."""

    def upload(self, trial: optuna.Trial, filename: str, content: str) -> None: ...


@dataclass
class TrialServices:
    """The side effects a trial uses, each behind its seam (fakes in tests/fakes.py)."""

    deployment: Deployment
    workload_for: Callable[[Candidate], Workload]
    metrics_for: Callable[[Endpoints], MetricsBackend]
    artifacts: ArtifactSink | None = None
    preflight: Callable[[Endpoints, Callable[[str], None]], Coroutine[Any, Any, None]] | None = None
    """Checked once before the first trial, given the endpoints and where to say it waits."""
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class TrialResult:
    """What a trial measured, kept until it is stored (a storage outage may need it)."""

    values: list[float]
    attrs: dict[str, Any]
    constraints: dict[str, float]


class Objective:
    """The study's objective: `objective(trial)` measures one candidate and returns its value."""

    def __init__(
        self, spec: StudySpec, services: TrialServices, *, use_set_constraint: bool
    ) -> None:
        """`use_set_constraint`: give Optuna the constraints with `trial.set_constraint`
        (`store.samplers.sets_constraints`), else only store them as a user attr."""
        self.spec = spec
        self.services = services
        self.space = SearchSpace(spec.search_space)
        self.last_window_end: float | None = None
        self.timings: dict[str, float] = {}
        self.use_set_constraint = use_set_constraint
        self.result: TrialResult | None = None
        """The last call's measurement once known (None before: nothing measured yet)."""
        self._measured: tuple[Outcome, list[Measurement]] | None = None

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        """Measure the trial, then store what it measured (`measure`, then `store`)."""
        values = self.measure(trial)
        self.store(trial)
        return values

    def measure(self, trial: optuna.Trial) -> float | Sequence[float]:
        """Measure one candidate and decide its outcome; store no metric yet (`store` does,
        so a trial interrupted before its outcome is decided holds no metric attr). A failure
        or an interruption leaves `fail_reason` on the trial ("interrupted by SIGTERM during
        workload") and propagates."""
        self.result = None
        self._measured = None
        trial.set_user_attr(TrialAttr.RUNNER, runner_identity())
        values = self.space.suggest(trial)
        overrides = TrialRecord.from_trial(trial).overrides
        candidate = make_candidate(
            {**values, **overrides}, self.spec.deployment.router, self.spec.workload
        )
        stage = ["apply"]
        try:
            measurements = asyncio.run(self._measure(candidate, stage))
            stage[0] = "evaluate"
            outcome = evaluate(measurements, self.spec.objective)
        except KeyboardInterrupt as exc:
            self._abandoned()
            trial.set_user_attr(TrialAttr.FAIL_REASON, interrupted_reason(exc, stage[0]))
            raise
        except Exception as exc:  # recorded, then Optuna marks the trial FAIL
            self._abandoned()
            trial.set_user_attr(TrialAttr.FAIL_REASON, f"{stage[0]}: {type(exc).__name__}: {exc}")
            if isinstance(exc, DeploymentFault):  # a `MeasurementFault` too
                trial.set_user_attr(TrialAttr.FAULT, exc.fault)
            raise
        outcome.attrs[TrialAttr.HINTS] = candidate.hints.model_dump(mode="json", exclude_none=True)
        outcome.attrs.update(self.timings)
        self.result = TrialResult(
            list(outcome.values),
            dict(outcome.attrs),
            dict(outcome.constraints) if self.use_set_constraint else {},
        )
        self._measured = (outcome, measurements)
        return outcome.values[0] if len(outcome.values) == 1 else outcome.values

    def store(self, trial: optuna.Trial) -> None:
        """Write the last `measure`'s metric attrs, constraints and artifacts on `trial`
        (nothing if it measured nothing)."""
        if self._measured is not None:
            self._store(trial, *self._measured)

    async def _measure(self, candidate: Candidate, stage: list[str]) -> list[Measurement]:
        services = self.services
        deployment = services.deployment
        t0 = services.clock()
        applied = await deployment.apply(candidate.router)
        stage[0] = "wait_ready"
        await deployment.wait_ready()
        self.timings = {
            TrialAttr.APPLY_SECONDS: services.clock() - t0,
            TrialAttr.COLLECT_SECONDS: 0.0,
        }
        workload = services.workload_for(candidate)
        measurements: list[Measurement] = []
        for repeat in range(self.spec.objective.repeats):
            if repeat > 0:
                stage[0] = "reset"
                await deployment.reset()
                await deployment.wait_ready()
            endpoints = deployment.endpoints()
            stage[0] = "quiet gap"
            await self._quiet_gap(endpoints)
            backend = services.metrics_for(endpoints)
            started = services.clock()
            stage[0] = "metrics start"
            await backend.mark_start()
            stage[0] = "workload"
            try:
                report = await workload.run(endpoints, candidate.hints)
            except Exception as exc:  # a broken deployment explains a failed workload
                await self._check_health(deployment, cause=exc)
                raise
            self.last_window_end = max(self.last_window_end or 0.0, report.last_traffic)
            await self._check_health(deployment)
            stage[0] = "collect"
            t_collect = services.clock()
            result = await backend.collect(report.window_start, report.window_end)
            self.timings[TrialAttr.COLLECT_SECONDS] += services.clock() - t_collect
            if result.fault is not None:
                raise MeasurementFault(result.fault)
            measurements.append(
                Measurement(applied, report, result, started=started, finished=services.clock())
            )
        return measurements

    @staticmethod
    async def _check_health(deployment: Deployment, cause: Exception | None = None) -> None:
        """`DeploymentFault` if the deployment broke during the workload (from `cause`)."""
        fault = await deployment.check_health()
        if fault is not None:
            raise DeploymentFault(f"{fault} during the workload") from cause

    def _abandoned(self) -> None:
        """A failed trial may have sent traffic until now: the next window keeps its gap."""
        self.last_window_end = max(self.last_window_end or 0.0, self.services.clock())

    async def _quiet_gap(self, endpoints: Endpoints) -> None:
        if self.last_window_end is None:
            return
        wait = self.last_window_end + endpoints.quiet_gap_seconds() - self.services.clock()
        if wait > 0:
            await self.services.sleep(wait)

    def _store(
        self, trial: optuna.Trial, outcome: Outcome, measurements: list[Measurement]
    ) -> None:
        for key, value in outcome.attrs.items():
            trial.set_user_attr(key, value)
        if self.use_set_constraint:
            for key, value in outcome.constraints.items():
                trial.set_constraint(key, value)
        sink = self.services.artifacts
        if sink is None:
            return
        for i, m in enumerate(measurements):
            suffix = f"-repeat{i}" if len(measurements) > 1 else ""
            sink.upload(
                trial,
                f"trial{trial.number}{suffix}-metrics.json",
                m.result.model_dump_json(indent=2),
            )
            sink.upload(
                trial,
                f"trial{trial.number}{suffix}-workload.json",
                m.report.model_dump_json(indent=2),
            )
